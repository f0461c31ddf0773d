"""The seccomp filter of berthd's containers, through the docker CLI and the real kernel: docker's
default profile by default, relaxed by capabilities, none for --privileged or
`--security-opt seccomp=unconfined`, a profile file of the user's own, bad profiles and security
options berth cannot apply refused at create; execs get the container's filter. Where Debian's
dockerd is installed, the same probes run under it and must see the same."""
from __future__ import annotations

import errno
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (a fixture)

PROBE_SOURCE = Path(__file__).resolve().parent.parent / "helpers" / "seccomp_probe.c"
CALLS = ("keyctl", "vsock", "alg", "inet", "clone3", "persona", "persona-rx", "mkdir",
         "unshare-uts", "unshare")   # unshare last: it leaves the probe in a user namespace


@pytest.fixture(scope="module")
def userns() -> bool:
    """Whether a container here may make a user namespace: the kernel refuses CLONE_NEWUSER to
    a chrooted caller (the fresh-root harness runs the suite chrooted) whatever the filter
    says, so there only the calls that need CAP_SYS_ADMIN tell the filter's answer."""
    from tests.helpers.supervisor_env import caller_is_chrooted
    return not caller_is_chrooted()


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> str:
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to build the probe")
    out = tmp_path_factory.mktemp("probe") / "seccomp_probe"
    subprocess.run(["gcc", "-static", "-O1", "-o", str(out), str(PROBE_SOURCE)], check=True)
    out.parent.chmod(0o755)
    return str(out)


def status_field(output: bytes, field: str) -> str:
    return next(line.split()[1] for line in output.decode().splitlines()
                if line.startswith(field + ":"))


def run_probe(docker, probe: str, *flags: str, calls=CALLS) -> dict[str, str]:
    """What each call gave in a fresh container run with `flags`: "ok" or "errno N"."""
    p = docker("run", "--rm", *flags, "-v", f"{probe}:/probe:ro", "busybox",
               "/probe", *calls)
    assert p.returncode == 0, p.stderr
    return dict(line.split(" ", 1) for line in p.stdout.decode().splitlines())


def seccomp_mode(docker, *flags: str) -> str:
    p = docker("run", "--rm", *flags, "busybox", "grep", "Seccomp:", "/proc/self/status")
    assert p.returncode == 0, p.stderr
    return status_field(p.stdout, "Seccomp")


EPERM = f"errno {errno.EPERM}"
ENOSYS = f"errno {errno.ENOSYS}"


@pytest.mark.parametrize("runtime", ["lowrt", "runc"])
def test_default_profile_is_applied(daemon, probe, runtime):
    assert seccomp_mode(daemon.docker, "--runtime", runtime) == "2"
    seen = run_probe(daemon.docker, probe, "--runtime", runtime)
    assert seen == {"keyctl": EPERM, "vsock": EPERM, "alg": EPERM, "inet": "ok",
                    "clone3": ENOSYS, "persona": "ok", "persona-rx": EPERM, "mkdir": "ok",
                    "unshare-uts": EPERM, "unshare": EPERM}
    p = daemon.docker("run", "--rm", "--runtime", runtime, "busybox", "unshare", "-U", "true")
    assert p.returncode != 0 and b"Operation not permitted" in p.stderr, p.stderr


def test_unconfined_and_privileged_get_no_filter(daemon, probe, userns):
    assert seccomp_mode(daemon.docker, "--security-opt", "seccomp=unconfined") == "0"
    assert seccomp_mode(daemon.docker, "--privileged") == "0"
    seen = run_probe(daemon.docker, probe, "--security-opt", "seccomp=unconfined")
    assert seen["keyctl"] != EPERM, seen
    assert seen["clone3"] == f"errno {errno.EINVAL}"     # the kernel's answer to clone3(NULL, 0)
    if userns:
        assert seen["unshare"] == "ok", seen
        p = daemon.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox",
                          "unshare", "-U", "true")
        assert p.returncode == 0, p.stderr


def test_capabilities_relax_the_profile(daemon, probe, userns):
    seen = run_probe(daemon.docker, probe, "--cap-add", "SYS_ADMIN")
    assert seen["unshare-uts"] == "ok" and seen["clone3"] == f"errno {errno.EINVAL}", seen
    assert seen["unshare"] == ("ok" if userns else EPERM), seen
    assert seen["keyctl"] == EPERM                       # no capability allows keyctl
    assert seccomp_mode(daemon.docker, "--cap-add", "SYS_ADMIN") == "2"
    p = daemon.docker("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "unshare", "-u",
                      "true")
    assert p.returncode == 0, p.stderr
    # CAP_SYS_CHROOT is a default capability; dropped, chroot is denied by the filter too
    p = daemon.docker("run", "--rm", "--cap-drop", "SYS_CHROOT", "busybox", "chroot", "/",
                      "true")
    assert p.returncode != 0 and b"Operation not permitted" in p.stderr


def test_exec_gets_the_containers_filter(daemon, probe):
    for flags, mode in (((), "2"), (("--security-opt", "seccomp=unconfined"), "0")):
        p = daemon.docker("run", "-d", *flags, "-v", f"{probe}:/probe:ro", "busybox", "sleep",
                          "300")
        assert p.returncode == 0, p.stderr
        cid = p.stdout.decode().strip()
        e = daemon.docker("exec", cid, "grep", "Seccomp:", "/proc/self/status")
        assert e.returncode == 0, e.stderr
        assert status_field(e.stdout, "Seccomp") == mode
        e = daemon.docker("exec", cid, "/probe", "keyctl")
        assert e.returncode == 0, e.stderr
        assert (e.stdout == f"keyctl {EPERM}\n".encode()) == (mode == "2"), e.stdout
        daemon.docker("rm", "-f", cid)


def test_profile_file_of_the_users_own(daemon, tmp_path):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    path = tmp_path / "no-mkdir.json"
    path.write_text(json.dumps(profile, indent=2))
    p = daemon.docker("run", "-d", "--security-opt", f"seccomp={path}", "busybox",
                      "sleep", "300")
    assert p.returncode == 0, p.stderr
    cid = p.stdout.decode().strip()
    e = daemon.docker("exec", cid, "mkdir", "/tmp/x")
    assert e.returncode != 0 and b"Operation not permitted" in e.stderr, e.stderr
    e = daemon.docker("exec", cid, "grep", "Seccomp:", "/proc/self/status")
    assert status_field(e.stdout, "Seccomp") == "2"
    # inspect shows the option as given: the CLI sent the file's JSON
    opts = json.loads(daemon.docker("inspect", cid).stdout)[0]["HostConfig"]["SecurityOpt"]
    assert len(opts) == 1 and opts[0].startswith("seccomp=")
    assert json.loads(opts[0][len("seccomp="):]) == profile


def test_bad_profiles_and_options_are_refused_and_leave_no_container(daemon, tmp_path):
    before = daemon.container_ids()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                               "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]}))
    cases = [
        (["--security-opt", f"seccomp={bad}"],
         'invalid seccomp profile: syscalls[0].action: unknown action "SCMP_ACT_DENY"'),
        (["--security-opt", "apparmor=docker-default"], "AppArmor is not enabled on this host"),
        (["--security-opt", "label=type:spc_t"], "SELinux is not enabled on this host"),
        (["--security-opt", "foo=bar"], 'invalid --security-opt 2: "foo=bar"'),
    ]
    if Path("/sys/module/apparmor/parameters/enabled").exists() or \
            Path("/sys/fs/selinux/enforce").exists():
        cases = cases[:1] + cases[3:]
    for flags, message in cases:
        p = daemon.docker("run", "--rm", *flags, "busybox", "true")
        assert p.returncode == 125, (flags, p.stderr)
        assert message.encode() in p.stderr, (flags, p.stderr)
    # invalid JSON never reaches an engine through the CLI, which parses the file; the API
    # answers it as dockerd does
    r = daemon.api("POST", "/containers/create", {
        "Image": "busybox", "Cmd": ["true"],
        "HostConfig": {"SecurityOpt": ['seccomp={"defaultAction": ']}})
    assert r.status == 400
    assert r.json()["message"].startswith("Decoding seccomp profile failed: ")
    assert daemon.container_ids() == before
    # asking for no confinement is what this host gives
    p = daemon.docker("run", "--rm", "--security-opt", "apparmor=unconfined",
                      "--security-opt", "label=disable", "busybox", "true")
    assert p.returncode == 0, p.stderr


# not --privileged: dockerd asks runc for every capability, and fails on a host whose root
# lacks one (berthd gives what its bounding set holds)
@pytest.mark.parametrize("flags", [(), ("--cap-add", "SYS_ADMIN"),
                                   ("--security-opt", "seccomp=unconfined")])
def test_same_as_debians_dockerd(daemon, dockerd, probe, flags):
    # socket families are left out: 20.10's profile allowed every one, docker 29's denies
    # AF_ALG and AF_VSOCK
    calls = [c for c in CALLS if c not in ("alg", "vsock")]
    assert seccomp_mode(daemon.docker, *flags) == seccomp_mode(dockerd.docker, *flags)
    assert run_probe(daemon.docker, probe, *flags, calls=calls) == \
        run_probe(dockerd.docker, probe, *flags, calls=calls)
