"""Every `docker run` option berthd is sent, with the docker CLI (issue 9, "Done when" 1): each
one is applied (seen from inside the container), refused with words naming it (exit 125), or
dropped with the warning dockerd gives. None is accepted and dropped in silence. Where Debian's
dockerd is installed, the flags both should treat alike run under it too and must give the
same. engine/host_config.py's HANDLED_FIELDS is the same decision per API field (its unit test
walks body_types)."""
from __future__ import annotations

import glob
import os
import stat
import subprocess

import pytest

from tests.helpers.engine_daemon import DOCKER
from tests.helpers.peer_dockerd import dockerd  # noqa: F401 (a fixture)


def _block_device() -> tuple[str, str]:
    """A whole-disk block device of this host and its 'major:minor'."""
    for name in ("vda", "sda", "nvme0n1", "xvda", "loop0"):
        path = f"/dev/{name}"
        if os.path.exists(path) and stat.S_ISBLK(os.stat(path).st_mode):
            rdev = os.stat(path).st_rdev
            return path, f"{os.major(rdev)}:{os.minor(rdev)}"
    pytest.skip("no block device to throttle")


def _v1() -> bool:
    return not os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _has(pattern: str) -> bool:
    return bool(glob.glob(f"/sys/fs/cgroup/{pattern}"))


DEV, NUMBERS = _block_device() if os.path.exists("/dev") else ("", "")
WEIGHT_DEVICE_WARNING = ("Your kernel does not support Block I/O weight_device or the cgroup is "
                         "not mounted. Weight-device discarded.")
OOM_WARNING = ("OOM killer is disabled for the container, but no memory limit is set, this can "
               "result in the system running out of resources.")

# flag -> (flags, what runs inside, outcome, what is expected); outcome: "applied" (the text
# is in the container's output), "refused" (exit 125, the text in stderr), "warned" (the
# warning in stderr, the container runs), "ignored" (runs, no warning, the text not in the
# output: as dockerd 28), "cli-refused" (the docker CLI refuses it itself, exit 1)
CG = "/sys/fs/cgroup"
SHARED = "/tmp/berth-flags-shared"     # a shared mount (the fixture makes it)
PRIVATE = "/run/berth-flags-private"   # a private one
CASES = {
    "device-read-bps": (["--device-read-bps", f"{DEV}:1mb"],
                        f"cat {CG}/blkio/blkio.throttle.read_bps_device", "applied",
                        f"{NUMBERS} 1048576"),
    "device-write-bps": (["--device-write-bps", f"{DEV}:2mb"],
                         f"cat {CG}/blkio/blkio.throttle.write_bps_device", "applied",
                         f"{NUMBERS} 2097152"),
    "device-read-iops": (["--device-read-iops", f"{DEV}:100"],
                         f"cat {CG}/blkio/blkio.throttle.read_iops_device", "applied",
                         f"{NUMBERS} 100"),
    "device-write-iops": (["--device-write-iops", f"{DEV}:200"],
                          f"cat {CG}/blkio/blkio.throttle.write_iops_device", "applied",
                          f"{NUMBERS} 200"),
    "device-cgroup-rule": (["--device-cgroup-rule", "c 42:* rmw"],
                           f"cat {CG}/devices/devices.list", "applied", "c 42:* rwm"),
    "device-cgroup-rule-bad": (["--device-cgroup-rule", "c 42 rmw"], "true", "refused",
                               "invalid device cgroup"),
    "memory-swappiness": (["--memory-swappiness", "13"], f"cat {CG}/memory/memory.swappiness",
                          "applied", "13"),
    "oom-kill-disable": (["--oom-kill-disable", "-m", "64m"],
                         f"cat {CG}/memory/memory.oom_control", "applied",
                         "oom_kill_disable 1"),
    "oom-kill-disable-no-limit": (["--oom-kill-disable"], "true", "warned", OOM_WARNING),
    "cpu-rt-runtime-over-period": (["--cpu-rt-period", "1000", "--cpu-rt-runtime", "2000"],
                                   "true", "refused",
                                   "cpu real-time runtime cannot be higher than cpu real-time "
                                   "period"),
    # given to the runtime, which writes it; the kernel refuses a budget the parent cgroup
    # does not have, as under dockerd without its daemon option --cpu-rt-runtime
    "cpu-rt-runtime": (["--cpu-rt-runtime", "10000"], f"cat {CG}/cpu/cpu.rt_runtime_us",
                       "refused", "cpu.rt_runtime_us: invalid argument"),
    # API 1.42 removed KernelMemory: dockerd 28 ignores it without a word (its router zeroes
    # it), and so does berthd (the field is not in the API it serves): not limited
    "kernel-memory": (["--kernel-memory", "64m"], f"cat {CG}/memory/memory.kmem.limit_in_bytes",
                      "ignored", "67108864"),
    # Windows-only options: the docker CLI itself refuses them against a Linux daemon (exit 1)
    "cpu-count": (["--cpu-count", "1"], "true", "cli-refused", "only supported on a Docker "
                  "daemon running on windows"),
    "cpu-percent": (["--cpu-percent", "50"], "true", "cli-refused", "only supported on a "
                    "Docker daemon running on windows"),
    "io-maxbandwidth": (["--io-maxbandwidth", "1m"], "true", "cli-refused", "only supported "
                        "on a Docker daemon running on windows"),
    "bind-rshared": (["-v", f"{SHARED}:/x:rshared"], "grep ' /x ' /proc/self/mountinfo",
                     "applied", "shared:"),
    "bind-rslave": (["-v", f"{SHARED}:/x:rslave"], "grep ' /x ' /proc/self/mountinfo",
                    "applied", "master:"),
    "bind-rshared-private-source": (["-v", f"{PRIVATE}:/x:rshared"], "true", "refused",
                                    "is not a shared mount"),
    "bind-ro-z": (["-v", "/tmp/berth-flags:/x:ro,z"], "touch /x/f 2>&1; true", "applied",
                  "Read-only file system"),
    "bind-bad-mode": (["-v", "/tmp/berth-flags:/x:bogus"], "true", "refused",
                      "invalid mode: bogus"),
    "link": (["--link", "other:alias"], "true", "refused", "--link"),
    "volumes-from": (["--volumes-from", "other"], "true", "refused", "--volumes-from"),
    "publish-all": (["--expose", "80", "-P"], "true", "refused", "-P"),
    "anonymous-volume": (["-v", "/data"], "true", "refused", "-v /data"),
    "named-volume": (["-v", "named:/data"], "true", "refused", "named volumes"),
    "volume-driver": (["--volume-driver", "local"], "true", "refused", "--volume-driver"),
    "dns": (["--dns", "192.0.2.1"], "true", "refused", "--dns"),
    "dns-search": (["--dns-search", "example.org"], "true", "refused", "--dns-search"),
    "dns-option": (["--dns-option", "ndots:2"], "true", "refused", "--dns-option"),
    "add-host": (["--add-host", "h:192.0.2.1"], "true", "refused", "--add-host"),
    "userns-host": (["--userns", "host"], "cat /proc/self/uid_map", "applied",
                    "0          0 4294967295"),
    "gpus": (["--gpus", "all"], "true", "refused", "--gpus"),
    "network-unknown": (["--network", "mynet"], "true", "refused", "network mynet not found"),
    "network-container": (["--network", "container:other"], "true", "refused",
                          "--network container:other"),
    "ip": (["--ip", "192.0.2.5"], "true", "refused", "--ip"),
    "mac-address": (["--mac-address", "02:42:ac:11:00:02"], "true", "refused",
                    "--mac-address"),
    "storage-opt": (["--storage-opt", "size=1G"], "true", "refused", "--storage-opt"),
    "isolation": (["--isolation", "hyperv"], "true", "refused", "invalid isolation"),
    "pid-container": (["--pid", "container:other"], "true", "refused", "--pid"),
    "ipc-container": (["--ipc", "container:other"], "true", "refused", "--ipc"),
    "log-driver": (["--log-driver", "syslog"], "true", "refused", "syslog"),
    "runtime-unknown": (["--runtime", "nope"], "true", "refused", "unknown or invalid runtime"),
}
if not (_has("blkio/blkio.weight_device") or _has("blkio/blkio.bfq.weight_device")) and _v1():
    CASES["blkio-weight-device"] = (["--blkio-weight-device", f"{DEV}:300"], "true", "warned",
                                    WEIGHT_DEVICE_WARNING)
else:
    CASES["blkio-weight-device"] = (["--blkio-weight-device", f"{DEV}:300"],
                                    f"cat {CG}/blkio/blkio.bfq.weight_device "
                                    f"{CG}/blkio/blkio.weight_device 2>/dev/null", "applied",
                                    f"{NUMBERS} 300")

# what dockerd does alike (berth refuses what needs networks or volumes; dockerd applies it)
SAME_AS_DOCKERD = ("device-read-bps", "device-write-bps", "device-read-iops",
                   "device-write-iops", "device-cgroup-rule", "device-cgroup-rule-bad",
                   "memory-swappiness", "oom-kill-disable", "oom-kill-disable-no-limit",
                   "cpu-rt-runtime-over-period", "bind-rshared", "bind-rslave",
                   "bind-rshared-private-source", "bind-ro-z", "bind-bad-mode",
                   "blkio-weight-device", "isolation", "runtime-unknown", "cpu-rt-runtime", "cpu-count",
                   "cpu-percent", "io-maxbandwidth", "userns-host")


@pytest.fixture(scope="module", autouse=True)
def mounts():
    """SHARED a shared bind mount, PRIVATE a private one: rshared and rslave binds need the
    first, dockerd refuses them from the second."""
    import subprocess
    os.makedirs("/tmp/berth-flags", exist_ok=True)
    made = []
    for path, kind in ((SHARED, "--make-shared"), (PRIVATE, "--make-private")):
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "--bind", path, path], check=True)
        made.append(path)
        subprocess.run(["mount", kind, path], check=True)
    yield
    for path in made:
        subprocess.run(["umount", "-l", path], check=False)


def _outcome(docker, flags: list[str], inside: str):
    return docker("run", "--rm", *flags, "busybox", "sh", "-c", inside)


# dockerd 20.10 (Debian's) words these refusals differently from dockerd 28, whose words
# berthd gives; both refuse
DOCKERD_20_WORDS = {"isolation": "Invalid isolation", "runtime-unknown": "Unknown runtime"}


def _check(p, outcome: str, expected: str) -> None:
    out, err = p.stdout.decode(), p.stderr.decode()
    if outcome == "refused":
        assert p.returncode == 125 and expected in err, (p.returncode, out, err)
    elif outcome == "cli-refused":
        assert p.returncode == 1 and expected in err, (p.returncode, out, err)
    elif outcome == "ignored":
        assert p.returncode == 0 and expected not in out and not err, (p.returncode, out, err)
    elif outcome == "warned":
        assert p.returncode == 0 and expected in err, (p.returncode, out, err)
    else:
        assert p.returncode == 0 and expected in out, (p.returncode, out, err)


def _cli_sends_ip_on_the_default_network() -> bool:
    """The docker CLI 20.10 drops --ip itself when no network is named; 28 sends it."""
    out = subprocess.run([DOCKER, "version", "--format", "{{.Client.Version}}"],
                         capture_output=True, text=True).stdout.strip()
    return not out.startswith(("19.", "20."))


@pytest.mark.parametrize("name", sorted(CASES))
def test_flag(daemon, name):
    if not _v1() and CASES[name][1].startswith("cat /sys/fs/cgroup/"):
        pytest.skip("the check reads cgroup v1 files")
    if name == "ip" and not _cli_sends_ip_on_the_default_network():
        pytest.skip("this docker CLI drops --ip itself without a network: berthd never sees it")
    flags, inside, outcome, expected = CASES[name]
    before = daemon.container_ids()
    _check(_outcome(daemon.docker, flags, inside), outcome, expected)
    if outcome == "refused":
        assert daemon.container_ids() == before      # refused before a record exists


def test_refusals_name_the_flag_and_field(daemon):
    p = daemon.docker("run", "--rm", "--link", "other:alias", "busybox", "true")
    assert b"berth cannot apply --link yet (HostConfig.Links): container links need the " \
           b"networks berth does not have" in p.stderr, p.stderr


@pytest.mark.parametrize("name", SAME_AS_DOCKERD)
def test_same_as_debians_dockerd(daemon, dockerd, name):  # noqa: F811 (the fixture)
    flags, inside, outcome, expected = CASES[name]
    if not _v1() and inside.startswith("cat /sys/fs/cgroup/"):
        pytest.skip("the check reads cgroup v1 files")
    _check(_outcome(dockerd.docker, flags, inside), outcome,
           DOCKERD_20_WORDS.get(name, expected))


@pytest.mark.parametrize("body, words", [
    ({"HostConfig": {"UsernsMode": "private"}}, "--userns private"),
    ({"HostConfig": {"Cgroup": "container:other"}}, "HostConfig.Cgroup"),
    ({"HostConfig": {"DnsOptions": ["ndots:2"]}}, "--dns-option"),
    ({"NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": ["a"]}}}},
     "--network-alias"),
    ({"Volumes": {"/data": {}}}, "Config.Volumes"),
])
def test_api_values_the_cli_does_not_send_are_refused_too(daemon, body, words):
    before = daemon.container_ids()
    r = daemon.api("POST", "/containers/create", {"Image": "busybox", "Cmd": ["true"], **body})
    assert r.status == 400 and words in r.json()["message"], (r.status, r.json())
    assert daemon.container_ids() == before
