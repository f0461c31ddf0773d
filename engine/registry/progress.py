"""dockerd's JSON-lines progress messages for pull and push, so that the docker CLI draws
them as it draws dockerd's (an id per layer, progressDetail for the bars)."""
from __future__ import annotations

import json


def status(text: str, id_: str | None = None) -> dict:
    msg: dict = {"status": text}
    if id_ is not None:
        msg["progressDetail"] = {}
        msg["id"] = id_
    return msg


def bar(text: str, id_: str, current: int, total: int) -> dict:
    return {"status": text, "progressDetail": {"current": current, "total": total},
            "progress": render(current, total), "id": id_}


def error(message: str) -> dict:
    return {"errorDetail": {"message": message}, "error": message}


def encode(msg: dict) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode() + b"\r\n"


def human(n: float) -> str:
    """docker's units.HumanSize: decimal, 3 significant digits."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


def render(current: int, total: int, width: int = 50) -> str:
    """`[=====>     ]  1.2MB/3.4MB`, as docker's JSONProgress draws it."""
    if total <= 0:
        return human(current)
    filled = min(width, int(width * current / total))
    arrow = ("=" * max(filled - 1, 0) + ">") if filled else ""
    return f"[{arrow}{' ' * (width - len(arrow))}] {human(current):>8}/{human(total)}"
