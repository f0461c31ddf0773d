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
