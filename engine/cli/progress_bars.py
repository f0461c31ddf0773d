"""Drawing a pull's or push's JSON-lines progress as the docker CLI does: one line per layer id,
redrawn in place on a terminal (bars from progressDetail), or one line per change of status when
the output is not a terminal. An errorDetail ends the stream as an error."""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import TextIO


class StreamError(Exception):
    pass


def _bar(detail: dict, width: int = 50) -> str:
    current, total = detail.get("current") or 0, detail.get("total") or 0
    from ..registry.progress import render
    return render(current, total, width) if total else ""


def draw(lines: Iterable[bytes], out: TextIO = sys.stdout, tty: bool | None = None) -> dict:
    """Draws the stream; returns the last aux object seen ({} when none)."""
    tty = out.isatty() if tty is None else tty
    ids: list[str] = []
    last_status: dict[str, str] = {}
    aux: dict = {}
    for raw in lines:
        if not raw.strip():
            continue
        msg = json.loads(raw)
        if msg.get("error") or msg.get("errorDetail"):
            raise StreamError((msg.get("errorDetail") or {}).get("message") or msg["error"])
        if "aux" in msg:
            aux = msg["aux"] or {}
            continue
        status, id_ = msg.get("status", ""), msg.get("id")
        if not status:
            continue
        if not id_:
            out.write(status + "\n")
            continue
        text = f"{id_}: {status}"
        bar = _bar(msg.get("progressDetail") or {})
        if tty:
            if bar:
                text += " " + bar
            if id_ not in ids:
                ids.append(id_)
                out.write(text + "\n")
            else:
                up = len(ids) - ids.index(id_)
                out.write(f"\x1b[{up}A\x1b[2K\r{text}\x1b[{up}B\r")
        elif last_status.get(id_) != status:
            last_status[id_] = status
            out.write(text + "\n")
        out.flush()
    return aux


def stream_lines(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """Split a chunked body into lines as they arrive."""
    buf = b""
    for chunk in chunks:
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            yield line
    if buf.strip():
        yield buf
