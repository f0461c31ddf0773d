"""The json-file log options as dockerd reads them, seen in the files the shim writes."""
from __future__ import annotations

from pathlib import Path


def test_log_max_size_10m_is_ten_million_bytes_as_dockerd(daemon):
    """--log-opt max-size is decimal (go-units' FromHumanSize) in dockerd: the file rotates
    once it holds 10,000,000 bytes, not 10,485,760 (the binary reading of the memory
    options, which berthd used to apply here)."""
    r = daemon.api("POST", "/containers/create", {
        "Image": "busybox",
        "Cmd": ["sh", "-c", "head -c 11000000 /dev/zero | tr '\\0' x | fold -w 999"],
        "HostConfig": {"LogConfig": {"Type": "json-file",
                                     "Config": {"max-size": "10m", "max-file": "2"}}}})
    assert r.status == 201, r
    cid = r.json()["Id"]
    assert daemon.api("POST", f"/containers/{cid}/start").status == 204
    assert daemon.api("POST", f"/containers/{cid}/wait", timeout=120).json()["StatusCode"] == 0
    log_path = Path(daemon.api("GET", f"/containers/{cid}/json").json()["LogPath"])
    rotated = Path(f"{log_path}.1").stat().st_size
    # rotated before the first write past max-size: one entry (~1.1 kB here) over it at most
    assert 10_000_000 <= rotated < 10_000_000 + 2000, rotated
