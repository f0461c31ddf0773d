"""Every `docker run` option berthd is sent, with the docker CLI (issue 9, "Done when" 1): each
one is applied (seen from inside the container, or by inspect where nothing inside shows it),
refused with words naming it (exit 125), or dropped with the warning dockerd gives. None is
accepted and dropped in silence. Each case runs the same command under Debian's dockerd too
(where it is installed) and checks dockerd's outcome: the same, or, where berth refuses what
needs the networks or volumes it does not have yet, what dockerd does instead (the case says
why). engine/host_config.py's HANDLED_FIELDS is the same decision per API field (its unit test
walks body_types); test_every_cli_flag_has_a_case walks `docker run --help`, and
test_every_api_field_has_a_case the create body's fields."""
from __future__ import annotations

import glob
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass

import pytest

from tests.helpers.engine_daemon import DOCKER, docker_cli_major
from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (a fixture)


def _block_device() -> tuple[str, str]:
    """A whole-disk block device of this host and its 'major:minor'."""
    for name in ("vda", "sda", "nvme0n1", "xvda", "loop0"):
        path = f"/dev/{name}"
        if os.path.exists(path) and stat.S_ISBLK(os.stat(path).st_mode):
            rdev = os.stat(path).st_rdev
            return path, f"{os.major(rdev)}:{os.minor(rdev)}"
    return "/dev/null-block", "0:0"


def _v1() -> bool:
    return not os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _has(pattern: str) -> bool:
    return bool(glob.glob(f"/sys/fs/cgroup/{pattern}"))


def _ns(kind: str) -> str:
    return os.readlink(f"/proc/self/ns/{kind}")


def _cap_bounding() -> str:
    with open("/proc/self/status") as f:
        return re.search(r"CapBnd:\s*(\w+)", f.read()).group(1)


DEV, NUMBERS = _block_device()
CLI = docker_cli_major()
WEIGHT_DEVICE_WARNING = ("Your kernel does not support Block I/O weight_device or the cgroup is "
                         "not mounted. Weight-device discarded.")
WEIGHT_WARNING = ("Your kernel does not support Block I/O weight or the cgroup is not mounted. "
                  "Weight discarded.")
OOM_WARNING = ("OOM killer is disabled for the container, but no memory limit is set, this can "
               "result in the system running out of resources.")
WINDOWS_ONLY = "only supported on a Docker daemon running on windows"
DEFAULT_CAPS = 0xa80425fb            # dockerd's default capability set
CG = "/sys/fs/cgroup"
FILES = "/tmp/berth-flags"           # a directory to bind, and the env and label files
SHARED = "/tmp/berth-flags-shared"     # a shared mount (the fixture makes it)
PRIVATE = "/run/berth-flags-private"   # a private one
PARENT = "berth-flags-parent"          # a --cgroup-parent
NO_NETWORKS = "berth refuses what its networks cannot give (IPv6, a MAC of the user's); dockerd applies it"
NAMED_VOLUME = "berth-flags-named"    # the named-volume case's, removed after it
NONE_NET = ("dockerd here has no bridge, so its containers run with --network none, with which "
            "dockerd refuses the option itself")


@dataclass(frozen=True)
class Case:
    """One docker CLI command: `docker run --rm FLAGS busybox sh -c INSIDE`, or where inside
    starts with "inspect:", `docker create FLAGS busybox true` and that inspect --format.
    outcome: "applied" (expected is in the output), "refused" (exit 125, expected in
    stderr), "warned" (the warning in stderr, the container runs), "ignored" (runs, no
    warning, expected not in the output: as dockerd 28), "cli-refused" (the docker CLI
    refuses it itself, exit 1), "match" (expected is a regular expression the output
    matches). dockerd: dockerd's (outcome, expected) where it differs from berthd's, and
    why, for the comparison; dockerd_skip: why dockerd cannot run it here."""
    flags: tuple[str, ...]
    inside: str
    outcome: str
    expected: str
    dockerd: tuple[str, str] | None = None
    why: str = ""
    stdin: bytes | None = None
    cli: int = 0                     # the docker CLI major version that has the flag
    dockerd_skip: str = ""
    v1_only: bool = False            # the check reads cgroup v1 files


def case(flags, inside, outcome, expected, **kw) -> Case:
    v1 = inside.startswith(("cat /sys/fs/cgroup/", "cat " + CG))
    return Case(tuple(flags), inside, outcome, expected, v1_only=v1, **kw)


CASES: dict[str, Case] = {
    # --- the CLI's own: sent as query parameters or used by the CLI alone
    "attach": case(["-a", "stderr"], "echo out; echo err >&2", "match", r"^$",
                   why="-a stderr: stdout not attached"),
    "cidfile": case(["--cidfile", f"{FILES}/cid"], "echo ran", "applied", "ran"),
    "detach": case(["-d"], "true", "match", r"^[0-9a-f]{64}\n$"),
    "detach-keys": case(["--detach-keys", "ctrl-x"], "echo ran", "applied", "ran"),
    "detach-keys-bad": case(["-d", "--detach-keys", "bogus-keys"], "true", "match",
                            r"^[0-9a-f]{64}\n$",
                            why="checked only when a stream is attached"),
    "disable-content-trust": case(["--disable-content-trust"], "echo ran", "applied", "ran"),
    "help": case(["--help"], "true", "applied", "Usage:"),
    "name": case(["--name", "berth-flags-name"], "inspect:{{.Name}}", "applied",
                 "/berth-flags-name"),
    "platform": case(["--platform", "linux/amd64"], "echo ran", "applied", "ran"),
    # --pull never: on any 404 at create the docker CLI pulls the image, which cannot succeed
    # here, and shows that pull's error instead of the daemon's
    "platform-other": case(["--pull", "never", "--platform", "linux/arm64"], "true", "refused",
                           "does not match the specified platform"),
    "pull-never": case(["--pull", "never"], "echo ran", "applied", "ran"),
    "pull-bad": case(["--pull", "sometimes"], "true", "cli-refused", "invalid pull option",
                     cli=23),
    "quiet": case(["-q"], "echo ran", "applied", "ran", cli=23),
    "rm": case(["--rm"], "echo ran", "applied", "ran"),
    "sig-proxy": case(["--sig-proxy=false"], "echo ran", "applied", "ran"),
    "interactive": case(["-i"], "cat", "applied", "from stdin", stdin=b"from stdin\n"),
    "tty": case(["-t"], "tty", "applied", "/dev/pts/0"),
    # --- Config
    "domainname": case(["--domainname", "example.org"], "cat /proc/sys/kernel/domainname",
                       "applied", "example.org"),
    "entrypoint": case(["--entrypoint", "echo"], "x", "applied", "sh -c x"),
    "env": case(["-e", "BERTH_FLAG=set"], "echo $BERTH_FLAG", "applied", "set"),
    "env-file": case(["--env-file", f"{FILES}/env"], "echo $FROM_FILE", "applied", "filed"),
    "expose": case(["--expose", "8080"], "inspect:{{json .Config.ExposedPorts}}", "applied",
                   '{"8080/tcp":{}}'),
    "health-cmd": case(["--health-cmd", "true", "--health-interval", "5s", "--health-retries",
                        "2", "--health-timeout", "3s", "--health-start-period", "1s"],
                       "inspect:{{json .Config.Healthcheck}}", "applied",
                       '{"Test":["CMD-SHELL","true"],"Interval":5000000000,'
                       '"Timeout":3000000000,"StartPeriod":1000000000,"Retries":2}'),
    "health-start-interval": case(["--health-cmd", "true", "--health-start-interval", "2s"],
                                  "inspect:{{.Config.Healthcheck.StartInterval}}", "applied",
                                  "2s", cli=25,
                                  dockerd=("cli-refused", "--health-start-interval"),
                                  why="dockerd 20.10 serves API 1.41; the flag needs 1.44"),
    "hostname": case(["-h", "flaghost"], "hostname", "applied", "flaghost"),
    "label": case(["-l", "a=b"], "inspect:{{json .Config.Labels}}", "applied", '"a":"b"'),
    "label-file": case(["--label-file", f"{FILES}/labels"], "inspect:{{json .Config.Labels}}",
                       "applied", '"from":"file"'),
    "mac-address": case(["--mac-address", "02:42:ac:11:00:02"], "true", "refused",
                        "--mac-address",
                        dockerd=("cli-refused", "requires API version 1.44") if CLI >= 25
                        else ("applied", ""),
                        why=f"{NO_NETWORKS}; the docker CLI 25+ sends it per network, which "
                        f"dockerd 20.10's API lacks; dockerd 20.10 drops it with --network "
                        f"none"),
    "no-healthcheck": case(["--no-healthcheck"], "inspect:{{json .Config.Healthcheck}}",
                           "applied", '{"Test":["NONE"]}'),
    "stop-signal": case(["--stop-signal", "USR1"], "inspect:{{.Config.StopSignal}}", "applied",
                        "USR1"),
    "stop-timeout": case(["--stop-timeout", "7"], "inspect:{{.Config.StopTimeout}}", "applied",
                         "7"),
    "user": case(["-u", "1000:1000"], "id", "applied", "uid=1000 gid=1000"),
    "workdir": case(["-w", "/tmp"], "pwd", "applied", "/tmp"),
    # --- HostConfig: resources
    "blkio-weight-device": case(["--blkio-weight-device", f"{DEV}:300"], "true", "warned",
                                WEIGHT_DEVICE_WARNING),
    "blkio-weight": case(["--blkio-weight", "300"], "true", "warned", WEIGHT_WARNING),
    "cpu-period": case(["--cpu-period", "50000"], f"cat {CG}/cpu/cpu.cfs_period_us", "applied",
                       "50000"),
    "cpu-quota": case(["--cpu-quota", "20000"], f"cat {CG}/cpu/cpu.cfs_quota_us", "applied",
                      "20000"),
    "cpu-shares": case(["-c", "512"], f"cat {CG}/cpu/cpu.shares", "applied", "512"),
    "cpus": case(["--cpus", "0.5"], f"cat {CG}/cpu/cpu.cfs_quota_us", "applied", "50000"),
    "cpuset-cpus": case(["--cpuset-cpus", "0"], f"cat {CG}/cpuset/cpuset.cpus", "applied", "0"),
    "cpuset-mems": case(["--cpuset-mems", "0"], f"cat {CG}/cpuset/cpuset.mems", "applied", "0"),
    "cpuset-cpus-missing": case(["--cpuset-cpus", "4095"], "true", "refused",
                                "Requested CPUs are not available"),
    "cpu-rt-runtime-over-period": case(["--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000"],
                                       "true", "refused", "cpu real-time runtime cannot be "
                                       "higher than cpu real-time period"),
    # given to the runtime, which writes it; the kernel refuses a budget the parent cgroup
    # does not have, as under dockerd without its daemon option --cpu-rt-runtime
    "cpu-rt-runtime": case(["--cpu-rt-runtime", "10000"], f"cat {CG}/cpu/cpu.rt_runtime_us",
                           "refused", "cpu.rt_runtime_us: invalid argument"),
    "cpu-rt-period": case(["--cpu-rt-period", "500000"], f"cat {CG}/cpu/cpu.rt_period_us",
                          "applied", "500000"),
    "cpu-count": case(["--cpu-count", "1"], "true", "cli-refused", WINDOWS_ONLY),
    "cpu-percent": case(["--cpu-percent", "50"], "true", "cli-refused", WINDOWS_ONLY),
    "io-maxbandwidth": case(["--io-maxbandwidth", "1m"], "true", "cli-refused", WINDOWS_ONLY),
    "io-maxiops": case(["--io-maxiops", "100"], "true", "cli-refused", WINDOWS_ONLY),
    "device-read-bps": case(["--device-read-bps", f"{DEV}:1mb"],
                            f"cat {CG}/blkio/blkio.throttle.read_bps_device", "applied",
                            f"{NUMBERS} 1048576"),
    "device-write-bps": case(["--device-write-bps", f"{DEV}:2mb"],
                             f"cat {CG}/blkio/blkio.throttle.write_bps_device", "applied",
                             f"{NUMBERS} 2097152"),
    "device-read-iops": case(["--device-read-iops", f"{DEV}:100"],
                             f"cat {CG}/blkio/blkio.throttle.read_iops_device", "applied",
                             f"{NUMBERS} 100"),
    "device-write-iops": case(["--device-write-iops", f"{DEV}:200"],
                              f"cat {CG}/blkio/blkio.throttle.write_iops_device", "applied",
                              f"{NUMBERS} 200"),
    # API 1.42 removed KernelMemory: dockerd 28 ignores it without a word (its router zeroes
    # it), and so does berthd (the field is not in the API it serves): not limited
    # API 1.42 dropped the field: the CLI 20.10 (API 1.41) still sends it, and then both
    # daemons warn; berthd drops it (API 1.42+ clients send nothing)
    "kernel-memory": case(["--kernel-memory", "64m"],
                          f"cat {CG}/memory/memory.kmem.limit_in_bytes",
                          *(("warned", "kernel memory limit is deprecated") if CLI < 23
                            else ("ignored", "67108864")),
                          dockerd=("warned", "kernel memory limit is deprecated"),
                          why="dockerd 20.10 serves API 1.41, which still has the field: it "
                          "warns, and this kernel limits no kernel memory"),
    "memory": case(["-m", "64m"], f"cat {CG}/memory/memory.limit_in_bytes", "applied",
                   "67108864"),
    "memory-reservation": case(["--memory-reservation", "32m"],
                               f"cat {CG}/memory/memory.soft_limit_in_bytes", "applied",
                               "33554432"),
    "memory-swap": case(["-m", "64m", "--memory-swap", "128m"],
                        f"cat {CG}/memory/memory.memsw.limit_in_bytes 2>/dev/null || "
                        f"cat {CG}/memory/memory.limit_in_bytes", "applied", "134217728"),
    "memory-swappiness": case(["--memory-swappiness", "13"],
                              f"cat {CG}/memory/memory.swappiness", "applied", "13"),
    "oom-kill-disable": case(["--oom-kill-disable", "-m", "64m"],
                             f"cat {CG}/memory/memory.oom_control", "applied",
                             "oom_kill_disable 1"),
    "oom-kill-disable-no-limit": case(["--oom-kill-disable"], "true", "warned", OOM_WARNING),
    "oom-score-adj": case(["--oom-score-adj", "100"], "cat /proc/self/oom_score_adj",
                          "applied", "100"),
    "pids-limit": case(["--pids-limit", "50"], f"cat {CG}/pids/pids.max", "applied", "50"),
    "ulimit": case(["--ulimit", "nofile=1024:2048"], "ulimit -n; ulimit -Hn", "applied",
                   "1024\n2048"),
    "cgroup-parent": case(["--cgroup-parent", f"/{PARENT}"], "cat /proc/self/cgroup",
                          "applied", f":memory:/{PARENT}/"),
    # --- HostConfig: namespaces, privileges, devices
    "cgroupns": case(["--cgroupns", "private"], "cat /proc/self/cgroup", "match",
                     r"(?m)^\d+:memory:/$"),
    "ipc-host": case(["--ipc", "host"], "readlink /proc/self/ns/ipc", "applied", _ns("ipc")),
    "ipc-container": case(["--ipc", "container:other"], "true", "refused", "--ipc",
                          dockerd=("refused", "other"),
                          why="dockerd refuses a container it cannot find"),
    "pid-host": case(["--pid", "host"], "readlink /proc/self/ns/pid", "applied", _ns("pid")),
    "pid-container": case(["--pid", "container:other"], "true", "refused", "--pid",
                          dockerd=("refused", "other"),
                          why="dockerd refuses a container it cannot find"),
    "uts-host": case(["--uts", "host"], "readlink /proc/self/ns/uts", "applied", _ns("uts")),
    "userns-host": case(["--userns", "host"], "cat /proc/self/uid_map", "applied",
                        "0          0 4294967295"),
    "cap-add": case(["--cap-add", "NET_ADMIN"], "grep CapEff /proc/self/status", "applied",
                    f"{DEFAULT_CAPS | 1 << 12:016x}"),
    "cap-drop": case(["--cap-drop", "CHOWN"], "grep CapEff /proc/self/status", "applied",
                     f"{DEFAULT_CAPS & ~1:016x}"),
    "privileged": case(["--privileged"], "grep CapEff /proc/self/status", "applied",
                       _cap_bounding(), dockerd=("refused", "unable to apply caps"),
                       why="dockerd asks runc for every capability it knows, which this "
                       "host's bounding set may lack; berth gives the bounding set"),
    "group-add": case(["--group-add", "1234"], "id -G", "applied", "1234"),
    "security-opt-nnp": case(["--security-opt", "no-new-privileges"],
                             "grep NoNewPrivs /proc/self/status", "applied", "NoNewPrivs:\t1"),
    "security-opt-seccomp": case(["--security-opt", "seccomp=unconfined"],
                                 "grep Seccomp: /proc/self/status", "applied", "Seccomp:\t0"),
    # the CLI sends empty MaskedPaths and ReadonlyPaths: /proc/kcore is not masked
    "security-opt-systempaths": case(["--security-opt", "systempaths=unconfined"],
                                     "grep -c ' /proc/kcore ' /proc/self/mountinfo; true",
                                     "match", r"^0\n$"),
    "security-opt-bad": case(["--security-opt", "bogus=1"], "true", "refused",
                             "invalid --security-opt"),
    "read-only": case(["--read-only"], "touch /f 2>&1; true", "applied",
                      "Read-only file system"),
    "shm-size": case(["--shm-size", "128m"], "grep /dev/shm /proc/mounts", "applied",
                     "size=131072k"),
    "sysctl": case(["--sysctl", "kernel.msgmax=65536"], "cat /proc/sys/kernel/msgmax",
                   "applied", "65536"),
    # the docker CLI 20.10 refuses it itself; 28 leaves it to the daemon
    "sysctl-host-only": case(["--sysctl", "vm.swappiness=10"], "true",
                             *(("refused", "not allowed") if CLI >= 23
                               else ("cli-refused", "is not whitelisted"))),
    "device": case(["--device", "/dev/null:/dev/xnull"], "stat -c %t:%T /dev/xnull",
                   "applied", "1:3"),
    "device-cgroup-rule": case(["--device-cgroup-rule", "c 42:* rmw"],
                               f"cat {CG}/devices/devices.list", "applied", "c 42:* rwm"),
    "device-cgroup-rule-bad": case(["--device-cgroup-rule", "c 42 rmw"], "true", "refused",
                                   "invalid device cgroup"),
    "gpus": case(["--gpus", "all"], "true", "refused", "--gpus",
                 dockerd=("refused", "could not select device driver"),
                 why="dockerd has no GPU driver here either"),
    "init": case(["--init"], "cat /proc/1/cmdline", "applied", "init"),
    "isolation": case(["--isolation", "hyperv"], "true", "refused", "invalid isolation",
                      dockerd=("refused", "Invalid isolation"),
                      why="dockerd 20.10 words it with a capital"),
    "annotation": case(["--annotation", "org.example.a=b"],
                       "inspect:{{json .HostConfig.Annotations}}", "applied",
                       '{"org.example.a":"b"}', cli=25,
                       dockerd=("cli-refused", "annotation"),
                       why="dockerd 20.10 serves API 1.41; annotations need 1.43"),
    "runtime": case(["--runtime", "runc"], "inspect:{{.HostConfig.Runtime}}", "applied",
                    "runc"),
    "runtime-unknown": case(["--runtime", "nope"], "true", "refused",
                            "unknown or invalid runtime", dockerd=("refused", "Unknown runtime"),
                            why="dockerd 20.10 words it differently"),
    "restart": case(["--restart", "on-failure:3"],
                    "inspect:{{json .HostConfig.RestartPolicy}}", "applied",
                    '{"Name":"on-failure","MaximumRetryCount":3}'),
    "log-driver-none": case(["--log-driver", "none"], "inspect:{{.HostConfig.LogConfig.Type}}",
                            "applied", "none"),
    "log-driver": case(["--log-driver", "syslog"], "true", "refused", "syslog",
                       dockerd=("refused", "syslog"),
                       why="dockerd has the driver, but no syslog listens here"),
    "log-opt": case(["--log-opt", "max-size=1m"],
                    "inspect:{{json .HostConfig.LogConfig.Config}}", "applied",
                    '{"max-size":"1m"}'),
    # without max-size nothing rotates: dockerd keeps max-file and runs the container
    "log-opt-max-file-alone": case(["--log-opt", "max-file=2"],
                                   "inspect:{{json .HostConfig.LogConfig.Config}}", "applied",
                                   '{"max-file":"2"}'),
    "log-opt-bad": case(["--log-opt", "bogus=1"], "true", "refused",
                        "unknown log opt 'bogus' for json-file log driver"),
    "storage-opt": case(["--storage-opt", "size=1G"], "true", "refused", "--storage-opt",
                        dockerd=("refused", "storage-opt"),
                        why="dockerd's overlay2 here has no project quota either"),
    # --- mounts
    "volume-bind": case(["-v", f"{FILES}:/x"], "ls /x", "applied", "env"),
    "bind-rshared": case(["-v", f"{SHARED}:/x:rshared"], "grep ' /x ' /proc/self/mountinfo",
                         "applied", "shared:"),
    "bind-rslave": case(["-v", f"{SHARED}:/x:rslave"], "grep ' /x ' /proc/self/mountinfo",
                        "applied", "master:"),
    "bind-rshared-private-source": case(["-v", f"{PRIVATE}:/x:rshared"], "true", "refused",
                                        "is not a shared mount"),
    "bind-ro-z": case(["-v", f"{FILES}:/x:ro,z"], "touch /x/f 2>&1; true", "applied",
                      "Read-only file system"),
    "bind-bad-mode": case(["-v", f"{FILES}:/x:bogus"], "true", "refused",
                          "invalid mode: bogus"),
    "mount-bind": case(["--mount", f"type=bind,src={FILES},dst=/x,readonly"],
                       "touch /x/f 2>&1; true", "applied", "Read-only file system"),
    "mount-tmpfs": case(["--mount", "type=tmpfs,dst=/t,tmpfs-size=1m"],
                        "grep ' /t ' /proc/self/mountinfo", "applied", "size=1024k"),
    "tmpfs": case(["--tmpfs", "/t:size=1m"], "grep ' /t ' /proc/self/mountinfo", "applied",
                  "size=1024k"),
    "tmpfs-relative": case(["--tmpfs", "rel"], "true", "refused",
                           "invalid mount path: 'rel' mount path must be absolute"),
    # both daemons' data roots are under /tmp here: a private bind of /tmp would pin the
    # mounts they make there
    "bind-daemon-root-private": case(["-v", "/tmp:/x:rprivate"], "true", "refused",
                                     'must use either propagation mode "rslave" or "rshared" '
                                     'when mount source is within the daemon root'),
    # volumes: anonymous ones go with --rm; the named one stays (removed after the case)
    "mount-volume": case(["--mount", "type=volume,dst=/data"],
                         "grep -c ' /data ' /proc/self/mountinfo", "applied", "1"),
    "anonymous-volume": case(["-v", "/data"], "grep -c ' /data ' /proc/self/mountinfo",
                             "applied", "1"),
    "named-volume": case(["-v", f"{NAMED_VOLUME}:/data:ro"],
                         "touch /data/f 2>&1; grep -c ' /data ' /proc/self/mountinfo",
                         "applied", "Read-only file system\n1"),
    "volume-driver": case(["--volume-driver", "local", "-v", "/data"], "ls -d /data",
                          "applied", "/data"),
    "volumes-from": case(["--pull", "never", "--volumes-from", "other"], "true", "refused",
                         "No such container: other"),
    # the docker CLI makes it a bind mount of the socket it talks to
    "use-api-socket": case(["--use-api-socket"], "ls /var/run/docker.sock", "applied",
                           "/var/run/docker.sock", cli=28),
    # --- networks (engine/network/; the peer dockerd here runs without a bridge)
    "network-none": case(["--network", "none"], "ls /sys/class/net", "match", r"^lo\n$"),
    "network-host": case(["--network", "host"], "readlink /proc/self/ns/net", "applied",
                         _ns("net")),
    "network-unknown": case(["--network", "mynet"], "true", "refused", "network mynet not found"),
    "network-container": case(["--network", "container:other"], "true", "refused",
                              "No such container: other", dockerd=("refused", "other"),
                              why="both refuse a container they cannot find, in other words"),
    # the docker CLI 25+ refuses it itself without a user-defined network; 20.10 drops it
    # (berthd refuses NetworkingConfig's Aliases: test_api_values_the_cli_does_not_send...)
    "network-alias": case(["--network-alias", "a"], "true", "cli-refused",
                          "network-scoped aliases are only supported", cli=25),
    "link": case(["--link", "other:alias"], "true", "refused",
                 "could not get container for other",
                 dockerd=("refused", "could not get container for other") if CLI >= 23
                 else ("cli-refused", "links are only supported for user-defined networks"),
                 why="both refuse a container they cannot find (what a link gives: "
                 "tests/e2e/test_networks.py); the docker CLI 20.10 links with --network none"),
    "link-local-ip": case(["--link-local-ip", "169.254.1.1"], "true", "refused",
                          "--link-local-ip", cli=21, dockerd=("applied", ""),
                          why=f"{NO_NETWORKS}; dockerd keeps it for a network none lacks"),
    # a random host port on the loopback (what reaches it: tests/e2e/test_networks.py)
    "publish": case(["-p", "127.0.0.1::80"], "true", "applied", ""),
    "publish-all": case(["--expose", "80", "-P"], "true", "applied", ""),
    "dns": case(["--dns", "192.0.2.1"], "cat /etc/resolv.conf", "applied",
                "nameserver 192.0.2.1"),
    "dns-search": case(["--dns-search", "example.org"], "cat /etc/resolv.conf", "applied",
                       "search example.org"),
    "dns-option": case(["--dns-option", "ndots:2"], "cat /etc/resolv.conf", "applied",
                       "options ndots:2"),
    "add-host": case(["--add-host", "h:192.0.2.1"], "cat /etc/hosts", "applied", "192.0.2.1"),
    "ip": case(["--ip", "192.0.2.5"], "true", "refused",
               "user specified IP address is supported on user defined networks only", cli=21,
               dockerd=("refused", "user specified IP address is supported"),
               why="the same refusal; dockerd here has no bridge"),
    "ip6": case(["--ip6", "2001:db8::33"], "true", "refused", "--ip6", cli=21,
                dockerd=("refused", "user specified IP address is supported"),
                why=f"{NO_NETWORKS}; {NONE_NET}"),
}
if _v1() and (_has("blkio/blkio.weight_device") or _has("blkio/blkio.bfq.weight_device")):
    CASES["blkio-weight-device"] = case(
        ["--blkio-weight-device", f"{DEV}:300"], f"cat {CG}/blkio/blkio.bfq.weight_device "
        f"{CG}/blkio/blkio.weight_device 2>/dev/null", "applied", f"{NUMBERS} 300")
if _v1() and (_has("blkio/blkio.weight") or _has("blkio/blkio.bfq.weight")):
    CASES["blkio-weight"] = case(["--blkio-weight", "300"], f"cat {CG}/blkio/blkio.bfq.weight "
                                 f"{CG}/blkio/blkio.weight 2>/dev/null", "applied", "300")

# flags of `docker run --help` with no case of their own, and the case that has them
COVERED_BY = {"health-interval": "health-cmd", "health-retries": "health-cmd",
              "health-timeout": "health-cmd", "health-start-period": "health-cmd",
              "ipc": "ipc-host", "pid": "pid-host", "uts": "uts-host", "userns": "userns-host",
              "volume": "volume-bind", "mount": "mount-bind", "network": "network-none",
              "pull": "pull-never", "security-opt": "security-opt-nnp",
              "cpu-shares": "cpu-shares", "publish-all": "publish-all",
              "log-driver": "log-driver"}
SHORT = {"-a": "attach", "-c": "cpu-shares", "-d": "detach", "-e": "env", "-h": "hostname",
         "-i": "interactive", "-l": "label", "-m": "memory", "-p": "publish",
         "-P": "publish-all", "-q": "quiet", "-t": "tty", "-u": "user", "-v": "volume",
         "-w": "workdir"}


# each field of the create body (engine/body_types.py) -> the case whose command sends it, or
# why no docker run flag does (those the CLI cannot send are refused or kept as dockerd keeps
# them: test_api_values_the_cli_does_not_send_are_refused_too, tests/engine/test_handled_fields)
NOT_SENT = "no docker run flag sets it"
FIELD_CASES = {
    "Config": {
        "ArgsEscaped": f"{NOT_SENT} (Windows images' build)", "AttachStderr": "attach",
        "AttachStdin": "interactive", "AttachStdout": "attach", "Cmd": "rm",
        "Domainname": "domainname", "Entrypoint": "entrypoint", "Env": "env",
        "ExposedPorts": "expose", "Healthcheck": "health-cmd", "Hostname": "hostname",
        "Image": "rm", "Labels": "label", "MacAddress": "mac-address",
        "NetworkDisabled": f"{NOT_SENT} (dockerd only stores it)",
        "OnBuild": f"{NOT_SENT} (docker build's ONBUILD)", "OpenStdin": "interactive",
        "Shell": f"{NOT_SENT} (docker build's SHELL)", "StdinOnce": "interactive",
        "StopSignal": "stop-signal", "StopTimeout": "stop-timeout", "Tty": "tty",
        "User": "user", "Volumes": "anonymous-volume", "WorkingDir": "workdir",
    },
    "HostConfig": {
        "Annotations": "annotation", "AutoRemove": "rm", "Binds": "volume-bind",
        "BlkioDeviceReadBps": "device-read-bps", "BlkioDeviceReadIOps": "device-read-iops",
        "BlkioDeviceWriteBps": "device-write-bps", "BlkioDeviceWriteIOps": "device-write-iops",
        "BlkioWeight": "blkio-weight", "BlkioWeightDevice": "blkio-weight-device",
        "CapAdd": "cap-add", "CapDrop": "cap-drop",
        "Cgroup": f"{NOT_SENT} (refused: test_api_values_the_cli_does_not_send...)",
        "CgroupParent": "cgroup-parent", "CgroupnsMode": "cgroupns", "ConsoleSize": "tty",
        "ContainerIDFile": "cidfile", "CpuCount": "cpu-count", "CpuPercent": "cpu-percent",
        "CpuPeriod": "cpu-period", "CpuQuota": "cpu-quota",
        "CpuRealtimePeriod": "cpu-rt-period", "CpuRealtimeRuntime": "cpu-rt-runtime",
        "CpuShares": "cpu-shares", "CpusetCpus": "cpuset-cpus", "CpusetMems": "cpuset-mems",
        "DeviceCgroupRules": "device-cgroup-rule", "DeviceRequests": "gpus",
        "Devices": "device", "Dns": "dns", "DnsOptions": "dns-option",
        "DnsSearch": "dns-search", "ExtraHosts": "add-host", "GroupAdd": "group-add",
        "IOMaximumBandwidth": "io-maxbandwidth", "IOMaximumIOps": "io-maxiops",
        "Init": "init", "IpcMode": "ipc-host", "Isolation": "isolation", "Links": "link",
        "LogConfig": "log-opt", "MaskedPaths": "security-opt-systempaths", "Memory": "memory",
        "MemoryReservation": "memory-reservation", "MemorySwap": "memory-swap",
        "MemorySwappiness": "memory-swappiness", "Mounts": "mount-bind", "NanoCpus": "cpus",
        "NetworkMode": "network-host", "OomKillDisable": "oom-kill-disable",
        "OomScoreAdj": "oom-score-adj", "PidMode": "pid-host", "PidsLimit": "pids-limit",
        "PortBindings": "publish", "Privileged": "privileged", "PublishAllPorts": "publish-all",
        "ReadonlyPaths": "security-opt-systempaths", "ReadonlyRootfs": "read-only",
        "RestartPolicy": "restart", "Runtime": "runtime", "SecurityOpt": "security-opt-nnp",
        "ShmSize": "shm-size", "StorageOpt": "storage-opt", "Sysctls": "sysctl",
        "Tmpfs": "tmpfs", "UTSMode": "uts-host", "Ulimits": "ulimit",
        "UsernsMode": "userns-host", "VolumeDriver": "volume-driver",
        "VolumesFrom": "volumes-from",
    },
}


@pytest.fixture(scope="module", autouse=True)
def mounts():
    """SHARED a shared bind mount, PRIVATE a private one: rshared and rslave binds need the
    first, dockerd refuses them from the second. FILES holds the env and label files."""
    os.makedirs(FILES, exist_ok=True)
    with open(f"{FILES}/env", "w") as f:
        f.write("FROM_FILE=filed\n")
    with open(f"{FILES}/labels", "w") as f:
        f.write("from=file\n")
    made = []
    for path, kind in ((SHARED, "--make-shared"), (PRIVATE, "--make-private")):
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "--bind", path, path], check=True)
        made.append(path)
        subprocess.run(["mount", kind, path], check=True)
    yield
    for path in made:
        subprocess.run(["umount", "-l", path], check=False)
        os.rmdir(path)
    shutil.rmtree(FILES, ignore_errors=True)
    # the --cgroup-parent case's parent, left by both daemons' runtimes (as dockerd leaves it)
    for d in glob.glob(f"{CG}/*/{PARENT}"):
        os.rmdir(d)


def _run(docker, c: Case, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The case's one docker CLI command (an inspect case: create, inspect, rm)."""
    if os.path.exists(f"{FILES}/cid"):
        os.unlink(f"{FILES}/cid")
    if not c.inside.startswith("inspect:"):
        return docker("run", "--rm", *extra, *c.flags, "busybox", "sh", "-c", c.inside,
                      input=c.stdin)
    p = docker("create", *extra, *c.flags, "busybox", "true")
    if p.returncode != 0:
        return p
    cid = p.stdout.decode().strip().splitlines()[-1]
    shown = docker("inspect", "--format", c.inside[len("inspect:"):], cid)
    docker("rm", cid)
    return subprocess.CompletedProcess(p.args, shown.returncode, shown.stdout,
                                       p.stderr + shown.stderr)


def _check(p, outcome: str, expected: str) -> None:
    out, err = p.stdout.decode(), p.stderr.decode()
    if outcome == "refused":
        assert p.returncode == 125 and expected in err, (p.returncode, out, err)
    elif outcome == "cli-refused":
        assert p.returncode in (1, 125) and expected in err, (p.returncode, out, err)
    elif outcome == "ignored":
        assert p.returncode == 0 and expected not in out and not err, (p.returncode, out, err)
    elif outcome == "warned":
        assert p.returncode == 0 and expected in err, (p.returncode, out, err)
    elif outcome == "match":
        assert p.returncode == 0 and re.search(expected, out), (p.returncode, out, err)
    else:
        assert p.returncode == 0 and expected in out, (p.returncode, out, err)


def _skip_unsendable(name: str, c: Case) -> None:
    if c.cli and CLI < c.cli:
        pytest.skip(f"docker CLI {CLI} cannot send {' '.join(c.flags)} (it lacks the flag, "
                    f"checks less, or drops it without a network: needs {c.cli}+)")
    if c.v1_only and not _v1():
        pytest.skip("the check reads cgroup v1 files")


@pytest.mark.parametrize("name", sorted(CASES))
def test_flag(daemon, name):
    c = CASES[name]
    _skip_unsendable(name, c)
    before = daemon.container_ids()
    _check(_run(daemon.docker, c), c.outcome, c.expected)
    if c.outcome == "refused":
        assert daemon.container_ids() == before      # refused before a record exists
    if name == "cidfile":
        with open(f"{FILES}/cid") as f:
            assert re.fullmatch(r"[0-9a-f]{64}", f.read())
    if name == "named-volume":      # a named volume outlives its container, by design
        assert daemon.docker("volume", "rm", NAMED_VOLUME).returncode == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_as_debians_dockerd(dockerd, name):  # noqa: F811 (the fixture)
    c = CASES[name]
    _skip_unsendable(name, c)
    if c.dockerd_skip:
        pytest.skip(c.dockerd_skip)
    net = () if any(f in ("--network", "--net") or f.startswith(("--network=", "--net="))
                    for f in c.flags) \
        else ("--network", "none")      # dockerd here has no bridge
    outcome, expected = c.dockerd or (c.outcome, c.expected)

    def peer(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        return dockerd.daemon.docker(*args, check=False, input=input)
    _check(_run(peer, c, net), outcome, expected)
    if name == "named-volume":
        peer("volume", "rm", NAMED_VOLUME)


def test_every_cli_flag_has_a_case():
    """Each flag `docker run --help` lists (this CLI's) has a case here."""
    text = subprocess.run([DOCKER, "run", "--help"], capture_output=True, text=True).stdout
    flags = set(re.findall(r"^\s+(?:-\w, )?--([\w-]+)", text, re.M))
    missing = sorted(f for f in flags if f not in CASES and f not in COVERED_BY
                     and not any(n.startswith(f + "-") for n in CASES))
    assert not missing, missing


def test_every_api_field_has_a_case():
    """Each Config and HostConfig field berthd takes is sent by a case's command, or says
    why no docker run flag sends it."""
    from engine import body_types
    fields = {"Config": set(body_types.CONFIG_FIELDS),
              "HostConfig": set(body_types.HOST_CONFIG.fields)}
    for part, names in fields.items():
        assert names == set(FIELD_CASES[part]), (part, names ^ set(FIELD_CASES[part]))
        for name, where in FIELD_CASES[part].items():
            assert where in CASES or where.startswith(NOT_SENT), (part, name, where)


def test_refusals_name_the_flag_and_field(daemon):
    _skip_unsendable("link-local-ip", CASES["link-local-ip"])
    p = daemon.docker("run", "--rm", "--link-local-ip", "169.254.1.1", "busybox", "true")
    assert b"berth cannot apply --link-local-ip yet (NetworkingConfig.EndpointsConfig[" \
        in p.stderr, p.stderr


@pytest.mark.parametrize("body, words", [
    ({"HostConfig": {"UsernsMode": "private"}}, "--userns private"),
    ({"HostConfig": {"Cgroup": "container:other"}}, "HostConfig.Cgroup"),
    ({"NetworkingConfig": {"EndpointsConfig": {"n": {"MacAddress": "02:42:00:00:00:09"}}}},
     "--mac-address"),
    ({"NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["a"]}}}},
     "network-scoped alias is supported only for containers in user defined networks"),
    ({"HostConfig": {"VolumeDriver": "flocker"}}, "--volume-driver flocker"),
])
def test_api_values_the_cli_does_not_send_are_refused_too(daemon, body, words):
    before = daemon.container_ids()
    r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], **body})
    assert r.status == 400 and words in r.json()["message"], (r.status, r.json())
    assert daemon.container_ids() == before
