"""docker's default seccomp profile, as berth states it.

Every container berthd starts gets this profile unless it is privileged or asks for another
(`--security-opt seccomp=...`): the same rules docker applies, so a program that runs under
docker runs under berth and one that docker stops is stopped here too. The rules follow
docker's default profile as of docker 29.7.2 (moby/profiles seccomp v0.2.3): which calls are
allowed to every container, which only to one holding a capability (the kernel would refuse
most of them anyway without it, the profile keeps the attack surface of the others away),
which only on one architecture, and the argument conditions on `socket`, `personality` and
`clone`. Anything not named gets EPERM (`defaultErrnoRet` 1); the runtime answers ENOSYS for
calls newer than the newest the profile names, and `clone3` gets ENOSYS unless the container
holds CAP_SYS_ADMIN, so that libc falls back to `clone`, whose flags can be checked (clone3's
live in memory a filter cannot read).

The rules are written here in berth's own form, `Rule`, which engine/seccomp_profile.py also
reads docker's JSON profiles into, and turns into the OCI `linux.seccomp` object for one
container (its capabilities, the host's architecture and kernel).
"""
from __future__ import annotations

from dataclasses import dataclass

ALLOW = "SCMP_ACT_ALLOW"
ERRNO = "SCMP_ACT_ERRNO"

EPERM, ENOSYS = 1, 38


@dataclass(frozen=True)
class Arg:
    """One condition on a syscall argument (the OCI form: index, op, value, valueTwo)."""
    index: int
    op: str
    value: int
    value_two: int = 0


@dataclass(frozen=True)
class Rule:
    """Calls that get one action, and when the rule is part of a container's profile.

    caps: the container must hold all of them (docker's `includes.caps`);
    unless_caps: it must hold none of them (`excludes.caps`);
    arches / not_arches: the host's architecture, in docker's names (amd64, arm64, x32...),
    must / must not be one of them; min_kernel / below_kernel: the host's kernel
    (major, minor) must be at least / below it (`includes.minKernel` / `excludes.minKernel`).
    """
    names: tuple[str, ...]
    action: str = ALLOW
    errno: int | None = None
    args: tuple[Arg, ...] = ()
    caps: tuple[str, ...] = ()
    unless_caps: tuple[str, ...] = ()
    arches: tuple[str, ...] = ()
    not_arches: tuple[str, ...] = ()
    min_kernel: tuple[int, int] | None = None
    below_kernel: tuple[int, int] | None = None


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Allowed to every container, by what they are for.
ALLOWED_TO_ALL: dict[str, str] = {
    "files and directories": """
        access cachestat chdir chmod chown chown32 close close_range copy_file_range creat
        dup dup2 dup3 faccessat faccessat2 fadvise64 fadvise64_64 fallocate fchdir fchmod
        fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync flock fstat
        fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futimesat getcwd
        getdents getdents64 ioctl lchown lchown32 link linkat listmount _llseek lseek lstat
        lstat64 mkdir mkdirat mknod mknodat name_to_handle_at newfstatat open openat openat2
        pipe pipe2 pread64 preadv preadv2 pwrite64 pwritev pwritev2 read readahead readlink
        readlinkat readv rename renameat renameat2 rmdir sendfile sendfile64 splice stat
        stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs
        tee truncate truncate64 umask unlink unlinkat utime utimensat utimensat_time64 utimes
        vmsplice write writev
    """,
    "extended attributes": """
        fgetxattr flistxattr fremovexattr fsetxattr getxattr getxattrat lgetxattr listxattr
        listxattrat llistxattr lremovexattr lsetxattr removexattr removexattrat setxattr
        setxattrat
    """,
    "waiting for events": """
        epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
        epoll_wait epoll_wait_old eventfd eventfd2 fanotify_mark inotify_add_watch
        inotify_init inotify_init1 inotify_rm_watch _newselect poll ppoll ppoll_time64
        pselect6 pselect6_time64 select signalfd signalfd4 timerfd_create timerfd_gettime
        timerfd_gettime64 timerfd_settime timerfd_settime64
    """,
    "asynchronous I/O (not io_uring)": """
        io_cancel io_destroy io_getevents io_pgetevents io_pgetevents_time64 io_setup
        io_submit ioprio_get ioprio_set
    """,
    "memory": """
        brk madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mlock mlock2
        mlockall mmap mmap2 mprotect mremap mseal msync munlock munlockall munmap pkey_alloc
        pkey_free pkey_mprotect remap_file_pages
    """,
    "processes and threads": """
        capget capset execve execveat exit exit_group fork futex futex_requeue futex_time64
        futex_wait futex_waitv futex_wake get_robust_list get_thread_area getcpu getpgid
        getpgrp getpid getppid getsid gettid landlock_add_rule landlock_create_ruleset
        landlock_restrict_self pidfd_open pidfd_send_signal prctl process_mrelease
        restart_syscall riscv_hwprobe rseq seccomp set_robust_list set_thread_area
        set_tid_address setpgid setsid uretprobe vfork wait4 waitid waitpid
    """,
    "scheduling, limits and system information": """
        getpriority getrlimit getrusage prlimit64 sched_get_priority_max
        sched_get_priority_min sched_getaffinity sched_getattr sched_getparam
        sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
        sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
        setpriority setrlimit sysinfo times ugetrlimit uname
    """,
    "user and group ids": """
        getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getresgid
        getresgid32 getresuid getresuid32 getuid getuid32 setfsgid setfsgid32 setfsuid
        setfsuid32 setgid setgid32 setgroups setgroups32 setregid setregid32 setresgid
        setresgid32 setresuid setresuid32 setreuid setreuid32 setuid setuid32
    """,
    "signals": """
        kill pause rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
        rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sigaltstack
        sigprocmask sigreturn tgkill tkill
    """,
    "clocks and timers (setting a clock needs CAP_SYS_TIME, below)": """
        adjtimex alarm clock_adjtime clock_adjtime64 clock_getres clock_getres_time64
        clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 getitimer
        getrandom gettimeofday nanosleep setitimer time timer_create timer_delete
        timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
    """,
    "sockets (socket itself: by family, below)": """
        accept accept4 bind connect getpeername getsockname getsockopt listen recv recvfrom
        recvmmsg recvmmsg_time64 recvmsg send sendmmsg sendmsg sendto setsockopt shutdown
        socketcall socketpair
    """,
    "System V and POSIX IPC": """
        ipc mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64
        mq_timedsend mq_timedsend_time64 mq_unlink msgctl msgget msgrcv msgsnd semctl semget
        semop semtimedop semtimedop_time64 shmat shmctl shmdt shmget
    """,
}

# Allowed only to a container holding the capability: what it administers.
ALLOWED_WITH_CAP: dict[str, str] = {
    "CAP_DAC_READ_SEARCH": "open_by_handle_at",
    "CAP_SYS_ADMIN": """
        bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie
        lsm_get_self_attr lsm_list_modules lsm_set_self_attr mount mount_setattr move_mount
        open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog
        umount umount2 unshare
    """,
    "CAP_SYS_BOOT": "reboot",
    "CAP_SYS_CHROOT": "chroot",
    "CAP_SYS_MODULE": "delete_module init_module finit_module",
    "CAP_SYS_PACCT": "acct",
    "CAP_SYS_PTRACE": "kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace",
    "CAP_SYS_RAWIO": "iopl ioperm",
    "CAP_SYS_TIME": "settimeofday stime clock_settime clock_settime64",
    "CAP_SYS_TTY_CONFIG": "vhangup",
    "CAP_SYS_NICE": "get_mempolicy mbind set_mempolicy set_mempolicy_home_node",
    "CAP_SYSLOG": "syslog",
    "CAP_BPF": "bpf",
    "CAP_PERFMON": "perf_event_open",
}

# Calls of one architecture only, keyed by the architectures (docker's names) that have them.
ALLOWED_ON_ARCH: dict[tuple[str, ...], str] = {
    ("ppc64le",): "sync_file_range2 swapcontext",
    ("arm", "arm64"): """
        arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls
    """,
    ("amd64", "x32"): "arch_prctl",
    ("amd64", "x32", "x86"): "modify_ldt",
    ("s390", "s390x"): "s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr",
    ("riscv64",): "riscv_flush_icache",
}

# From kernel 4.8 on, ptrace can no longer be used to get around seccomp, so every container
# may trace its own processes.
TRACING = "process_vm_readv process_vm_writev ptrace"
TRACING_SAFE_FROM = (4, 8)

# socket(2) by address family: all but AF_ALG (38, the kernel's crypto API) and AF_VSOCK (40,
# the host-guest channel of virtual machines).
AF_ALG, AF_VSOCK = 38, 40

# personality(2) only for what programs use: PER_LINUX, PER_LINUX32, UNAME26, both of the
# last two, and 0xffffffff, which only asks for the current persona.
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

# clone(2) without CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER
# | CLONE_NEWPID | CLONE_NEWNET, unless CAP_SYS_ADMIN (which allows clone outright).
NAMESPACE_FLAGS = 0x7E020000

# docker's arch map: the host's architecture and the other ABIs its kernel runs, all of which
# the filter covers (a 32-bit program on a 64-bit host gets the same rules).
ARCH_MAP: dict[str, tuple[str, ...]] = {
    "SCMP_ARCH_X86_64": ("SCMP_ARCH_X86", "SCMP_ARCH_X32"),
    "SCMP_ARCH_AARCH64": ("SCMP_ARCH_ARM",),
    "SCMP_ARCH_MIPS64": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"),
    "SCMP_ARCH_MIPS64N32": ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"),
    "SCMP_ARCH_MIPSEL64": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"),
    "SCMP_ARCH_MIPSEL64N32": ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"),
    "SCMP_ARCH_S390X": ("SCMP_ARCH_S390",),
    "SCMP_ARCH_RISCV64": (),
    "SCMP_ARCH_LOONGARCH64": (),
}


def rules() -> list[Rule]:
    """The profile's rules, in the order docker lists them (which matters only between rules
    for one call: the runtime tries conditional rules in order)."""
    out = [Rule(tuple(sorted(n for text in ALLOWED_TO_ALL.values() for n in _names(text)))),
           Rule(_names(TRACING), min_kernel=TRACING_SAFE_FROM)]
    out += [Rule(("socket",), args=(Arg(0, "SCMP_CMP_LT", AF_ALG),)),
            Rule(("socket",), args=(Arg(0, "SCMP_CMP_EQ", AF_ALG + 1),)),
            Rule(("socket",), args=(Arg(0, "SCMP_CMP_GT", AF_VSOCK),))]
    out += [Rule(("personality",), args=(Arg(0, "SCMP_CMP_EQ", p),)) for p in PERSONAS]
    out += [Rule(_names(text), arches=arches) for arches, text in ALLOWED_ON_ARCH.items()]
    out.append(Rule(_names(ALLOWED_WITH_CAP["CAP_DAC_READ_SEARCH"]),
                    caps=("CAP_DAC_READ_SEARCH",)))
    out.append(Rule(_names(ALLOWED_WITH_CAP["CAP_SYS_ADMIN"]), caps=("CAP_SYS_ADMIN",)))
    # s390 passes clone's flags second
    out.append(Rule(("clone",), args=(Arg(0, "SCMP_CMP_MASKED_EQ", NAMESPACE_FLAGS),),
                    unless_caps=("CAP_SYS_ADMIN",), not_arches=("s390", "s390x")))
    out.append(Rule(("clone",), args=(Arg(1, "SCMP_CMP_MASKED_EQ", NAMESPACE_FLAGS),),
                    unless_caps=("CAP_SYS_ADMIN",), arches=("s390", "s390x")))
    out.append(Rule(("clone3",), action=ERRNO, errno=ENOSYS, unless_caps=("CAP_SYS_ADMIN",)))
    out += [Rule(_names(text), caps=(cap,)) for cap, text in ALLOWED_WITH_CAP.items()
            if cap not in ("CAP_DAC_READ_SEARCH", "CAP_SYS_ADMIN")]
    return out
