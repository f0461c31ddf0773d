"""The seccomp profile berthd gives a container, without a kernel: docker's default profile as
berth states it (engine/seccomp_default.py), resolved for a container's capabilities and the
host's architecture and kernel; docker-format profiles from `--security-opt seccomp=`; the other
security options; and what spec.build makes of them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine import seccomp_profile, security_opts, spec
from engine.errors import InvalidParameter
from engine.host_config import default_host_config
from engine.seccomp_profile import Host

AMD64 = Host("amd64", "SCMP_ARCH_X86_64", (6, 1))
ARM64 = Host("arm64", "SCMP_ARCH_AARCH64", (6, 1))
OLD_AMD64 = Host("amd64", "SCMP_ARCH_X86_64", (4, 4))
CID = "cd" * 32


def default(caps: list[str], host: Host = AMD64) -> dict:
    return seccomp_profile.to_oci(seccomp_profile.default_profile(), caps, host)


def rules_for(profile: dict, name: str) -> list[dict]:
    """The rules naming one call, without their names, in order."""
    return [{k: v for k, v in r.items() if k != "names"} for r in profile["syscalls"]
            if name in r["names"]]


def allowed_outright(profile: dict) -> set[str]:
    return {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW"
            and not r.get("args") for n in r["names"]}


def test_default_profile_denies_with_eperm_and_filters_every_abi_of_the_host():
    p = default(spec.DEFAULT_CAPS)
    assert p["defaultAction"] == "SCMP_ACT_ERRNO" and p["defaultErrnoRet"] == 1
    assert p["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert default(spec.DEFAULT_CAPS, ARM64)["architectures"] == ["SCMP_ARCH_AARCH64",
                                                                  "SCMP_ARCH_ARM"]
    allowed = allowed_outright(p)
    assert {"read", "write", "openat", "execve", "clone", "fork", "kill", "capset",
            "setuid", "pivot_root"} & allowed == {"read", "write", "openat", "execve", "fork",
                                                  "kill", "capset", "setuid"}
    for denied in ("keyctl", "add_key", "unshare", "mount", "setns", "reboot", "bpf",
                   "init_module", "io_uring_setup", "kexec_load", "userfaultfd", "clone3"):
        assert denied not in allowed, denied


def test_default_profile_argument_conditions():
    p = default(spec.DEFAULT_CAPS)
    # socket: every family but AF_ALG (38) and AF_VSOCK (40)
    assert rules_for(p, "socket") == [
        {"action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": v, "valueTwo": 0,
                                               "op": op}]}
        for op, v in (("SCMP_CMP_LT", 38), ("SCMP_CMP_EQ", 39), ("SCMP_CMP_GT", 40))]
    assert [r["args"][0]["value"] for r in rules_for(p, "personality")] == [
        0, 8, 0x20000, 0x20008, 0xFFFFFFFF]
    # clone only without namespace flags, clone3 (whose flags a filter cannot read): ENOSYS
    assert rules_for(p, "clone") == [{"action": "SCMP_ACT_ALLOW", "args": [
        {"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]
    assert rules_for(p, "clone3") == [{"action": "SCMP_ACT_ERRNO", "errnoRet": 38}]


def test_capabilities_relax_the_default_profile_as_dockers_do():
    p = default(spec.DEFAULT_CAPS + ["CAP_SYS_ADMIN"])
    allowed = allowed_outright(p)
    assert {"clone", "clone3", "unshare", "mount", "setns", "sethostname"} <= allowed
    assert rules_for(p, "clone") == [{"action": "SCMP_ACT_ALLOW"}]   # no flag check left
    assert rules_for(p, "clone3") == [{"action": "SCMP_ACT_ALLOW"}]
    assert "keyctl" not in allowed                           # no capability allows it
    assert "ptrace" in allowed_outright(default(spec.DEFAULT_CAPS))      # kernel >= 4.8
    assert "ptrace" not in allowed_outright(default(spec.DEFAULT_CAPS, OLD_AMD64))
    assert "ptrace" in allowed_outright(default(spec.DEFAULT_CAPS + ["CAP_SYS_PTRACE"],
                                                OLD_AMD64))
    for cap, call in (("CAP_SYS_TIME", "settimeofday"), ("CAP_SYS_BOOT", "reboot"),
                      ("CAP_SYS_MODULE", "finit_module"), ("CAP_BPF", "bpf"),
                      ("CAP_DAC_READ_SEARCH", "open_by_handle_at"),
                      ("CAP_SYS_NICE", "mbind")):
        assert call not in allowed_outright(default(spec.DEFAULT_CAPS)), call
        assert call in allowed_outright(default(spec.DEFAULT_CAPS + [cap])), call
    # the default capabilities include CAP_SYS_CHROOT
    assert "chroot" in allowed_outright(default(spec.DEFAULT_CAPS))
    assert "chroot" not in allowed_outright(default([]))


def test_architecture_only_calls():
    assert "arch_prctl" in allowed_outright(default(spec.DEFAULT_CAPS))
    arm = allowed_outright(default(spec.DEFAULT_CAPS, ARM64))
    assert "arch_prctl" not in arm and {"set_tls", "cacheflush"} <= arm


def test_lowrt_compiles_the_default_profile():
    from lowrt import seccomp
    for caps in (spec.DEFAULT_CAPS, spec.ALL_CAPS, []):
        program = seccomp.compile(default(caps, Host.this()))
        assert 0 < len(program) // 8 < 4096


def docker_profile(**fields) -> str:
    return json.dumps({"defaultAction": "SCMP_ACT_ALLOW", **fields})


def test_docker_format_profile_is_resolved_like_dockerd():
    text = json.dumps({
        "DefaultAction": "SCMP_ACT_ERRNO",           # Go's decoder matches keys in any case
        "defaultErrnoRet": 13,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                     "subArchitectures": ["SCMP_ARCH_X86"]},
                    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": None}],
        "syscalls": [
            {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 30, "comment": "x"},
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["ioperm"], "action": "SCMP_ACT_ALLOW",
             "excludes": {"arches": ["amd64"]}},
            {"names": ["kcmp"], "action": "SCMP_ACT_ALLOW",
             "includes": {"minKernel": "7.0"}},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 1}]},
        ]})
    p = seccomp_profile.to_oci(seccomp_profile.parse(text), spec.DEFAULT_CAPS, AMD64)
    assert p == {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 30},
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 1, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}]}
    admin = seccomp_profile.to_oci(seccomp_profile.parse(text), ["CAP_SYS_ADMIN"], ARM64)
    assert admin["architectures"] == ["SCMP_ARCH_AARCH64"]
    assert [r["names"] for r in admin["syscalls"]] == [
        ["mkdir"], ["read", "write"], ["mount"], ["ioperm"], ["socket"]]


def test_an_empty_profile_is_no_filter_as_in_dockerd():
    assert seccomp_profile.to_oci(seccomp_profile.parse("{}"), [], AMD64) is None


@pytest.mark.parametrize("text, message", [
    ("{not json", "Decoding seccomp profile failed: Expecting property name"),
    ("[]", "Decoding seccomp profile failed: the profile: expected an object, got []"),
    ('{"defaultAction": 5}', "Decoding seccomp profile failed: defaultAction: expected a "
                             "string, got 5"),
    (docker_profile(syscalls=[{"names": "mkdir", "action": "SCMP_ACT_ERRNO"}]),
     "Decoding seccomp profile failed: syscalls[0].names: expected a list of strings, "
     "got \"mkdir\""),
    (docker_profile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_DENY"}]),
     "invalid seccomp profile: syscalls[0].action: unknown action \"SCMP_ACT_DENY\""),
    (docker_profile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]),
     "SCMP_ACT_NOTIFY (seccomp user notification) is not supported by berth"),
    (docker_profile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW",
                               "args": [{"index": 6, "op": "SCMP_CMP_EQ", "value": 1}]}]),
     "syscalls[0].args[0].index: 6 is not an argument index (0 to 5)"),
    (docker_profile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW",
                               "args": [{"index": 0, "op": "EQ", "value": 1}]}]),
     "syscalls[0].args[0].op: unknown operator \"EQ\""),
    (docker_profile(syscalls=[{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]),
     "both 'name' and 'names' are specified"),
    (docker_profile(architectures=["SCMP_ARCH_X86_64"],
                    archMap=[{"architecture": "SCMP_ARCH_X86_64"}]),
     "both 'architectures' and 'archMap' are specified"),
    (docker_profile(architectures=["x86_64"]), "architectures: unknown architecture \"x86_64\""),
    (docker_profile(syscalls=[{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                               "includes": {"minKernel": "4"}}]),
     "syscalls[0].includes.minKernel: invalid kernel version \"4\""),
    ('{"syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW"}]}',
     "defaultAction: required when syscalls are given"),
    (docker_profile(listenerPath="/run/l.sock"), "listenerPath: seccomp user notification"),
])
def test_bad_profiles_are_refused_naming_the_field(text, message):
    with pytest.raises(InvalidParameter) as e:
        seccomp_profile.parse(text)
    assert message in e.value.message
    assert e.value.status == 400


@pytest.mark.parametrize("opt, message", [
    ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
    ("nonsense", 'invalid --security-opt 1: "nonsense"'),
    ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
])
def test_unknown_security_opts_get_dockerds_errors(opt, message):
    with pytest.raises(InvalidParameter) as e:
        security_opts.parse([opt])
    assert e.value.message == message


def test_security_opts_that_berth_cannot_apply_are_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(security_opts, "APPARMOR_ENABLED", str(tmp_path / "none"))
    monkeypatch.setattr(security_opts, "SELINUX_FS", str(tmp_path / "none"))
    with pytest.raises(InvalidParameter, match="apparmor=docker-default: AppArmor is not "
                                               "enabled on this host"):
        security_opts.parse(["apparmor=docker-default"])
    with pytest.raises(InvalidParameter, match="label=type:spc_t: SELinux is not enabled"):
        security_opts.parse(["label=type:spc_t"])
    # what asks for no confinement is what such a host gives
    assert security_opts.parse(["apparmor=unconfined", "label=disable"]).apparmor == \
        "unconfined"
    opts = security_opts.parse(["no-new-privileges:true", "writable-cgroups=false",
                                "seccomp=unconfined"])
    assert (opts.no_new_privileges, opts.writable_cgroups, opts.seccomp) == \
        (True, False, "unconfined")


def build(tmp_path: Path, hc: dict | None = None) -> dict:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    host_config = default_host_config("lowrt", False)
    host_config.update(hc or {})
    return spec.build(container_id=CID, config={"Cmd": ["sh"]}, host_config=host_config,
                      rootfs_dirs=[rootfs], container_dir=tmp_path / "c",
                      cgroup_parent="/berth", cgroup_v2=False)


def test_spec_carries_the_profile_as_dockerd_decides(tmp_path):
    plain = build(tmp_path)["linux"]["seccomp"]
    assert plain == default(spec.DEFAULT_CAPS, Host.this())
    assert "seccomp" not in build(tmp_path, {"Privileged": True})["linux"]
    assert "seccomp" not in build(tmp_path, {"SecurityOpt": ["seccomp=unconfined"]})["linux"]
    admin = build(tmp_path, {"CapAdd": ["SYS_ADMIN"]})["linux"]["seccomp"]
    assert "unshare" in allowed_outright(admin)
    dropped = build(tmp_path, {"CapDrop": ["SYS_CHROOT"]})["linux"]["seccomp"]
    assert "chroot" not in allowed_outright(dropped)
    # a profile of the user's own is applied even to a privileged container, as by dockerd
    mine = docker_profile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    s = build(tmp_path, {"Privileged": True, "SecurityOpt": [f"seccomp={mine}"]})
    assert s["linux"]["seccomp"]["syscalls"] == [{"names": ["mkdir"],
                                                  "action": "SCMP_ACT_ERRNO"}]
    assert "seccomp" in build(tmp_path, {"Privileged": True,
                                         "SecurityOpt": ["seccomp=builtin"]})["linux"]


def test_spec_no_new_privileges_and_writable_cgroups(tmp_path):
    s = build(tmp_path, {"SecurityOpt": ["no-new-privileges", "writable-cgroups"]})
    assert s["process"]["noNewPrivileges"] is True
    cgroup = next(m for m in s["mounts"] if m["type"] == "cgroup")
    assert "rw" in cgroup["options"] and "ro" not in cgroup["options"]
    s = build(tmp_path, {"Privileged": True, "SecurityOpt": ["writable-cgroups=false"]})
    cgroup = next(m for m in s["mounts"] if m["type"] == "cgroup")
    assert "ro" in cgroup["options"]
    assert build(tmp_path)["process"]["noNewPrivileges"] is False
