"""lowrt's seccomp: an OCI `linux.seccomp` profile compiled to classic BPF by lowrt itself
(no libseccomp), and installed with seccomp(2).

    from lowrt import seccomp
    program = seccomp.compile(config["linux"]["seccomp"])   # in the runtime, before fork
    flags = seccomp.flags(config["linux"]["seccomp"])
    seccomp.install(program, flags)                           # in the container init, last
                                                              # thing before exec
"""
from __future__ import annotations

from lowrt.seccomp.compiler import SeccompError, compile, flags

__all__ = ["SeccompError", "compile", "flags", "install"]


def install(program: bytes, flags: int = 0) -> None:
    """Load a compiled program into the calling thread (all threads with TSYNC). Needs
    no_new_privs set or CAP_SYS_ADMIN; raises OSError naming the failure."""
    from lowrt.linux.seccomp import set_filter
    set_filter(program, flags)
