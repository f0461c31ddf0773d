"""OCI lifecycle hooks: when each kind runs, in which namespace, with what state on stdin."""
from __future__ import annotations

import json
import os
import shutil
import sys
import subprocess
import time

import pytest

from tests.helpers.lowrt_env import make_bundle, unique_id
from tests.helpers.leaks import cgroups


def _hook(kind: str, out_dir: str, **extra) -> dict:
    """A hook that saves its stdin, its mount namespace and one env var under out_dir."""
    script = (f"cat > {out_dir}/{kind}.json; readlink /proc/self/ns/mnt > {out_dir}/{kind}.mnt; "
              f"echo \"$HOOK_VAR\" > {out_dir}/{kind}.env")
    return {"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["HOOK_VAR=" + kind], **extra}


def test_every_hook_kind_runs_with_the_state(rt, probe_rootfs, short_tmp, cid):
    out = short_tmp / "hooks-out"
    out.mkdir()
    os.chmod(out, 0o777)
    hooks = {kind: [_hook(kind, str(out))] for kind in
             ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}
    # startContainer runs inside the container after pivot_root: its path and files are the
    # container's, so it writes into a directory bound from the host.
    hooks["startContainer"] = [_hook("startContainer", "/hooks-out")]
    b = short_tmp / "b"
    mounts = [{"destination": "/proc", "type": "proc", "source": "proc"},
              {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
              {"destination": "/hooks-out", "type": "bind", "source": str(out), "options": ["rbind"]}]
    make_bundle(b, probe_rootfs, ["sleep", "30"], hooks=hooks, mounts=mounts,
                annotations={"org.example.note": "hi"})
    rt.run("create", "-b", str(b), "--pid-file", str(short_tmp / "pid"), cid)
    pid = int((short_tmp / "pid").read_text())
    host_mnt = os.readlink("/proc/self/ns/mnt")
    container_mnt = os.readlink(f"/proc/{pid}/ns/mnt")
    for kind in ("prestart", "createRuntime", "createContainer"):
        state = json.loads((out / f"{kind}.json").read_text())
        assert state["id"] == cid and state["pid"] == pid
        # "created" for all three, as crun (see test_hook_state_is_crun_s)
        assert state["status"] == "created"
        assert state["bundle"] == str(b) and state["annotations"] == {"org.example.note": "hi"}
        assert (out / f"{kind}.env").read_text().strip() == kind
    assert (out / "prestart.mnt").read_text().strip() == host_mnt
    assert (out / "createRuntime.mnt").read_text().strip() == host_mnt
    assert (out / "createContainer.mnt").read_text().strip() == container_mnt
    assert not (out / "startContainer.json").exists()
    rt.run("start", cid)
    deadline = time.monotonic() + 5
    while not (out / "startContainer.mnt").exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert (out / "startContainer.mnt").read_text().strip() == container_mnt
    assert json.loads((out / "startContainer.json").read_text())["status"] == "created"
    poststart = json.loads((out / "poststart.json").read_text())
    assert poststart["status"] == "running" and (out / "poststart.mnt").read_text().strip() == host_mnt
    assert not (out / "poststop.json").exists()
    rt.run("delete", "--force", cid)
    assert json.loads((out / "poststop.json").read_text())["status"] == "stopped"


def _leftovers(rt, cid) -> list[str]:
    return [p for p in cgroups() if cid in p] + ([str(rt.root / cid)] if (rt.root / cid).exists() else [])


def test_failing_prestart_hook_fails_create_and_leaves_nothing(rt, bundle, cid):
    b = bundle(["sleep", "30"], hooks={"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 3"]}]})
    out = rt.run("create", "-b", str(b), cid, check=False)
    assert out.returncode == 1
    assert b"error running prestart hook #0: exit status 3, stdout: , stderr: nope" in out.stderr
    assert _leftovers(rt, cid) == []


def test_hook_timeout(rt, bundle, cid):
    b = bundle(["sleep", "30"], hooks={"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]})
    started = time.monotonic()
    out = rt.run("create", "-b", str(b), cid, check=False)
    assert time.monotonic() - started < 10
    assert out.returncode == 1
    assert b"error running createRuntime hook #0: hook ran past specified timeout of 1.0s" in out.stderr
    assert _leftovers(rt, cid) == []


def test_failing_poststop_hooks_only_warn(rt, bundle, cid):
    failing = [{"path": "/bin/false"}]
    b = bundle(["true"], hooks={"poststop": failing + failing})
    assert rt.run("run", "-b", str(b), cid).returncode == 0
    levels = [json.loads(line)["level"] for line in rt.log.read_text().splitlines()]
    assert levels.count("warning") == 2


@pytest.mark.parametrize("verb", ["run", "start"])
def test_failing_poststart_hook_stops_the_container(rt, bundle, cid, verb):
    # runtime-spec 1.1: an error, the container stopped, the lifecycle going on to delete
    b = bundle(["sleep", "60"], hooks={"poststart": [{"path": "/bin/false"}]})
    if verb == "run":
        out = rt.run("run", "-b", str(b), cid, check=False)
    else:
        rt.run("create", "-b", str(b), cid)
        out = rt.run("start", cid, check=False)
    assert out.returncode == 1 and b"error running poststart hook #0: exit status 1" in out.stderr
    if verb == "start":
        deadline = time.monotonic() + 5
        while json.loads(rt.run("state", cid).stdout)["status"] != "stopped":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        rt.run("delete", cid)
    assert _leftovers(rt, cid) == []


def test_hook_killed_by_a_signal_is_reported_as_runc_does(rt, bundle, cid):
    b = bundle(["true"], hooks={"createRuntime": [{"path": "/bin/true"},
                                                   {"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $$"]}]})
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 1
    assert b"error running createRuntime hook #1: signal: killed, stdout: , stderr: " in out.stderr
    assert _leftovers(rt, cid) == []


def test_createcontainer_hook_failure_is_reported(rt, bundle, cid):
    b = bundle(["true"], hooks={"createContainer": [{"path": "/bin/false"}]})
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and b"createContainer hook #0" in out.stderr
    assert _leftovers(rt, cid) == []


@pytest.mark.parametrize("hooks", [{"prestart": [{"path": "relative/hook"}]},
                                   {"bogus": [{"path": "/bin/true"}]}])
def test_invalid_hooks_are_refused(rt, bundle, hooks):
    cid = unique_id()
    b = bundle(["true"], hooks=hooks)
    out = rt.run("run", "-b", str(b), cid, check=False)
    assert out.returncode == 1 and _leftovers(rt, cid) == []


def test_start_container_hook_without_env_gets_the_processs(rt, bundle, cid):
    # as runc has always done; a createRuntime hook without env gets lowrt's own environment
    check = {"path": "/bin/sh", "args": ["sh", "-uc", 'test "$ONE" = two && test -n "$HOME"']}
    b = bundle(["true"], process={"env": ["PATH=/bin", "ONE=two"]},
               hooks={"startContainer": [check]})
    assert rt.run("run", "-b", str(b), cid, check=False).returncode == 0
    b = bundle(["true"], name="b2", hooks={"createRuntime": [
        {"path": "/bin/sh", "args": ["sh", "-c", 'test "$LOWRT_TEST_MARK" = here']}]})
    out = rt.run("run", "-b", str(b), unique_id(), check=False,
                 env=dict(os.environ, LOWRT_TEST_MARK="here"))
    assert out.returncode == 0, out.stderr


def _crun_argv(root: str) -> list[str]:
    """crun refuses this host's hybrid cgroup layout (v1 controllers plus an empty cgroup2 at
    /sys/fs/cgroup/unified): it runs in a private mount namespace where that mount is gone."""
    hide = "umount /sys/fs/cgroup/unified 2>/dev/null; " if os.path.ismount(
        "/sys/fs/cgroup/unified") else ""
    return ["unshare", "-m", "sh", "-c", f'{hide}exec crun --root {root} "$@"', "crun"]


@pytest.mark.skipif(not (shutil.which("runc") and shutil.which("crun")),
                    reason="needs runc and crun as the peers")
def test_hook_state_is_crun_s(rt, short_tmp, busybox_rootfs_template):
    """The same bundle under lowrt, runc and crun, each hook saving the state on its stdin.

    prestart, createRuntime and createContainer hooks run once the runtime has made the
    container's environment (runtime-spec lifecycle steps 3-4, after step 2), and the spec's
    "created" is "after step 2": crun says "created", and so does lowrt. runc 1.1 says
    "creating" (recorded below, not followed)."""
    out = short_tmp / "states"
    out.mkdir()
    # createContainer runs in the container's mount namespace before pivot_root: the host's
    # files are still in view there, so it writes where the others do. runc's init does not
    # pass on the caller's environment, so each run's files are renamed after it instead.
    kinds = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    hooks = {k: [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {out}/{k}.json"]}]
             for k in kinds}
    b = short_tmp / "b"
    make_bundle(b, busybox_rootfs_template, ["/bin/true"], hooks=hooks)
    cid = unique_id()
    runtimes = {"lowrt": rt.argv(), "runc": ["runc", "--root", str(short_tmp / "runc")],
                "crun": _crun_argv(str(short_tmp / "crun"))}
    try:
        for name, argv in runtimes.items():
            proc = subprocess.run(argv + ["run", "-b", str(b), cid], capture_output=True,
                                  timeout=30)
            assert proc.returncode == 0, (name, proc.stderr)
            for k in kinds:
                if (out / f"{k}.json").exists():
                    (out / f"{k}.json").rename(out / f"{name}.{k}.json")
    finally:
        for name, argv in runtimes.items():
            subprocess.run(argv + ["delete", "-f", cid], capture_output=True, timeout=30)
    states = {(name, k): json.loads((out / f"{name}.{k}.json").read_text())
              for name in runtimes for k in kinds}
    for k in kinds:
        assert states["lowrt", k]["status"] == states["crun", k]["status"], k
        assert states["lowrt", k]["id"] == cid and states["lowrt", k]["bundle"] == str(b)
    assert states["lowrt", "prestart"]["status"] == "created"
    assert states["lowrt", "createRuntime"]["status"] == "created"
    assert states["lowrt", "createContainer"]["status"] == "created"
    assert states["lowrt", "prestart"]["pid"] == states["lowrt", "createRuntime"]["pid"] > 0
    # runc 1.1.5, for the record: "creating" before start; its poststart says "created"
    assert {states["runc", k]["status"] for k in ("prestart", "createRuntime",
                                                  "createContainer")} <= {
        "creating", "created"}


@pytest.mark.parametrize("kinds, wanted", [
    (("prestart", "createRuntime", "poststart", "poststop"), False),
    (("createContainer",), True),
    (("startContainer",), True),
])
def test_the_init_imports_subprocess_only_for_hooks_it_runs(kinds, wanted):
    """The init runs createContainer and startContainer hooks; lowrt runs the others. So only
    those make the init import `subprocess` before it loses the host's files (5-13 ms of its
    start otherwise: docker's configs carry libnetwork's prestart or createRuntime hook)."""
    spec = {"process": {}, "hooks": {k: [{"path": "/bin/true"}] for k in kinds}}
    code = ("import json, sys; from lowrt import process; "
            f"process.preload({{}}, json.loads({json.dumps(json.dumps(spec))})); "
            "print('subprocess' in sys.modules)")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                         cwd=repo, timeout=30, check=True)
    assert out.stdout.strip() == str(wanted)
