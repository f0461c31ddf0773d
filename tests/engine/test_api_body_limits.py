"""No request body is buffered whole past a small bound: JSON bodies are read under
MAX_JSON_BODY (tests/engine/test_api_validation.py), aiohttp's own limit is the same bound, and
a `docker cp` upload streams through berthd to the extracting child, so a 50 MB file goes in
without berthd's memory growing by its size."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from engine.api.app import make_app
from engine.api.http import MAX_JSON_BODY

MB = 1_000_000


def test_aiohttp_buffers_no_more_than_a_json_body():
    app = make_app(daemon=None)
    assert app._client_max_size == MAX_JSON_BODY


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_docker_cp_of_50_mb_streams_through(daemon):
    work = Path(tempfile.mkdtemp(prefix="bt-cp50-", dir="/tmp"))
    try:
        big = work / "big.bin"
        data = os.urandom(50 * MB)
        big.write_bytes(data)
        r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"]})
        cid = r.json()["Id"]
        before = _peak_rss(daemon.pid())
        p = daemon.docker("cp", str(big), f"{cid}:/big.bin", timeout=120)
        assert p.returncode == 0, p.stderr
        grown = _peak_rss(daemon.pid()) - before
        assert grown < 20 * MB, f"berthd's peak memory grew by {grown} bytes"
        back = work / "back"
        back.mkdir()
        p = daemon.docker("cp", f"{cid}:/big.bin", str(back), timeout=120)
        assert p.returncode == 0, p.stderr
        got = (back / "big.bin").read_bytes()
        assert len(got) == 50 * MB
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    finally:
        shutil.rmtree(work, ignore_errors=True)
