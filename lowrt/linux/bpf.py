"""The bpf(2) calls the cgroup v2 device filter needs: load a program, attach it to a cgroup,
find and detach the programs already there.

`union bpf_attr` is passed as a zeroed 128-byte buffer with the fields each command reads
packed at their offsets; the kernel accepts a shorter attr than its own as long as what it
does not know is zero.
"""
from __future__ import annotations

import os
import struct

from lowrt.linux.libc import Array, addressof, byref, c_uint32, create_string_buffer, syscall

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16

BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 1 << 1
BPF_F_REPLACE = 1 << 2

_ATTR_SIZE = 128


def _bpf(cmd: int, attr: Array, what: str) -> int:
    try:
        return syscall("bpf", cmd, byref(attr), _ATTR_SIZE)
    except OSError as err:
        raise OSError(err.errno, f"{what}: {os.strerror(err.errno).lower()}") from None


def prog_load(prog_type: int, insns: bytes, license: str = "Apache-2.0",
              name: str = "") -> int:
    """Load a program; returns its fd. On a verifier refusal the error carries the log."""
    code = create_string_buffer(insns, len(insns))
    lic = create_string_buffer(license.encode())
    log = create_string_buffer(65536)
    attr = create_string_buffer(_ATTR_SIZE)
    # prog_type, insn_cnt, insns, license, log_level, log_size, log_buf, kern_version,
    # prog_flags, prog_name[16]
    struct.pack_into("=IIQQIIQII16s", attr, 0, prog_type, len(insns) // 8,
                     addressof(code), addressof(lic), 0, 0, 0, 0, 0,
                     name.encode()[:15])
    try:
        return _bpf(BPF_PROG_LOAD, attr, "bpf prog load")
    except OSError as err:
        if err.errno == 1:  # EPERM: kernels before 5.11 charge programs to RLIMIT_MEMLOCK
            _raise_memlock()
        # Load again with the verifier's log switched on, to say why if it fails again.
        struct.pack_into("=IIQ", attr, 24, 1, len(log), addressof(log))
        try:
            return _bpf(BPF_PROG_LOAD, attr, "bpf prog load")
        except OSError:
            detail = log.value.decode(errors="replace").strip().splitlines()
            raise OSError(err.errno, f"{err.strerror} ({detail[-1] if detail else 'no log'})"
                          ) from None


def prog_attach(prog_fd: int, target_fd: int, attach_type: int, flags: int,
                replace_fd: int = 0) -> None:
    attr = create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=IIIII", attr, 0, target_fd, prog_fd, attach_type, flags, replace_fd)
    _bpf(BPF_PROG_ATTACH, attr, "bpf prog attach")


def prog_detach(prog_fd: int, target_fd: int, attach_type: int) -> None:
    attr = create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=III", attr, 0, target_fd, prog_fd, attach_type)
    _bpf(BPF_PROG_DETACH, attr, "bpf prog detach")


def prog_query(target_fd: int, attach_type: int) -> list[int]:
    """The ids of the programs attached directly to target (not inherited ones)."""
    ids = (c_uint32 * 64)()
    attr = create_string_buffer(_ATTR_SIZE)
    # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
    struct.pack_into("=IIIIQI", attr, 0, target_fd, attach_type, 0, 0,
                     addressof(ids), len(ids))
    _bpf(BPF_PROG_QUERY, attr, "bpf prog query")
    count = struct.unpack_from("=I", attr, 24)[0]
    return list(ids[:count])


def prog_fd_by_id(prog_id: int) -> int:
    attr = create_string_buffer(_ATTR_SIZE)
    struct.pack_into("=I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr, f"bpf prog get fd by id {prog_id}")


def _raise_memlock() -> None:
    """Lift RLIMIT_MEMLOCK for this runtime process, as runc does before loading a program."""
    import resource
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK,
                           (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError):
        pass
