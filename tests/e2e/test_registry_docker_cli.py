"""The docker CLI's pull, push, login, logout, pull --all-tags and pull by digest against
berthd and Debian's docker-registry on 127.0.0.1 (plain; TLS with a private CA and htpasswd;
behind a token server), with skopeo on the other side: what berth pushes skopeo reads, what
skopeo copies in berth pulls and runs. A multi-arch index pulls the host's platform, and
--platform picks the other."""
from __future__ import annotations

import json
import os

import pytest

from tests.helpers.registry import (PASSWORD, USER, OCILayout, Registry, busybox_layer,
                                    layer_tar)

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/docker-registry"),
                                reason="Debian's docker-registry is not installed")


@pytest.fixture(scope="module")
def plain():
    reg = Registry("plain").start()
    yield reg
    reg.stop()


def _copy_in(reg: Registry, layout: OCILayout, dest: str, *extra: str) -> None:
    r = reg.skopeo("copy", *extra, *reg.skopeo_tls_args("dest-"), f"oci:{layout.path}:latest",
                   f"docker://{reg.host}/{dest}")
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def bb_image(plain):
    """t/bb:v1 (OCI manifest) and :v2 (Docker v2 schema 2, gzip layers), a busybox layer and
    a file layer, copied in by skopeo."""
    layout = OCILayout(plain.root / "oci-bb")
    layout.write_index([layout.image([busybox_layer(), layer_tar({"etc/motd": b"from skopeo\n"})],
                                     cmd=("/bin/cat", "/etc/motd"))])
    _copy_in(plain, layout, "t/bb:v1")
    _copy_in(plain, layout, "t/bb:v2", "--format", "v2s2")
    return f"{plain.host}/t/bb"


def _rmi(daemon, *refs: str) -> None:
    for ref in refs:
        daemon.docker("rmi", "-f", ref)


def test_skopeo_copy_then_docker_pull_runs_and_a_second_pull_is_up_to_date(daemon, bb_image):
    ref = f"{bb_image}:v1"
    try:
        p = daemon.docker("pull", ref)
        out = p.stdout.decode()
        assert p.returncode == 0, p.stderr
        assert out.startswith("v1: Pulling from t/bb\n"), out
        assert "Pull complete" in out and "Digest: sha256:" in out, out
        assert f"Status: Downloaded newer image for {ref}" in out
        r = daemon.docker("run", "--rm", ref)
        assert r.returncode == 0 and r.stdout == b"from skopeo\n", r.stderr
        p = daemon.docker("pull", ref)
        assert f"Status: Image is up to date for {ref}" in p.stdout.decode(), p.stdout
        digests = json.loads(daemon.docker("inspect", ref).stdout)[0]["RepoDigests"]
        assert len(digests) == 1 and digests[0].startswith(f"{bb_image}@sha256:")
        p = daemon.docker("rmi", ref)      # the last name: the digest reference goes too
        lines = p.stdout.decode().splitlines()
        assert lines[:2] == [f"Untagged: {ref}", f"Untagged: {digests[0]}"], lines
        assert lines[2].startswith("Deleted: sha256:")
    finally:
        _rmi(daemon, ref)


def test_pull_by_digest_records_the_repo_digest(daemon, plain, bb_image):
    r = plain.skopeo("inspect", "--tls-verify=false", f"docker://{bb_image}:v1")
    digest = json.loads(r.stdout)["Digest"]
    try:
        p = daemon.docker("pull", f"{bb_image}@{digest}")
        assert p.returncode == 0, p.stderr
        assert f"Status: Downloaded newer image for {bb_image}@{digest}" in p.stdout.decode()
        view = json.loads(daemon.docker("inspect", f"{bb_image}@{digest}").stdout)[0]
        assert f"{bb_image}@{digest}" in view["RepoDigests"] and view["RepoTags"] == []
        p = daemon.docker("rmi", f"{bb_image}@{digest}")
        assert p.stdout.decode().splitlines() == [f"Untagged: {bb_image}@{digest}",
                                                  f"Deleted: {view['Id']}"], p.stdout
    finally:
        _rmi(daemon, f"{bb_image}@{digest}")


def test_pull_all_tags(daemon, bb_image):
    try:
        p = daemon.docker("pull", "--all-tags", bb_image)
        assert p.returncode == 0, p.stderr
        out = p.stdout.decode()
        assert "v1: Pulling from t/bb" in out and "v2: Pulling from t/bb" in out, out
        assert f"Status: Downloaded newer image for {bb_image}\n" in out, out
        tags = daemon.docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.decode()
        assert f"{bb_image}:v1" in tags and f"{bb_image}:v2" in tags
    finally:
        _rmi(daemon, f"{bb_image}:v1", f"{bb_image}:v2")


def test_a_missing_image_is_the_registrys_404(daemon, plain):
    p = daemon.docker("pull", f"{plain.host}/t/nothing:here")
    assert p.returncode == 1
    assert "manifest unknown" in p.stderr.decode() or "not found" in p.stderr.decode(), p.stderr


def test_docker_push_then_skopeo_reads_it_and_a_second_push_finds_the_layers(daemon, plain):
    ref = f"{plain.host}/pushed/box:1"
    assert daemon.docker("tag", "busybox", ref).returncode == 0
    try:
        p = daemon.docker("push", ref)
        out = p.stdout.decode()
        assert p.returncode == 0, p.stderr
        assert out.startswith(f"The push refers to repository [{plain.host}/pushed/box]\n"), out
        assert ": Pushed" in out
        last = out.strip().splitlines()[-1]
        assert last.startswith("1: digest: sha256:") and " size: " in last, out
        digest = last.split()[2]
        r = plain.skopeo("inspect", "--tls-verify=false", f"docker://{ref}")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["Digest"] == digest
        r = plain.skopeo("copy", "--src-tls-verify=false", f"docker://{ref}",
                         f"oci:{plain.root / 'back'}:x")
        assert r.returncode == 0, r.stderr
        p = daemon.docker("push", ref)
        assert ": Layer already exists" in p.stdout.decode(), p.stdout
        # another repository of the same registry: mounted, not uploaded
        other = f"{plain.host}/pushed/other:1"
        daemon.docker("tag", "busybox", other)
        p = daemon.docker("push", other)
        assert "Mounted from pushed/box" in p.stdout.decode(), p.stdout
    finally:
        _rmi(daemon, ref, f"{plain.host}/pushed/other:1")


def test_pull_and_push_are_image_events(daemon, plain, bb_image):
    import time
    r = plain.skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{bb_image}:v2")
    assert json.loads(r.stdout)["mediaType"] == \
        "application/vnd.docker.distribution.manifest.v2+json"
    since = time.time()
    try:
        assert daemon.docker("pull", f"{bb_image}:v2").returncode == 0
        assert daemon.docker("run", "--rm", f"{bb_image}:v2").stdout == b"from skopeo\n"
        events = daemon.docker("events", "--since", f"{since:.3f}", "--until",
                               f"{time.time():.3f}", "--filter", "type=image",
                               "--format", "{{.Action}} {{.Actor.ID}}").stdout.decode()
        assert f"pull {bb_image}:v2" in events, events
    finally:
        _rmi(daemon, f"{bb_image}:v2")


def test_multi_arch_index_pulls_the_hosts_platform_and_platform_picks_another(daemon, plain):
    layout = OCILayout(plain.root / "oci-multi")
    amd = layout.image([busybox_layer()], arch="amd64")
    arm = layout.image([busybox_layer(), layer_tar({"arm": b"arm64\n"})], arch="arm64")
    layout.write_index([amd, arm], nested=True)
    _copy_in(plain, layout, "t/multi:1", "--all")
    ref = f"{plain.host}/t/multi:1"
    try:
        p = daemon.docker("pull", ref)
        assert p.returncode == 0, p.stderr
        view = json.loads(daemon.docker("inspect", ref).stdout)[0]
        assert view["Architecture"] == "amd64" and len(view["RootFS"]["Layers"]) == 1
        p = daemon.docker("pull", "--platform", "linux/arm64", ref)
        assert p.returncode == 0, p.stderr
        assert "Downloaded newer image" in p.stdout.decode(), p.stdout
        view = json.loads(daemon.docker("inspect", ref).stdout)[0]
        assert view["Architecture"] == "arm64" and len(view["RootFS"]["Layers"]) == 2
        p = daemon.docker("pull", "--platform", "linux/s390x", ref)
        assert p.returncode == 1 and "no matching manifest for linux/s390x" in \
            p.stderr.decode(), p.stderr
    finally:
        _rmi(daemon, ref)
        daemon.docker("image", "prune", "-f")


@pytest.mark.parametrize("mode", ["tls", "token"])
def test_login_push_pull_logout_with_credentials(daemon, mode):
    reg = Registry(mode).start()
    ref = f"{reg.host}/auth/box:1"
    try:
        p = daemon.docker("login", "-u", USER, "--password-stdin", reg.host,
                          input=b"wrong-password\n")
        assert p.returncode == 1, p.stdout
        assert "unauthorized" in p.stderr.decode().lower() or "401" in p.stderr.decode(), p.stderr
        p = daemon.docker("login", "-u", USER, "--password-stdin", reg.host,
                          input=PASSWORD.encode() + b"\n")
        assert p.returncode == 0 and b"Login Succeeded" in p.stdout, p.stderr
        auths = json.loads((daemon.docker_config / "config.json").read_text())["auths"]
        assert reg.host in auths
        daemon.docker("tag", "busybox", ref)
        p = daemon.docker("push", ref)
        assert p.returncode == 0 and b"1: digest: sha256:" in p.stdout, p.stdout + p.stderr
        r = reg.skopeo("inspect", *reg.skopeo_tls_args(), f"docker://{ref}")
        assert r.returncode == 0, r.stderr
        # a mount from the other repository needs a token for both (two scopes)
        daemon.docker("tag", "busybox", f"{reg.host}/auth/other:1")
        p = daemon.docker("push", f"{reg.host}/auth/other:1")
        assert b"Mounted from auth/box" in p.stdout, p.stdout + p.stderr
        daemon.docker("rmi", f"{reg.host}/auth/other:1")
        daemon.docker("rmi", ref)
        p = daemon.docker("pull", ref)
        assert p.returncode == 0 and b"Downloaded newer image" in p.stdout, p.stderr
        assert daemon.docker("logout", reg.host).returncode == 0
        auths = json.loads((daemon.docker_config / "config.json").read_text())["auths"]
        assert reg.host not in auths
        daemon.docker("rmi", ref)
        # docker 28 offers to log in on an unauthorized pull: stdin at EOF says no
        p = daemon.docker("pull", ref, input=b"")
        if mode == "tls":       # htpasswd: nothing without credentials
            assert p.returncode == 1 and b"pull access denied" in p.stderr, p.stdout
        else:                   # the token server gives anonymous pulls a pull-only token
            assert p.returncode == 0, p.stderr
            assert any(req["user"] == USER and any("push" in s for s in req["scope"])
                       for req in reg.token.requests)
            assert reg.token.requests[-1]["user"] is None
    finally:
        _rmi(daemon, ref)
        reg.stop()


@pytest.mark.skipif(not os.path.exists("/usr/bin/docker"), reason="no docker 20.10 CLI")
def test_the_docker_20_10_cli_pulls_and_pushes_too(daemon, plain, bb_image):
    """The suite's CLI is docker 28 (/usr/local/bin/docker); Debian's 20.10 speaks an older
    API version to berthd and must get the same."""
    import subprocess

    def old(*args):
        return subprocess.run(["/usr/bin/docker", *args], capture_output=True,
                              env=daemon.env(), timeout=60)
    ref, pushed = f"{bb_image}:v1", f"{plain.host}/old/cli:1"
    try:
        p = old("pull", ref)
        assert p.returncode == 0 and b"Status: Downloaded newer image" in p.stdout, p.stderr
        assert old("tag", ref, pushed).returncode == 0
        p = old("push", pushed)
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().strip().splitlines()[-1].startswith("1: digest: sha256:")
    finally:
        _rmi(daemon, ref, pushed)


def test_push_all_tags(daemon, plain):
    repo = f"{plain.host}/alltags/box"
    for tag in ("a", "b"):
        assert daemon.docker("tag", "busybox", f"{repo}:{tag}").returncode == 0
    try:
        p = daemon.docker("push", "--all-tags", repo)
        out = p.stdout.decode()
        assert p.returncode == 0, p.stderr
        finals = [line.split(":")[0] for line in out.splitlines() if ": digest: sha256:" in line]
        assert finals == ["a", "b"], out
        r = plain.skopeo("list-tags", "--tls-verify=false", f"docker://{repo}")
        assert sorted(json.loads(r.stdout)["Tags"]) == ["a", "b"], r.stderr
    finally:
        _rmi(daemon, f"{repo}:a", f"{repo}:b")
