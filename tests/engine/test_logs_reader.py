"""Reading the json-file log as dockerd does: streams, tail across rotated files, since/until,
timestamps, torn lines, and follow mode that sees appends and rotation and ends on stop."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from engine import logs, timefmt

T0 = 1_700_000_000_000_000_000


def line(text: str, stream: str = "stdout", t: int = T0) -> bytes:
    return json.dumps({"log": text, "stream": stream,
                       "time": timefmt.rfc3339nano(t)}).encode() + b"\n"


def collect(path: Path, opts: logs.Options, running=lambda: False, event=None):
    event = event or asyncio.Event()

    async def go():
        return [e async for e in logs.read(path, opts, running=running, changed=lambda: event)]
    return asyncio.run(go())


def test_streams_and_tail_across_rotated_files(tmp_path):
    log = tmp_path / "c-json.log"
    (tmp_path / "c-json.log.2").write_bytes(line("one\n", t=T0) + line("two\n", "stderr", T0 + 1))
    (tmp_path / "c-json.log.1").write_bytes(line("three\n", t=T0 + 2))
    log.write_bytes(line("four\n", "stderr", T0 + 3) + b'{"torn": ' + b"\n" + line("five\n", t=T0 + 4))
    entries = collect(log, logs.Options())
    assert [e.data for e in entries] == [b"one\n", b"two\n", b"three\n", b"four\n", b"five\n"]
    assert [e.stream for e in entries] == [1, 2, 1, 2, 1]
    assert [e.data for e in collect(log, logs.Options(tail=2))] == [b"four\n", b"five\n"]
    assert [e.data for e in collect(log, logs.Options(stderr=False))] == [
        b"one\n", b"three\n", b"five\n"]
    assert collect(log, logs.Options(tail=0)) == []


def test_since_until_and_timestamps(tmp_path):
    log = tmp_path / "c-json.log"
    log.write_bytes(b"".join(line(f"{i}\n", t=T0 + i * 1_000_000_000) for i in range(5)))
    got = collect(log, logs.Options(since=T0 + 2_000_000_000, until=T0 + 3_000_000_000))
    assert [e.data for e in got] == [b"2\n", b"3\n"]
    rendered = logs.render(got[0], logs.Options(timestamps=True))
    assert rendered == b"2023-11-14T22:13:22.000000000Z 2\n"


def test_missing_log_is_empty(tmp_path):
    assert collect(tmp_path / "none-json.log", logs.Options()) == []


def test_follow_sees_appends_and_rotation_and_ends_when_stopped(tmp_path):
    log = tmp_path / "c-json.log"
    log.write_bytes(line("before\n"))

    async def go():
        state = {"running": True}
        event = asyncio.Event()
        got = []

        async def reader():
            async for e in logs.read(log, logs.Options(follow=True),
                                     running=lambda: state["running"], changed=lambda: event):
                got.append(e.data)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.15)
        with open(log, "ab") as f:
            f.write(line("after\n")[:10])       # a line written in two parts
            f.flush()
            await asyncio.sleep(0.1)
            f.write(line("after\n")[10:])
        await asyncio.sleep(0.15)
        log.rename(tmp_path / "c-json.log.1")   # rotation, then a new file
        log.write_bytes(line("rotated\n"))
        await asyncio.sleep(0.15)
        with open(log, "ab") as f:
            f.write(line("last\n"))
        state["running"] = False
        event.set()
        await asyncio.wait_for(task, 5)
        return got

    assert asyncio.run(go()) == [b"before\n", b"after\n", b"rotated\n", b"last\n"]
