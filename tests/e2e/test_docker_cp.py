"""`docker cp` against berthd with the unchanged docker CLI, both ways, running and stopped
containers: contents, modes and owners; symbolic links and `..` resolved inside the container;
binds and /etc/hostname as the container sees them; dockerd's errors; nothing left behind by bad
input or a client that goes away. Where Debian's dockerd is installed, the same copies run
against it and must give the same archives, owners and errors."""
from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import tarfile
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path

import pytest

from tests.helpers.engine_daemon import DOCKER
from tests.helpers.peer_dockerd import (  # noqa: F401 (dockerd: a fixture)
    dockerd, skip_where_its_exec_sees_the_host)

# what each test container holds, made by its own command (so stopped ones have it too)
SETUP = ("mkdir -p /data/d/sub && echo hello > /data/d/f && chown 1:1 /data/d/f && "
         "chmod 640 /data/d/f && echo deep > /data/d/sub/g && ln /data/d/f /data/d/hard && "
         "ln -s /etc/passwd /data/d/abs && ln -s ../../../../../../../etc /data/up && "
         "ln -s /etc /data/etclink && touch /data/ready")
IMAGE_PASSWD_LINE = b"nobody:x:65534:65534:nobody:/home:/bin/false\n"   # berth's busybox image


def docker_ok(daemon, *args: str, input: bytes | None = None) -> bytes:
    p = daemon.docker(*args, input=input)
    assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def tar_members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def tar_file(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(name).read()


def make_box(daemon, name: str, state: str, *flags: str) -> str:
    docker_ok(daemon, "run", "-d", "--name", name, *flags, "busybox", "sh", "-c",
              SETUP + " && exec sleep 300")
    for _ in range(100):
        if daemon.docker("exec", name, "test", "-e", "/data/ready").returncode == 0:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"{name} did not set itself up")
    if state == "stopped":
        docker_ok(daemon, "stop", "-t", "0", name)
    return name


@pytest.fixture(params=["running", "stopped"])
def box(request, daemon) -> str:
    return make_box(daemon, f"cp-{request.param}", request.param)


class Raw(HTTPConnection):
    """HTTP to a unix socket, for the requests the CLI does not make (bad bodies, HEAD)."""

    def __init__(self, path: str):
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self._path)


def raw(sock: str, method: str, path: str, body: bytes | None = None):
    conn = Raw(sock)
    try:
        conn.request(method, path, body=body,
                     headers={"Content-Type": "text/plain"} if body is not None else {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def path_stat(sock: str, container: str, path: str) -> dict:
    status, headers, _ = raw(sock, "HEAD", f"/containers/{container}/archive?path={path}")
    assert status == 200, (status, path)
    return json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))


def helpers_running() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "engine/container_fs.py" in line]


# out of the container -----------------------------------------------------------------------

def test_a_file_and_a_directory_out(daemon, box, tmp_path):
    docker_ok(daemon, "cp", f"{box}:/data/d/f", str(tmp_path / "f"))
    assert (tmp_path / "f").read_bytes() == b"hello\n"
    assert (tmp_path / "f").stat().st_mode & 0o7777 == 0o640
    docker_ok(daemon, "cp", f"{box}:/data/d", str(tmp_path / "out"))
    out = tmp_path / "out"
    assert (out / "sub" / "g").read_bytes() == b"deep\n"
    assert os.readlink(out / "abs") == "/etc/passwd"
    assert os.path.samefile(out / "f", out / "hard")
    # the stream itself: dockerd's names, the container's owners and modes
    members = tar_members(docker_ok(daemon, "cp", f"{box}:/data/d", "-"))
    assert set(members) == {"d", "d/f", "d/hard", "d/sub", "d/sub/g", "d/abs"}
    f = members["d/f"]
    assert (f.uid, f.gid, f.mode, f.size) == (1, 1, 0o640, 6)
    assert members["d/hard"].islnk() and members["d/hard"].linkname == "d/f"
    assert set(tar_members(docker_ok(daemon, "cp", f"{box}:/data/d/.", "-"))) == {
        ".", "./f", "./hard", "./sub", "./sub/g", "./abs"}


def test_links_and_dotdot_resolve_inside_the_container(daemon, box, tmp_path):
    host_passwd = Path("/etc/passwd").read_bytes()
    for i, source in enumerate(["/data/up/passwd", "/../../../../../etc/passwd",
                                "/data/etclink/passwd", "data/d/../../../../etc/passwd"]):
        docker_ok(daemon, "cp", f"{box}:{source}", str(tmp_path / f"p{i}"))
        copied = (tmp_path / f"p{i}").read_bytes()
        assert IMAGE_PASSWD_LINE in copied and copied != host_passwd, source
    docker_ok(daemon, "cp", "-L", f"{box}:/data/d/abs", str(tmp_path / "followed"))
    assert IMAGE_PASSWD_LINE in (tmp_path / "followed").read_bytes()
    # without -L the link itself comes
    members = tar_members(docker_ok(daemon, "cp", f"{box}:/data/d/abs", "-"))
    assert members["abs"].issym() and members["abs"].linkname == "/etc/passwd"
    # the stat's link target is the fully resolved path inside the container
    sock = str(daemon.sock)
    assert path_stat(sock, box, "/data/d/abs")["linkTarget"] == "/etc/passwd"
    up = path_stat(sock, box, "/data/up")
    assert up["linkTarget"] == "/etc" and up["mode"] & (1 << 27)
    assert path_stat(sock, box, "/data/up/")["mode"] & (1 << 31)


def test_missing_paths(daemon, box, tmp_path):
    p = daemon.docker("cp", f"{box}:/no/such", str(tmp_path / "x"))
    assert p.returncode == 1
    # the CLI 28 shows dockerd's message, 20.10 its own for any 404
    assert (f"Could not find the file /no/such in container {box}".encode() in p.stderr
            or f"No such container:path: {box}:/no/such".encode() in p.stderr), p.stderr
    (tmp_path / "f").write_text("f")
    p = daemon.docker("cp", str(tmp_path / "f"), f"{box}:/no/such/dir/")
    assert p.returncode == 1
    status, _, body = raw(str(daemon.sock), "PUT", f"/containers/{box}/archive?path=/no/such",
                          b"")
    assert (status, json.loads(body)) == (
        404, {"message": f"Could not find the file /no/such in container {box}"})
    p = daemon.docker("cp", "nosuchbox:/etc/passwd", str(tmp_path / "y"))
    assert p.returncode == 1 and b"No such container" in p.stderr
    status, _, body = raw(str(daemon.sock), "GET", "/containers/nosuchbox/archive?path=/etc")
    assert (status, json.loads(body)) == (404, {"message": "No such container: nosuchbox"})


# into the container ---------------------------------------------------------------------------

def read_back(daemon, name: str, path: str) -> dict[str, tarfile.TarInfo]:
    return tar_members(docker_ok(daemon, "cp", f"{name}:{path}", "-"))


def test_a_file_and_a_directory_in(daemon, box, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"from the host\n")
    os.chown(src, 1234, 5678)
    os.chmod(src, 0o604)
    docker_ok(daemon, "cp", str(src), f"{box}:/tmp/")
    data = docker_ok(daemon, "cp", f"{box}:/tmp/in.txt", "-")
    m = tar_members(data)["in.txt"]
    # as dockerd: the archive's owner (the CLI sends the host file's), its mode
    assert (m.uid, m.gid, m.mode) == (1234, 5678, 0o604)
    assert tar_file(data, "in.txt") == b"from the host\n"
    # a new name, and over an existing file
    docker_ok(daemon, "cp", str(src), f"{box}:/data/d/f")
    assert tar_file(docker_ok(daemon, "cp", f"{box}:/data/d/f", "-"), "f") == b"from the host\n"
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "c").write_bytes(b"c")
    os.symlink("b/c", tree / "a" / "lc")
    docker_ok(daemon, "cp", str(tree), f"{box}:/newtree")
    members = read_back(daemon, box, "/newtree")
    assert {"newtree/a/b/c", "newtree/a/lc"} <= set(members)
    assert members["newtree/a/lc"].linkname == "b/c"
    if box.endswith("running"):
        assert docker_ok(daemon, "exec", box, "cat", "/newtree/a/lc") == b"c"


def test_into_a_link_that_points_outside_lands_inside(daemon, box, tmp_path):
    marker = f"berth-cp-{uuid.uuid4().hex[:8]}"
    (tmp_path / marker).write_text("m")
    docker_ok(daemon, "cp", str(tmp_path / marker), f"{box}:/data/etclink/")
    docker_ok(daemon, "cp", str(tmp_path / marker), f"{box}:/data/up/{marker}-2")
    assert not os.path.exists(f"/etc/{marker}") and not os.path.exists(f"/etc/{marker}-2")
    assert {marker, f"{marker}-2"} <= {n.split("/", 1)[-1]
                                       for n in read_back(daemon, box, "/etc")}


def test_archive_mode_gives_the_containers_user(daemon, tmp_path):
    src = tmp_path / "owned"
    src.write_text("x")
    os.chown(src, 1234, 5678)
    docker_ok(daemon, "run", "-d", "--name", "cp-user", "--user", "nobody", "busybox",
              "sleep", "300")
    docker_ok(daemon, "cp", "-a", str(src), "cp-user:/tmp/a")
    docker_ok(daemon, "cp", str(src), "cp-user:/tmp/plain")
    out = docker_ok(daemon, "exec", "cp-user", "stat", "-c", "%n %u:%g", "/tmp/a", "/tmp/plain")
    assert out == b"/tmp/a 65534:65534\n/tmp/plain 1234:5678\n"
    # no user: -a keeps the archive's owners, as dockerd
    docker_ok(daemon, "run", "-d", "--name", "cp-root", "busybox", "sleep", "300")
    docker_ok(daemon, "cp", "-a", str(src), "cp-root:/tmp/a")
    assert docker_ok(daemon, "exec", "cp-root", "stat", "-c", "%u:%g", "/tmp/a") == b"1234:5678\n"


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_binds_and_etc_files_as_the_container_sees_them(daemon, tmp_path, state):
    bind = tmp_path / "bind"
    bind.mkdir()
    (bind / "there").write_text("on the host\n")
    name = make_box(daemon, f"cp-bind-{state}", state, "-v", f"{bind}:/mnt/b",
                    "--hostname", "boxhost")
    assert tar_file(docker_ok(daemon, "cp", f"{name}:/mnt/b/there", "-"), "there") == \
        b"on the host\n"
    (tmp_path / "put").write_text("from cp\n")
    docker_ok(daemon, "cp", str(tmp_path / "put"), f"{name}:/mnt/b/")
    assert (bind / "put").read_text() == "from cp\n"
    assert tar_file(docker_ok(daemon, "cp", f"{name}:/etc/hostname", "-"), "hostname") == \
        b"boxhost\n"
    assert b"localhost" in tar_file(docker_ok(daemon, "cp", f"{name}:/etc/hosts", "-"), "hosts")


def test_a_container_never_started(daemon, tmp_path):
    docker_ok(daemon, "create", "--name", "cp-created", "busybox", "cat", "/in")
    (tmp_path / "in").write_text("put before start\n")
    docker_ok(daemon, "cp", str(tmp_path / "in"), "cp-created:/in")
    assert tar_file(docker_ok(daemon, "cp", "cp-created:/in", "-"), "in") == \
        b"put before start\n"
    assert docker_ok(daemon, "start", "-a", "cp-created") == b"put before start\n"


# volumes of a stopped container ---------------------------------------------------------------

@pytest.fixture
def vols(daemon):
    """The session's berthd; the volumes a test makes go after it (its containers first)."""
    def names() -> set[str]:
        return {v["Name"] for v in daemon.api("GET", "/volumes").json()["Volumes"] or []}
    before = names()
    yield daemon
    daemon.remove_containers(daemon.container_ids())
    for name in names() - before:
        assert daemon.api("DELETE", f"/volumes/{name}").status == 204, name


def test_a_stopped_containers_volumes_as_it_sees_them(vols, tmp_path):
    # As dockerd's openContainerFS: a stopped container's named, anonymous and image volumes
    # are mounted where a start mounts them, so cp reads and writes the volume, not the layer.
    vol = f"cp-vol-{uuid.uuid4().hex[:8]}"
    docker_ok(vols, "run", "--name", "cp-vols", "-v", f"{vol}:/named", "-v", "/anon",
              "-v", f"{vol}:/named-ro:ro", "busybox", "sh", "-c",
              "echo in-named > /named/f && echo in-anon > /anon/f")
    assert tar_file(docker_ok(vols, "cp", "cp-vols:/named/f", "-"), "f") == b"in-named\n"
    assert tar_file(docker_ok(vols, "cp", "cp-vols:/anon/f", "-"), "f") == b"in-anon\n"
    assert tar_file(docker_ok(vols, "cp", "cp-vols:/named-ro/f", "-"), "f") == b"in-named\n"
    (tmp_path / "put").write_text("from cp\n")
    docker_ok(vols, "cp", str(tmp_path / "put"), "cp-vols:/named/")
    docker_ok(vols, "cp", str(tmp_path / "put"), "cp-vols:/anon/")
    data = json.loads(docker_ok(vols, "volume", "inspect", vol))[0]["Mountpoint"]
    assert Path(data, "put").read_text() == "from cp\n"
    anon = next(m["Source"] for m in json.loads(docker_ok(vols, "inspect", "cp-vols"))[0]
                ["Mounts"] if m["Destination"] == "/anon")
    assert Path(anon, "put").read_text() == "from cp\n"
    # the container sees them at its next start
    assert docker_ok(vols, "start", "-a", "cp-vols") == b""
    out = docker_ok(vols, "run", "--rm", "--volumes-from", "cp-vols", "busybox", "cat",
                    "/named/put", "/anon/put")
    assert out == b"from cp\nfrom cp\n"
    # a read-only volume refuses, as dockerd: "mounted volume is marked read-only"
    p = vols.docker("cp", str(tmp_path / "put"), "cp-vols:/named-ro/")
    assert p.returncode == 1 and b"mounted volume is marked read-only" in p.stderr, p
    # a container never started sees its volume too
    docker_ok(vols, "create", "--name", "cp-never", "-v", f"{vol}:/v", "busybox", "true")
    assert set(read_back(vols, "cp-never", "/v")) >= {"v/f", "v/put"}


def test_a_stopped_containers_opt_volume_is_mounted_for_the_copy(vols, tmp_path):
    # A volume made with --opt type=... is mounted only while a user runs; dockerd mounts it
    # for a copy of a stopped container's files, and so does berthd, and lets it go after.
    device = tmp_path / "device"
    device.mkdir()
    (device / "there").write_text("on the device\n")
    vol = f"cp-opt-{uuid.uuid4().hex[:8]}"
    docker_ok(vols, "volume", "create", "--opt", "type=none", "--opt", "o=bind",
              "--opt", f"device={device}", vol)
    docker_ok(vols, "create", "--name", "cp-opt", "-v", f"{vol}:/v", "busybox", "true")
    mounts_before = Path("/proc/self/mountinfo").read_text().count(f"/{vol}/_data")
    assert mounts_before == 0
    assert tar_file(docker_ok(vols, "cp", "cp-opt:/v/there", "-"), "there") == \
        b"on the device\n"
    (tmp_path / "put").write_text("from cp\n")
    docker_ok(vols, "cp", str(tmp_path / "put"), "cp-opt:/v/")
    assert (device / "put").read_text() == "from cp\n"
    # nothing stays mounted after the copies
    assert Path("/proc/self/mountinfo").read_text().count(f"/{vol}/_data") == 0
    assert helpers_running() == []


def test_export_of_a_stopped_container_leaves_its_volumes_out(vols):
    # dockerd's export is the container's root filesystem alone (daemon.Mount, no volumes),
    # running or not: the volume's mount point is there, empty, its files are not.
    vol = f"cp-exp-{uuid.uuid4().hex[:8]}"
    docker_ok(vols, "run", "--name", "cp-exp", "-v", f"{vol}:/named", "-v", "/anon", "busybox",
              "sh", "-c", "echo x > /named/f && echo x > /anon/f && echo x > /layer")
    names = set(tar_members(docker_ok(vols, "export", "cp-exp")))
    assert {"layer", "named", "anon"} <= {n.rstrip("/") for n in names}
    assert not {"named/f", "anon/f"} & names


# refusals and what they leave ------------------------------------------------------------------

def test_refusals_as_dockerd(daemon, tmp_path):
    sock = str(daemon.sock)
    (tmp_path / "f").write_text("f")
    ro_bind = tmp_path / "ro"
    ro_bind.mkdir()
    docker_ok(daemon, "run", "-d", "--name", "cp-ro", "--read-only", "-v", f"{ro_bind}:/ro:ro",
              "busybox", "sleep", "300")
    p = daemon.docker("cp", str(tmp_path / "f"), "cp-ro:/tmp/")
    assert p.returncode == 1 and b"container rootfs is marked read-only" in p.stderr
    p = daemon.docker("cp", str(tmp_path / "f"), "cp-ro:/ro/")
    assert p.returncode == 1 and b"mounted volume is marked read-only" in p.stderr
    assert os.listdir(ro_bind) == []
    status, _, body = raw(sock, "PUT", "/containers/cp-ro/archive?path=/etc/passwd", b"")
    assert (status, json.loads(body)["message"]) == (400, "extraction point is not a directory")
    status, _, body = raw(sock, "GET", "/containers/cp-ro/archive?path=/etc/passwd/")
    assert status == 400 and b"not a directory" in body
    status, _, body = raw(sock, "GET", "/containers/cp-ro/archive")
    assert (status, json.loads(body)) == (400, {"message": "bad parameter: path cannot be empty"})
    status, _, _ = raw(sock, "HEAD", "/containers/cp-ro/archive?path=/no/such")
    assert status == 404


@pytest.mark.parametrize("state", ["running", "stopped"])
def test_bad_archives_leave_nothing_behind(daemon, state):
    name = make_box(daemon, f"cp-bad-{state}", state)
    sock = str(daemon.sock)
    before = read_back(daemon, name, "/tmp")
    escaping = io.BytesIO()
    with tarfile.open(fileobj=escaping, mode="w") as tar:
        info = tarfile.TarInfo("../../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    for body, message in [(b"not a tar at all" * 64, "invalid tar archive"),
                          (escaping.getvalue(), "invalid entry name")]:
        status, _, text = raw(sock, "PUT", f"/containers/{name}/archive?path=/tmp", body)
        assert status == 400 and message in json.loads(text)["message"]
    assert read_back(daemon, name, "/tmp").keys() == before.keys()
    assert not os.path.exists("/escape")
    assert helpers_running() == []
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if str(daemon.root) in line and "merged" in line] == []


def test_a_client_that_goes_away_frees_the_container(daemon):
    docker_ok(daemon, "run", "--name", "cp-big", "busybox", "dd", "if=/dev/zero", "of=/big",
              "bs=1M", "count=64")
    reader = subprocess.Popen([DOCKER, "cp", "cp-big:/big", "-"], stdout=subprocess.PIPE,
                              env=daemon.env())
    reader.stdout.read(1 << 20)
    reader.kill()
    reader.wait()
    start = time.monotonic()
    # the next copy gets the container's lock (and a start too)
    assert tar_file(docker_ok(daemon, "cp", "cp-big:/etc/group", "-"), "group").startswith(b"root")
    assert time.monotonic() - start < 10
    for _ in range(50):
        if not helpers_running():
            break
        time.sleep(0.1)
    assert helpers_running() == []
    # a whole one streams, 64 MiB and its headers
    data = docker_ok(daemon, "cp", "cp-big:/big", "-")
    assert tar_members(data)["big"].size == 64 << 20
    # and back in; then a client that stops halfway through its body
    docker_ok(daemon, "cp", "-", "cp-big:/tmp", input=data)
    assert tar_members(docker_ok(daemon, "cp", "cp-big:/tmp/big", "-"))["big"].size == 64 << 20
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(daemon.sock))
    s.sendall(b"PUT /containers/cp-big/archive?path=/tmp HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/x-tar\r\nContent-Length: 67109888\r\n\r\n"
              + data[:1 << 20])
    time.sleep(0.5)
    s.close()
    for _ in range(50):
        if not helpers_running():
            break
        time.sleep(0.1)
    assert helpers_running() == []
    assert tar_file(docker_ok(daemon, "cp", "cp-big:/etc/group", "-"), "group").startswith(b"root")


# the same against Debian's dockerd -------------------------------------------------------------

def _copies(engine, sock: str, name: str, tmp: Path) -> dict:
    """What the same copies give on one engine."""
    make_box(engine, name, "running")
    out = {}
    for path in ["/data/d", "/data/d/", "/data/d/.", "/data/d/f", "/data/d/abs", "/data/up",
                 "/data/up/", "/data/etclink/passwd"]:
        members = tar_members(docker_ok(engine, "cp", f"{name}:{path}", "-"))
        if path.startswith("/data/up/") or path == "/data/etclink/passwd":
            members = {k: v for k, v in members.items() if k.count("/") <= 1}
        # dockerd 20.10 adds the file type bits to the mode, as Go 1.8 did; 25+ does not
        out[path] = sorted((k, v.type, v.mode & 0o7777, v.uid, v.gid, v.linkname)
                           for k, v in members.items()
                           if not path.endswith("up/") or k in ("up", "up/passwd", "up/group"))
        st = path_stat(sock, name, path)
        out["stat " + path] = (st["name"], st["mode"], st["linkTarget"])
    src = tmp / "owned"
    src.write_text("x")
    os.chown(src, 1234, 5678)
    docker_ok(engine, "cp", str(src), f"{name}:/tmp/plain")
    docker_ok(engine, "cp", "-a", str(src), f"{name}:/tmp/archive")
    out["owners"] = docker_ok(engine, "exec", name, "stat", "-c", "%u:%g %a", "/tmp/plain",
                              "/tmp/archive")
    p = engine.docker("cp", f"{name}:/no/such", "-")
    out["missing"] = (p.returncode, p.stderr.decode().strip())
    p = engine.docker("cp", str(src), f"{name}:/data/d/f/")
    out["into a file"] = p.returncode
    return out


def test_same_as_debians_dockerd(daemon, dockerd, tmp_path):
    skip_where_its_exec_sees_the_host()
    (tmp_path / "b").mkdir()
    (tmp_path / "d").mkdir()
    ours = _copies(daemon, str(daemon.sock), "cp-cmp", tmp_path / "b")
    theirs = _copies(dockerd, dockerd.sock, "cp-cmp", tmp_path / "d")
    assert ours == theirs
