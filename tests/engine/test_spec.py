"""The OCI spec berthd writes: docker's defaults, and HostConfig/Config applied as dockerd does."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import spec
from engine.errors import InvalidParameter
from engine.host_config import default_host_config

CID = "ab" * 32


def build(tmp_path: Path, config: dict | None = None, hc: dict | None = None, v2=False) -> dict:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:33:34::/:/bin/sh\n")
    (rootfs / "etc/group").write_text("root:x:0:\nwww:x:34:\nextra:x:50:web\n")
    host_config = default_host_config("lowrt", v2)
    host_config.update(hc or {})
    cfg = {"Cmd": ["sh"], "Hostname": CID[:12]}
    cfg.update(config or {})
    return spec.build(container_id=CID, config=cfg, host_config=host_config,
                      rootfs_dirs=[rootfs], container_dir=tmp_path / "c",
                      cgroup_parent="/berth", cgroup_v2=v2)


def test_docker_defaults(tmp_path):
    s = build(tmp_path)
    assert s["process"]["args"] == ["sh"]
    assert s["process"]["user"] == {"uid": 0, "gid": 0}
    assert s["process"]["cwd"] == "/"
    assert s["process"]["capabilities"]["bounding"] == spec.DEFAULT_CAPS
    assert "CAP_SYS_ADMIN" not in s["process"]["capabilities"]["effective"]
    assert {n["type"] for n in s["linux"]["namespaces"]} == {"mount", "network", "uts", "pid",
                                                             "ipc"}
    assert s["linux"]["cgroupsPath"] == f"/berth/{CID}"
    assert s["hostname"] == CID[:12]
    assert "/proc/kcore" in s["linux"]["maskedPaths"]
    assert "/proc/sys" in s["linux"]["readonlyPaths"]
    dests = [m["destination"] for m in s["mounts"]]
    for d in ("/proc", "/dev", "/dev/pts", "/sys", "/dev/mqueue", "/dev/shm", "/etc/hostname",
              "/etc/hosts", "/etc/resolv.conf"):
        assert d in dests
    assert s["process"]["env"][:2] == [f"PATH={spec.DEFAULT_PATH_ENV}", f"HOSTNAME={CID[:12]}"]
    assert s["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert "limit" not in s["linux"]["resources"].get("memory", {})


def test_resources_from_host_config(tmp_path):
    s = build(tmp_path, hc={"Memory": 64 << 20, "MemorySwap": 128 << 20, "PidsLimit": 20,
                            "NanoCpus": 500_000_000, "CpuShares": 512})
    res = s["linux"]["resources"]
    assert res["memory"]["limit"] == 64 << 20 and res["memory"]["swap"] == 128 << 20
    assert res["pids"] == {"limit": 20}
    assert res["cpu"] == {"shares": 512, "period": 100_000, "quota": 50_000}


def test_modes_user_env_and_caps(tmp_path):
    s = build(tmp_path, config={"User": "web", "Env": ["PATH=/x", "A=1"], "Tty": True,
                                "WorkingDir": "/srv"},
              hc={"NetworkMode": "host", "PidMode": "host", "CapAdd": ["SYS_ADMIN"],
                  "CapDrop": ["CHOWN"]})
    types = {n["type"] for n in s["linux"]["namespaces"]}
    assert "network" not in types and "pid" not in types
    assert s["process"]["user"] == {"uid": 33, "gid": 34, "additionalGids": [50]}
    assert s["process"]["env"] == ["PATH=/x", f"HOSTNAME={CID[:12]}", "TERM=xterm", "A=1"]
    assert s["process"]["terminal"] is True
    assert s["process"]["cwd"] == "/srv"
    caps = s["process"]["capabilities"]["effective"]
    assert "CAP_SYS_ADMIN" in caps and "CAP_CHOWN" not in caps
    assert "net.ipv4.ping_group_range" not in s["linux"]["sysctl"]


def test_cgroup_namespace_on_v2(tmp_path):
    assert {"type": "cgroup"} in build(tmp_path, v2=True)["linux"]["namespaces"]


def test_bad_user_and_empty_command(tmp_path):
    with pytest.raises(InvalidParameter, match="unable to find user nosuch"):
        build(tmp_path, config={"User": "nosuch"})
    assert build(tmp_path, config={"User": "1000:1000"})["process"]["user"] == {
        "uid": 1000, "gid": 1000}
    with pytest.raises(InvalidParameter, match="No command specified"):
        build(tmp_path, config={"Cmd": None})
