"""`docker info` and `docker version` report what this host and berth have: plugins that
exist, IPv4 forwarding as the kernel has it, the runtimes found here, the default runtime's own
version, and capability flags and warnings from the cgroup files."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.version import parse_init_version, parse_runtime_version
from tests.helpers.engine_daemon import BerthDaemon

VENV_BIN = Path(sys.executable).parent


def _found(name: str) -> bool:
    return (VENV_BIN / name).exists() or shutil.which(name) is not None


def test_info_lists_only_what_exists(daemon):
    info = daemon.api("GET", "/info").json()
    # no volume driver, no bridge driver (berth's "bridge" is a loopback-only namespace)
    assert info["Plugins"]["Volume"] == []
    assert info["Plugins"]["Network"] == ["host", "null"]
    assert info["Plugins"]["Log"] == ["json-file", "none"]
    wanted = {n for n in ("lowrt", "runc", "crun") if _found(n)}
    assert set(info["Runtimes"]) == wanted
    assert all(r == {"path": name} for name, r in info["Runtimes"].items())
    assert info["DefaultRuntime"] == "lowrt" and "lowrt" in info["Runtimes"]
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert info["IPv4Forwarding"] is (f.read().strip() == "1")
    assert info["NCPU"] == len(os.sched_getaffinity(0))
    assert info["OSVersion"] == _os_release("VERSION_ID")
    assert info["Swarm"]["LocalNodeState"] == "inactive"
    assert info["RegistryConfig"]["InsecureRegistryCIDRs"] == ["127.0.0.0/8"]
    assert info["RegistryConfig"]["IndexConfigs"]["docker.io"]["Secure"] is True


def test_info_shows_the_insecure_registries_and_mirrors_berthd_was_given():
    d = BerthDaemon(extra_args=("--insecure-registry", "10.9.0.0/16", "--insecure-registry",
                                "reg.test:5000", "--registry-mirror", "http://127.0.0.1:9"))
    try:
        d.start()
        reg = d.api("GET", "/info").json()["RegistryConfig"]
        assert reg["InsecureRegistryCIDRs"] == ["127.0.0.0/8", "10.9.0.0/16"]
        assert reg["Mirrors"] == ["http://127.0.0.1:9/"]
        assert reg["IndexConfigs"]["docker.io"]["Mirrors"] == ["http://127.0.0.1:9/"]
        assert reg["IndexConfigs"]["reg.test:5000"] == {
            "Name": "reg.test:5000", "Mirrors": [], "Secure": False, "Official": False}
    finally:
        d.cleanup()


def test_version_names_the_commit_berthd_runs_from(daemon):
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=7", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("no git")
    version = daemon.api("GET", "/version").json()
    # the session's berthd may have started before a commit made meanwhile: an ancestor
    commit = version["GitCommit"]
    assert len(commit) == 7 and commit == version["Components"][0]["Details"]["GitCommit"]
    assert subprocess.run(["git", "-C", str(root), "merge-base", "--is-ancestor", commit,
                           "HEAD"]).returncode == 0


def _os_release(key: str) -> str:
    for line in Path("/etc/os-release").read_text().splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip('"')
    return ""


def _v1_mount(controller: str) -> Path | None:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        extra = tail.split()
        if len(extra) > 2 and extra[0] == "cgroup" and controller in extra[2].split(","):
            return Path(fields.split()[4])
    return None


def test_info_capabilities_follow_the_cgroup_files(daemon):
    info = daemon.api("GET", "/info").json()
    if info["CgroupVersion"] != "1":
        pytest.skip("the file checks below are cgroup v1's")
    memory, cpu = _v1_mount("memory"), _v1_mount("cpu")
    assert info["MemoryLimit"] is (memory is not None)
    assert info["SwapLimit"] is bool(memory and (memory / "memory.memsw.limit_in_bytes").exists())
    assert info["OomKillDisable"] is bool(memory and (memory / "memory.oom_control").exists())
    assert info["CpuCfsQuota"] is bool(cpu and (cpu / "cpu.cfs_quota_us").exists())
    assert info["CPUShares"] is bool(cpu and (cpu / "cpu.shares").exists())
    assert info["PidsLimit"] is (_v1_mount("pids") is not None)
    # no API version berth serves can set a kernel TCP memory limit: dockerd's warning says so
    assert info["KernelMemoryTCP"] is False
    assert "WARNING: No kernel memory TCP limit support" in info["Warnings"]
    assert ("WARNING: No swap limit support" in info["Warnings"]) is not info["SwapLimit"]


def test_version_and_info_name_the_configured_runtime_and_its_own_version():
    """A berthd whose default runtime is runc, in a network namespace where IPv4 forwarding is
    off: `docker version` shows runc's version (not berth's), `docker info` runc's commit, the
    forwarding as it is there, and dockerd's warning for it."""
    runc = shutil.which("runc")
    if runc is None:
        pytest.skip("no runc on this host")
    own = parse_runtime_version(subprocess.run([runc, "--version"], capture_output=True,
                                               text=True, check=True).stdout)
    daemon = BerthDaemon(extra_args=("--default-runtime", "runc"), prefix=(
        "unshare", "--net", "sh", "-c",
        'echo 0 > /proc/sys/net/ipv4/ip_forward && exec "$@"', "sh"))
    try:
        daemon.start()
        version = daemon.api("GET", "/version").json()
        names = {c["Name"]: c for c in version["Components"]}
        assert names["runc"]["Version"] == own.version != ""
        assert names["runc"]["Details"] == {"GitCommit": own.commit}
        assert "lowrt" not in names
        init = daemon.api("GET", "/info").json()["InitBinary"]
        if init:
            said = parse_init_version(subprocess.run([init, "--version"], capture_output=True,
                                                     text=True).stdout)
            assert names["docker-init"]["Version"] == said.version
        info = daemon.api("GET", "/info").json()
        assert info["DefaultRuntime"] == "runc" and info["Runtimes"]["runc"] == {"path": "runc"}
        assert info["RuncCommit"] == {"ID": own.commit}
        assert info["IPv4Forwarding"] is False
        assert "WARNING: IPv4 forwarding is disabled" in info["Warnings"]
        p = daemon.docker("version")
        assert p.returncode == 0, p.stderr
        assert own.version.encode() in p.stdout
    finally:
        daemon.cleanup()


@pytest.mark.parametrize("text, name, version, commit", [
    ("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\n", "runc",
     "1.1.5+ds1", "1.1.5+ds1-1+deb12u1"),
    ("lowrt version 0.1.0\nspec: 1.0.2-dev\npython: 3.11.2\n", "lowrt", "0.1.0", ""),
    ("crun version 1.8.1\ncommit: f8a096be\nrundir: /run/crun\n", "crun", "1.8.1", "f8a096be"),
])
def test_runtime_version_parsing(text, name, version, commit):
    got = parse_runtime_version(text)
    assert (got.name, got.version, got.commit) == (name, version, commit)


def test_init_version_parsing():
    got = parse_init_version("tini version 0.19.0 - git.de40ad0\n")
    assert (got.name, got.version, got.commit) == ("tini", "0.19.0", "de40ad0")
    assert parse_init_version("tini version 0.19.0\n").commit == ""
