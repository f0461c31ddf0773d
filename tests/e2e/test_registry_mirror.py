"""registry-mirrors: a pull from docker.io asks the mirror first (docker-registry on 127.0.0.1
here), and what the mirror lacks is asked of docker.io after it, as dockerd does."""
from __future__ import annotations

import json
import os

import pytest

from tests.helpers.engine_daemon import BerthDaemon
from tests.helpers.registry import OCILayout, Registry, layer_tar

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/docker-registry"),
                                reason="Debian's docker-registry is not installed")


def test_a_docker_io_pull_is_served_by_the_mirror(tmp_path):
    mirror = Registry("plain").start()
    daemon = BerthDaemon(extra_args=("--registry-mirror", f"http://{mirror.host}"))
    try:
        layout = OCILayout(tmp_path / "oci")
        layout.write_index([layout.image([layer_tar({"etc/mirrored": b"yes\n"})])])
        r = mirror.skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.path}:latest",
                          f"docker://{mirror.host}/library/mirrored:1")
        assert r.returncode == 0, r.stderr
        daemon.start()
        p = daemon.docker("pull", "mirrored:1")
        out = p.stdout.decode()
        assert p.returncode == 0, p.stderr
        assert out.startswith("1: Pulling from library/mirrored\n"), out
        assert "Status: Downloaded newer image for mirrored:1" in out
        view = json.loads(daemon.docker("inspect", "mirrored:1").stdout)[0]
        assert view["RepoTags"] == ["mirrored:1"]
        assert view["RepoDigests"][0].startswith("mirrored@sha256:")
        # not on the mirror: docker.io is asked next (and cannot be reached here)
        p = daemon.docker("pull", "notmirrored:1")
        assert p.returncode == 1 and "registry-1.docker.io" in p.stderr.decode(), p.stderr
    finally:
        daemon.cleanup()
        mirror.stop()
