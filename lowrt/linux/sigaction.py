"""Signal dispositions that glibc keeps out of reach of sigaction().

glibc reserves signals 32 and 33 for its threads and answers EINVAL when asked to change them;
its posix_spawn sets them to SIG_IGN in the child when the parent handles them, and an ignored
signal stays ignored across exec. berth-shim starts lowrt with posix_spawn, so without the raw
syscall the container's program would start with signal 32 ignored.
"""
from __future__ import annotations

from lowrt.linux.libc import c_int, c_ulong, create_string_buffer, syscall

# struct kernel_sigaction zeroed: SIG_DFL, no flags, an empty mask (at most 32 bytes anywhere)
_DEFAULT_ACTION = create_string_buffer(32)
_KERNEL_SIGSET_SIZE = 8


def set_default(sig: int) -> None:
    syscall("rt_sigaction", c_int(sig), _DEFAULT_ACTION, None, c_ulong(_KERNEL_SIGSET_SIZE),
            target=sig)
