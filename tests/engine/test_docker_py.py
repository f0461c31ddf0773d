"""docker-py 7 against berthd: the high-level calls people write."""
from __future__ import annotations

import docker
import pytest


def test_run_raises_container_error_with_stderr(daemon):
    client = daemon.docker_py()
    with pytest.raises(docker.errors.ContainerError) as err:
        client.containers.run("busybox", ["sh", "-c", "echo oops >&2; exit 3"], remove=True)
    assert err.value.exit_status == 3 and err.value.stderr == b"oops\n"


def test_detached_container(daemon):
    client = daemon.docker_py()
    c = client.containers.run("busybox", ["sh", "-c", "echo up; sleep 30"], detach=True,
                              name="dpy-detached", environment={"X": "1"})
    assert client.containers.get("dpy-detached").status == "running"
    assert "X=1" in c.attrs["Config"]["Env"]
    assert "dpy-detached" in [x.name for x in client.containers.list()]
    c.kill()
    assert c.wait()["StatusCode"] == 137
    assert c.logs() == b"up\n"
    c.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("dpy-detached")


def test_images(daemon):
    client = daemon.docker_py()
    assert "busybox:latest" in client.images.get("busybox").tags
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nosuch")


def test_lifecycle_calls(daemon):
    import time
    client = daemon.docker_py()
    since = int(time.time()) - 1
    c = client.containers.run("busybox", ["sleep", "60"], detach=True, name="dpy-life")
    c.pause()
    c.reload()
    assert c.status == "paused" and c.attrs["State"]["Paused"]
    c.unpause()
    c.rename("dpy-life2")
    c.reload()
    assert c.name == "dpy-life2" and c.status == "running"
    assert c.top()["Processes"][0][-1] == "sleep 60"
    stats = c.stats(stream=False)
    assert stats["pids_stats"]["current"] == 1 and stats["memory_stats"]["usage"] > 0
    c.restart(timeout=0)
    c.stop(timeout=0)
    c.reload()
    assert c.status == "exited" and c.attrs["State"]["ExitCode"] == 137
    c.start()
    c.kill(signal="SIGKILL")
    assert c.wait()["StatusCode"] == 137
    events = client.events(since=since, until=int(time.time()) + 1, decode=True,
                           filters={"container": c.id})
    actions = [e["Action"] for e in events]
    assert actions[:4] == ["create", "start", "pause", "unpause"] and actions[-1] == "die"
    with pytest.raises(docker.errors.APIError) as err:
        c.kill()
    assert err.value.status_code == 409
