"""docker build (the classic builder's API, POST /build) against berthd, through the docker
CLI 20.10 (classic by default) and 28 (DOCKER_BUILDKIT=0, its fallback without buildx) and
berth build, with Debian's dockerd building the same context as the reference."""
from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (fixture)

CLIS = [c for c in ("/usr/bin/docker", "/usr/local/bin/docker") if Path(c).exists()]

DOCKERFILE = """\
ARG BASE=busybox
FROM $BASE AS tools
ARG GREETING=hello
RUN echo "$GREETING from tools" > /greeting && mkdir -p /out && echo built > /out/flag
FROM busybox
MAINTAINER berth tests
LABEL org.example.title="build test" version=1
ENV APP_HOME=/srv/app PATH=/srv/app/bin:$PATH
WORKDIR $APP_HOME
COPY --chown=1000:1000 files/ ./files/
ADD bundle.tar.gz /opt/
COPY --from=tools /greeting /out/ ./
COPY --from=tools /out/fl* /globbed/
SHELL ["/bin/sh", "-ec"]
RUN mkdir -p bin && printf '#!/bin/sh\\necho tool ran\\n' > bin/tool && chmod +x bin/tool
EXPOSE 8080 53/udp
VOLUME ["/data"]
USER 1000:1000
STOPSIGNAL SIGUSR1
HEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD tool
ONBUILD RUN echo triggered > /tmp/onbuild
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /srv/app/greeting /globbed/flag && ls -n /srv/app/files && cat /opt/top/in-tar && id -u"]
"""

COMPARED = ("User", "WorkingDir", "Env", "Entrypoint", "Cmd", "Labels", "ExposedPorts",
            "Volumes", "Healthcheck", "StopSignal", "OnBuild", "Shell")


def make_context(root: Path) -> Path:
    ctx = root / "ctx"
    (ctx / "files" / "sub").mkdir(parents=True)
    (ctx / "files" / "a.txt").write_text("a\n")
    (ctx / "files" / "sub" / "b.sh").write_text("echo b\n")
    (ctx / "files" / "sub" / "b.sh").chmod(0o750)
    with tarfile.open(ctx / "bundle.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("top/in-tar")
        data = b"from the archive\n"
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / ".dockerignore").write_text("*.swp\n")
    (ctx / "junk.swp").write_text("ignored\n")
    # a whole-second time on every file: with the time the test made them at, one run's two
    # listings differed by a minute (15:03 and 15:04; berth's build from docker CLI 28,
    # dockerd's from 20.10), a fractional mtime tarred differently, it seems
    for path in [ctx, *ctx.rglob("*")]:
        os.utime(path, (978307200, 978307200))
    return ctx


def cli(env: dict, binary: str, *args: str, input: bytes | None = None,
        timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], input=input, capture_output=True,
                          env={**env, "DOCKER_BUILDKIT": "0"}, timeout=timeout)


def ok(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 0, (p.args, p.stdout.decode()[-3000:], p.stderr.decode()[-3000:])
    return p.stdout.decode()


@pytest.fixture
def names(daemon):
    """Unique image names; whatever they tag is removed after the test (intermediate images
    stay, as the cache)."""
    made: list[str] = []

    def new() -> str:
        made.append(f"bt-{uuid.uuid4().hex[:8]}")
        return made[-1]
    yield new
    for name in made:
        daemon.api("DELETE", f"/images/{name}:latest?force=1")


def inspect(env: dict, ref: str) -> dict:
    return json.loads(ok(cli(env, "/usr/bin/docker", "image", "inspect", ref)))[0]


@pytest.mark.parametrize("binary", CLIS)
def test_multistage_build_runs_and_matches_dockerd(daemon, dockerd, names, binary,  # noqa: F811
                                                   tmp_path):
    ctx = make_context(tmp_path)
    name = names()
    out = ok(cli(daemon.env(), binary, "build", "-t", name, str(ctx)))
    assert "Step 1/23 : ARG BASE=busybox" in out
    assert f"Successfully tagged {name}:latest" in out
    peer_name = f"peer-{name}"
    ok(cli(dockerd.daemon.env, "/usr/bin/docker", "build", "--network", "none", "-t",
           peer_name, str(ctx)))
    ours, theirs = inspect(daemon.env(), name), inspect(dockerd.daemon.env, peer_name)
    for key in COMPARED:
        assert ours["Config"].get(key) == theirs["Config"].get(key), key
    assert ours["Author"] == theirs["Author"] == "berth tests"
    assert len(ours["RootFS"]["Layers"]) == len(theirs["RootFS"]["Layers"])
    # history names each step's image, then the base's, walking the parents as dockerd does
    named = [[line != "<missing>" for line in ok(cli(
        env, "/usr/bin/docker", "history", "-q", "--no-trunc", ref)).split()]
        for env, ref in ((daemon.env(), name), (dockerd.daemon.env, peer_name))]
    assert named[0] == named[1] and sum(named[0]) > 1, named
    run = ok(cli(daemon.env(), binary, "run", "--rm", name))
    peer_run = ok(cli(dockerd.daemon.env, "/usr/bin/docker", "run", "--rm", "--network",
                      "none", peer_name))
    assert run == peer_run
    assert " 2001 a.txt\n" in run     # the context's time, kept (a build's own would differ)
    assert run.startswith("hello from tools\nbuilt\n") and run.endswith("1000\n")
    assert "1000     1000" in run and "from the archive" in run
    # the ONBUILD trigger runs at a child's FROM
    child = tmp_path / "child"
    child.mkdir()
    (child / "Dockerfile").write_text(f"FROM {name}\nUSER 0\n")
    child_name = names()
    out = ok(cli(daemon.env(), binary, "build", "-t", child_name, str(child)))
    assert "# Executing 1 build trigger" in out
    out = ok(cli(daemon.env(), binary, "run", "--rm", child_name, "cat /tmp/onbuild"))
    assert out == "triggered\n"
    assert inspect(daemon.env(), child_name)["Config"]["OnBuild"] in (None, [])


def test_rebuild_is_all_cache_and_a_touched_file_rebuilds_from_its_step(daemon, names,
                                                                        tmp_path):
    ctx = make_context(tmp_path)
    name = names()
    env = daemon.env()
    first = ok(cli(env, "/usr/bin/docker", "build", "-t", name, str(ctx)))
    again = ok(cli(env, "/usr/bin/docker", "build", "-t", name, str(ctx)))
    steps = again.count("Step ")
    # every step but the ARG before FROM and the two FROMs comes from the cache
    assert again.count(" ---> Using cache") == steps - 3
    assert "Running in" not in again
    assert first.splitlines()[-2] == again.splitlines()[-2]     # Successfully built <same id>
    (ctx / "files" / "a.txt").write_text("changed\n")
    third = ok(cli(env, "/usr/bin/docker", "build", "-t", name, str(ctx)))
    before, _, after = third.partition("COPY --chown=1000:1000 files/ ./files/")
    # before: the steps up to the COPY's own "Step" line (not cached: the ARG, two FROMs)
    assert before.count("Using cache") == before.count("Step ") - 4
    assert "Using cache" not in after and "Running in" in after
    nocache = ok(cli(env, "/usr/bin/docker", "build", "--no-cache", "-t", name, str(ctx)))
    assert "Using cache" not in nocache


ERRORS = [
    ("FROM busybox\nFOO bar\n", "unknown instruction: FOO", 1),
    ("FROM busybox\nCOPY missing.txt /\n",
     "COPY failed: file not found in build context or excluded by .dockerignore: "
     "stat missing.txt: file does not exist", 1),
    ("FROM busybox\nRUN exit 3\n", "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
     3),
    ("FROM busybox\nCOPY --chmod=644 Dockerfile /\n",
     "the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ "
     "to learn how to build images with BuildKit enabled", 1),
    ("FROM busybox\nCOPY *.nothing /\n", "COPY failed: no source files were specified", 1),
    ("FROM busybox\nCOPY Dockerfile Dockerfile /dst\n",
     "When using COPY with more than one source file, the destination must be a directory "
     "and end with a /", 1),
    ("FROM busybox\nCOPY --link Dockerfile /x\n",
     "dockerfile parse error line 2: Unknown flag: link", 1),
    ("FROM busybox\nRUN --mount=type=cache,target=/x true\n",
     "the --mount option requires BuildKit.", 1),
    # the pull fails at the tests' unreachable proxy, in both daemons' words
    ("FROM no-such-image-berth-test:1\n", 'Get "https://registry-1.docker.io/v2/": ', 1),
]


@pytest.mark.parametrize("text,message,code", ERRORS,
                         ids=["unknown", "copy", "run", "chmod", "glob", "multi", "link", "mount",
                              "base"])
def test_errors_give_dockers_message_and_code_and_leave_nothing(daemon, dockerd,  # noqa: F811
                                                                names, tmp_path, text,
                                                                message, code):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(text)
    name = names()
    env = daemon.env()
    before_images = {i["Id"] for i in daemon.api("GET", "/images/json?all=1").json()}
    before_ctrs = daemon.container_ids()
    p = cli(env, "/usr/bin/docker", "build", "--force-rm", "-t", name, str(ctx))
    assert p.returncode == code, (p.stdout, p.stderr)
    assert message in p.stderr.decode()
    assert daemon.container_ids() == before_ctrs
    tags = [t for i in daemon.api("GET", "/images/json").json() for t in i["RepoTags"] or []]
    assert f"{name}:latest" not in tags
    if code != 3:       # a failed RUN keeps the images of the steps before it (the cache)
        after = {i["Id"] for i in daemon.api("GET", "/images/json?all=1").json()}
        assert after == before_images
    peer = cli(dockerd.daemon.env, "/usr/bin/docker", "build", "--network", "none",
               "--force-rm", "-t", f"peer-{name}", str(ctx))
    assert peer.returncode == code
    assert message in peer.stderr.decode()


def test_a_failed_run_leaves_no_container_where_dockerd_keeps_one(daemon, dockerd,  # noqa: F811
                                                                  tmp_path):
    """Without --force-rm, dockerd 20.10 keeps the failed step's container; berth leaves
    nothing behind from a failed build (--rm=false still keeps intermediate containers)."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo out; exit 4\n")
    left = []
    for env, extra in ((daemon.env(), ()), (dockerd.daemon.env, ("--network", "none"))):
        before = set(ok(cli(env, "/usr/bin/docker", "ps", "-aq", "--no-trunc")).split())
        p = cli(env, "/usr/bin/docker", "build", *extra, str(ctx))
        assert p.returncode == 4 and b"out\n" in p.stdout
        new = set(ok(cli(env, "/usr/bin/docker", "ps", "-aq", "--no-trunc")).split()) - before
        left.append(len(new))
        if new:
            ok(cli(env, "/usr/bin/docker", "rm", *new))
    assert left == [0, 1]


def test_bad_target_and_unused_build_arg(daemon, names, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox AS one\nARG USED\nRUN echo $USED\n"
                                    "FROM busybox AS two\n")
    env = daemon.env()
    p = cli(env, "/usr/bin/docker", "build", "--target", "nope", str(ctx))
    assert p.returncode == 1
    assert "failed to reach build target nope in Dockerfile" in p.stderr.decode()
    name = names()
    out = ok(cli(env, "/usr/bin/docker", "build", "--target", "one", "--build-arg", "USED=yes",
                 "--build-arg", "EXTRA=1", "-t", name, str(ctx)))
    assert "yes\n" in out
    assert "[Warning] One or more build-args [EXTRA] were not consumed" in out
    assert "two" not in out


def test_berth_build_from_stdin_with_iidfile_and_quiet(daemon, names, tmp_path):
    name = names()
    iid = tmp_path / "iid"
    p = daemon.berth("build", "-t", name, "--iidfile", str(iid), "--label", "k=v", "-",
                     input=b"FROM busybox\nRUN echo from-stdin\nCMD [\"true\"]\n")
    out = ok(p)
    assert "from-stdin" in out and f"Successfully tagged {name}:latest" in out
    image = daemon.api("GET", f"/images/{name}/json").json()
    assert iid.read_text() == image["Id"]
    assert image["Config"]["Labels"] == {"k": "v"}
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "sub" / "kept").write_text("k")
    (ctx / "secret.key").write_text("s")
    (ctx / ".dockerignore").write_text("*.key\n")
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx/\n"
                                    "ADD https://example.com/x /x\n")
    p = daemon.berth("build", "--force-rm", str(ctx))
    assert p.returncode == 1 and b"downloads nothing" in p.stderr
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY . /ctx/\nCMD [\"ls\", \"-A\", \"/ctx\"]\n")
    ok(daemon.berth("build", "-t", name, str(ctx)))
    listed = ok(daemon.docker("run", "--rm", name)).split()
    assert listed == [".dockerignore", "Dockerfile", "sub"]     # secret.key stayed behind
    q = daemon.berth("build", "-q", "-", input=b"FROM busybox\nRUN false\n")
    assert q.returncode == 1
    assert b"The command '/bin/sh -c false' returned a non-zero code: 1" in q.stderr


def test_run_options_reach_the_run_container_and_buildkit_is_refused(daemon, names, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN grep builder.test /etc/hosts && "
                                    "ls /sys/class/net\n")
    out = ok(cli(daemon.env(), "/usr/bin/docker", "build", "--network", "none", "--add-host",
                 "builder.test:10.1.2.3", str(ctx)))
    assert "10.1.2.3\tbuilder.test" in out and "\nlo\n" in out and "eth0" not in out
    p = daemon.api("POST", "/build?version=2")
    assert p.status == 400 and "BuildKit" in p.json()["message"]
    p = daemon.api("POST", "/build?remote=https://example.com/ctx.git")
    assert p.status == 400 and "downloads nothing" in p.json()["message"]


@pytest.mark.skipif(not Path("/usr/local/bin/docker").exists(), reason="no docker CLI 28")
def test_docker_28_without_buildx_falls_back_to_the_classic_api(daemon, names, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo fallback\n")
    env = {k: v for k, v in daemon.env().items() if k != "DOCKER_BUILDKIT"}
    env["DOCKER_CONFIG"] = str(tmp_path / "no-plugins")     # no buildx plugin to find
    name = names()
    p = subprocess.run(["/usr/local/bin/docker", "build", "-t", name, str(ctx)],
                       capture_output=True, env=env, timeout=120)
    out = ok(p)
    assert "fallback\n" in out and f"Successfully tagged {name}:latest" in out
    assert b"legacy builder is deprecated" in p.stderr


@pytest.mark.parametrize("mode", ["gz", "bz2", "xz"])
def test_compressed_context_through_docker_py(daemon, names, mode):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{mode}") as tar:
        data = b"FROM busybox\nLABEL context=compressed\n"
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    name = names()
    client = daemon.docker_py()
    image, logs = client.images.build(fileobj=buf, custom_context=True, tag=name, rm=True)
    assert image.labels == {"context": "compressed"}
    assert any("Successfully tagged" in (line.get("stream") or "") for line in logs)
