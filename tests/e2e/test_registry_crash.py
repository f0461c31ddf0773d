"""A berthd killed -9 in the middle of a pull leaves no broken image: the image is recorded
only after all its layers are in, blobs are renamed into the store only when verified, and a
layer is unpacked into staging and renamed when whole. The next pull completes it, resuming the
blob where the killed one stopped (Range)."""
from __future__ import annotations

import http.client
import os
import signal
import threading
import time

import pytest

from tests.helpers.engine_daemon import BerthDaemon
from tests.helpers.registry import FakeRegistry, FakeRegistryThread, layer_tar


@pytest.fixture
def private():
    daemon = BerthDaemon()
    try:
        yield daemon.start()
    finally:
        daemon.cleanup()


def test_a_pull_killed_mid_blob_leaves_no_image_and_the_next_pull_completes(private):
    fake = FakeRegistry(layer_tar({"bin/data": os.urandom(1 << 20)}))
    fake.slow = 0.05                           # 16 pieces of 64 KiB a second
    server = FakeRegistryThread(fake)
    ref = f"127.0.0.1:{server.port}/crash/img"
    ingest = private.data_root / "content" / "ingest"
    try:
        puller = threading.Thread(target=lambda: _quiet(private.api, "POST",
                                  f"/images/create?fromImage={ref}&tag=v1", timeout=60),
                                  daemon=True)
        puller.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            partials = list(ingest.glob("*.partial")) if ingest.is_dir() else []
            if partials and partials[0].stat().st_size > 256 << 10:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the pull did not start writing its blob")
        private.kill(signal.SIGKILL)
        puller.join(10)
        had = partials[0].stat().st_size
        assert had < len(fake.layer)
        private.start()
        assert private.api("GET", f"/images/{ref}:v1/json").status == 404
        fake.slow = 0
        r = private.api("POST", f"/images/create?fromImage={ref}&tag=v1", timeout=60)
        assert r.status == 200 and b"Downloaded newer image" in r.body, r.body
        assert any(int(rg[len("bytes="):-1]) >= 256 << 10 for rg in fake.ranges), fake.ranges
        assert private.api("GET", f"/images/{ref}:v1/json").status == 200
        assert not list(ingest.glob("*.partial"))
    finally:
        server.stop()


def _quiet(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except (OSError, http.client.HTTPException):      # berthd was killed under it
        pass


def test_a_client_that_goes_away_mid_pull_leaves_the_pull_to_finish(daemon):
    """docker pull interrupted (Ctrl-C): berthd finishes the transfer, so what it fetched is
    kept whole, and the image is there for the next pull to find up to date."""
    import socket
    fake = FakeRegistry(layer_tar({"bin/data": os.urandom(512 << 10)}))
    fake.slow = 0.05
    server = FakeRegistryThread(fake)
    ref = f"127.0.0.1:{server.port}/gone/img"
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(daemon.sock))
        s.sendall(f"POST /images/create?fromImage={ref}&tag=v1 HTTP/1.1\r\nHost: x\r\n"
                  f"Content-Length: 0\r\n\r\n".encode())
        got = b""
        while b"Downloading" not in got:
            chunk = s.recv(65536)
            assert chunk, got
            got += chunk
        s.close()
        deadline = time.monotonic() + 30
        while daemon.api("GET", f"/images/{ref}:v1/json").status != 200:
            assert time.monotonic() < deadline, "the pull did not finish"
            time.sleep(0.2)
        r = daemon.api("POST", f"/images/create?fromImage={ref}&tag=v1")
        assert b"Image is up to date" in r.body, r.body
    finally:
        daemon.api("DELETE", f"/images/{ref}:v1")
        server.stop()
