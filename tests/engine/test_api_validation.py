"""What berthd refuses before acting, in dockerd's words: request bodies whose fields have the
wrong JSON type (checked against the Go types dockerd declares), values dockerd refuses
(limits out of range, CPUs and memory nodes the host has not), query numbers that are not
numbers, and bodies too large to keep. Each refusal is a 4xx naming the field, leaves no
container behind, and leaves berthd serving."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from engine.api.http import MAX_JSON_BODY
from tests.helpers.engine_daemon import Response, _UnixHTTP

NCPU = len(os.sched_getaffinity(0))
CGROUP_V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
BB = {"Image": "busybox", "Cmd": ["true"]}


def raw(daemon, method: str, path: str, data: bytes | None, headers: dict | None = None,
        *, chunked: bool = False) -> Response:
    """A request with exactly these bytes as its body (daemon.api sends JSON it encodes)."""
    conn = _UnixHTTP(str(daemon.sock), 60)
    try:
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if chunked:
            conn.putrequest(method, path)
            for key, value in {**hdrs, "Transfer-Encoding": "chunked"}.items():
                conn.putheader(key, value)
            conn.endheaders()
            step = 1 << 20
            try:
                for i in range(0, len(data), step):
                    piece = data[i:i + step]
                    conn.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass        # refused before the end: the answer is still there to read
        else:
            conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return Response(resp.status, dict(resp.getheaders()), resp.read())
    finally:
        conn.close()


def refused(daemon, method: str, path: str, body, status: int = 400) -> str:
    """The message of a refusal; also that nothing was made and berthd still answers."""
    before = daemon.container_ids()
    r = daemon.api(method, path, body)
    assert r.status == status, r
    assert daemon.container_ids() == before
    assert daemon.api("GET", "/_ping").status == 200
    return r.json()["message"]


def cannot(what: str, where: str, go: str) -> str:
    return f"invalid JSON: json: cannot unmarshal {what} into Go struct field {where} of type {go}"


@pytest.mark.parametrize("body,message", [
    ([], "invalid JSON: json: cannot unmarshal array into Go value of type "
         "container.CreateRequest"),
    ("busybox", "invalid JSON: json: cannot unmarshal string into Go value of type "
                "container.CreateRequest"),
    ({"Image": ["busybox"]}, cannot("array", "CreateRequest.Image", "string")),
    ({**BB, "User": ["root"]}, cannot("array", "CreateRequest.User", "string")),
    ({**BB, "Cmd": 5}, cannot("number", "CreateRequest.Cmd", "string")),
    ({**BB, "Entrypoint": {"a": 1}}, cannot("object", "CreateRequest.Entrypoint", "string")),
    ({**BB, "Env": "A=1"}, cannot("string", "CreateRequest.Env", "[]string")),
    ({**BB, "Env": ["A=1", 2]}, cannot("number", "CreateRequest.Env", "string")),
    ({**BB, "Labels": {"a": 1}}, cannot("number", "CreateRequest.Labels", "string")),
    ({**BB, "Labels": ["a=1"]}, cannot("array", "CreateRequest.Labels", "map[string]string")),
    ({**BB, "Tty": "yes"}, cannot("string", "CreateRequest.Tty", "bool")),
    ({**BB, "StopTimeout": 1.5}, cannot("number 1.5", "CreateRequest.StopTimeout", "int")),
    ({**BB, "Healthcheck": {"Interval": "1s"}},
     cannot("string", "HealthcheckConfig.Healthcheck.Interval", "time.Duration")),
    ({**BB, "HostConfig": []},
     cannot("array", "CreateRequest.HostConfig", "container.HostConfig")),
    ({**BB, "HostConfig": {"Memory": "lots"}},
     cannot("string", "HostConfig.HostConfig.Memory", "int64")),
    ({**BB, "HostConfig": {"Memory": 1e30}},
     cannot("number 1e+30", "HostConfig.HostConfig.Memory", "int64")),
    ({**BB, "HostConfig": {"Memory": True}},
     cannot("bool", "HostConfig.HostConfig.Memory", "int64")),
    ({**BB, "HostConfig": {"BlkioWeight": 70000}},
     cannot("number 70000", "HostConfig.HostConfig.BlkioWeight", "uint16")),
    ({**BB, "HostConfig": {"Binds": "/tmp:/tmp"}},
     cannot("string", "HostConfig.HostConfig.Binds", "[]string")),
    ({**BB, "HostConfig": {"RestartPolicy": {"Name": 1}}},
     cannot("number", "RestartPolicy.HostConfig.RestartPolicy.Name",
            "container.RestartPolicyMode")),
    ({**BB, "HostConfig": {"Devices": [{"PathOnHost": 1}]}},
     cannot("number", "DeviceMapping.HostConfig.Devices.PathOnHost", "string")),
    ({**BB, "HostConfig": {"Ulimits": [{"Name": "nofile", "Soft": "x"}]}},
     cannot("string", "Ulimit.HostConfig.Ulimits.Soft", "int64")),
    ({**BB, "HostConfig": {"LogConfig": {"Config": {"max-size": 10}}}},
     cannot("number", "LogConfig.HostConfig.LogConfig.Config", "string")),
    ({**BB, "HostConfig": {"Mounts": [{"Type": "tmpfs", "TmpfsOptions": {"Mode": -1}}]}},
     cannot("number -1", "TmpfsOptions.HostConfig.Mounts.TmpfsOptions.Mode", "fs.FileMode")),
    ({**BB, "HostConfig": {"ConsoleSize": "80x24"}},
     cannot("string", "HostConfig.HostConfig.ConsoleSize", "[2]uint")),
    ({**BB, "NetworkingConfig": {"EndpointsConfig": {"bridge": {"Aliases": "a"}}}},
     cannot("string", "EndpointSettings.NetworkingConfig.EndpointsConfig.Aliases", "[]string")),
])
def test_create_body_of_the_wrong_types_is_400_naming_the_field(daemon, body, message):
    assert refused(daemon, "POST", "/containers/create", body) == message


@pytest.mark.parametrize("host_config,message", [
    ({"Memory": -100}, "Minimum memory limit allowed is 6MB"),
    ({"Memory": 1024}, "Minimum memory limit allowed is 6MB"),
    ({"MemorySwap": 64 << 20},
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ({"Memory": 64 << 20, "MemorySwap": 32 << 20},
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ({"MemoryReservation": 1024}, "Minimum memory reservation allowed is 6MB"),
    ({"Memory": 16 << 20, "MemoryReservation": 32 << 20},
     "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ({"NanoCpus": 100000 * 10**9},
     f"range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available"),
    ({"NanoCpus": -1},
     f"range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available"),
    ({"NanoCpus": 10**9, "CpuPeriod": 100000},
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ({"NanoCpus": 10**9, "CpuQuota": 50000},
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ({"CpuPeriod": 10}, "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s "
                        "(i.e. 1000000)"),
    ({"CpuQuota": 10}, "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ({"CpuShares": -1}, "invalid CPU shares (-1): value must be a positive integer"),
    ({"CpusetCpus": "abc"}, "Invalid value abc for cpuset cpus: invalid format: abc"),
    ({"CpusetCpus": "1-9223372036854775807"},
     "Invalid value 1-9223372036854775807 for cpuset cpus: value of out range, maximum is 8192"),
    ({"IOMaximumBandwidth": 1},
     "invalid option: QoS maximum bandwidth configuration is not supported on linux"),
    ({"ShmSize": -1}, "SHM size can not be less than 0"),
    ({"OomScoreAdj": 5000}, "Invalid value 5000, range for oom score adj is [-1000, 1000]"),
    ({"Isolation": "hyperv"}, "invalid isolation (hyperv): linux only supports 'default'"),
    ({"CgroupnsMode": "bogus"}, "invalid cgroup namespace mode: bogus"),
    ({"Annotations": {"": "x"}},
     "invalid Annotations: the empty string is not permitted as an annotation key"),
    ({"LogConfig": {"Type": "json-file", "Config": {"max-size": "lots"}}},
     "invalid size: 'lots'"),
    ({"LogConfig": {"Type": "json-file", "Config": {"max-size": "10x"}}},
     "invalid suffix: 'x'"),
])
def test_host_config_values_dockerd_refuses(daemon, host_config, message):
    assert refused(daemon, "POST", "/containers/create",
                   {**BB, "HostConfig": host_config}) == message


def test_cpus_and_memory_nodes_the_host_has_not_are_refused_at_create(daemon):
    message = refused(daemon, "POST", "/containers/create",
                      {**BB, "HostConfig": {"CpusetCpus": "0-99"}})
    assert message.startswith("Requested CPUs are not available - requested 0-99, available: ")
    message = refused(daemon, "POST", "/containers/create",
                      {**BB, "HostConfig": {"CpusetMems": "7"}})
    assert message.startswith("Requested memory nodes are not available - requested 7, "
                              "available: ")
    r = daemon.api("POST", "/containers/create", {**BB, "HostConfig": {"CpusetCpus": "0"}})
    assert r.status == 201, r


@pytest.mark.skipif(CGROUP_V2, reason="cgroup v2 drops swappiness with a warning")
def test_swappiness_out_of_range_is_refused(daemon):
    assert refused(daemon, "POST", "/containers/create",
                   {**BB, "HostConfig": {"MemorySwappiness": 200}}) == (
        "Invalid value: 200, valid memory swappiness range is 0-100")
    r = daemon.api("POST", "/containers/create", {**BB, "HostConfig": {"MemorySwappiness": -1}})
    assert r.status == 201, r       # the CLI's "unset"
    assert daemon.api("GET", f"/containers/{r.json()['Id']}/json").json()[
        "HostConfig"]["MemorySwappiness"] is None


@pytest.mark.parametrize("config,message", [
    ({"WorkingDir": "rel/dir"},
     "the working directory 'rel/dir' is invalid, it needs to be an absolute path"),
    ({"Env": ["=x"]}, "invalid environment variable: =x"),
    ({"Hostname": "h" * 65}, f'hostname "{"h" * 65}" is too long (maximum 64 bytes)'),
    ({"StopSignal": "SIGNOPE"}, "invalid signal: SIGNOPE"),
    ({"Healthcheck": {"Test": ["NONE"], "Interval": 10}},
     "Interval in Healthcheck cannot be less than 1ms"),
    ({"Healthcheck": {"Test": ["NONE"], "Retries": -1}},
     "Retries in Healthcheck cannot be negative"),
    ({"Hostname": "h2", "HostConfig": {"UTSMode": "host"}},
     "conflicting options: hostname and the UTS mode"),
])
def test_config_values_dockerd_refuses(daemon, config, message):
    assert refused(daemon, "POST", "/containers/create", {**BB, **config}) == message


def test_a_string_cmd_is_one_argument_and_a_working_dir_is_cleaned(daemon):
    r = daemon.api("POST", "/containers/create",
                   {"Image": "busybox", "Cmd": "true", "WorkingDir": "/a//b/../c/"})
    assert r.status == 201, r
    c = daemon.api("GET", f"/containers/{r.json()['Id']}/json").json()
    assert c["Path"] == "true" and c["Args"] == []
    assert c["Config"]["WorkingDir"] == "/a/c"


@pytest.mark.parametrize("body,message", [
    ([], "invalid JSON: json: cannot unmarshal array into Go value of type "
         "container.ExecOptions"),
    ({"Cmd": "ls"}, cannot("string", "ExecOptions.Cmd", "[]string")),
    ({"Cmd": ["ls", 1]}, cannot("number", "ExecOptions.Cmd", "string")),
    ({"Cmd": ["ls"], "Env": [1]}, cannot("number", "ExecOptions.Env", "string")),
    ({"Cmd": ["ls"], "User": 0}, cannot("number", "ExecOptions.User", "string")),
    ({"Cmd": ["ls"], "ConsoleSize": [-1, 80]},
     cannot("number -1", "ExecOptions.ConsoleSize", "uint")),
])
def test_exec_create_body_of_the_wrong_types_is_400(daemon, body, message):
    # dockerd decodes the body before it looks for the container
    assert refused(daemon, "POST", "/containers/nosuch/exec", body) == message


@pytest.mark.parametrize("body,message", [
    ([], "invalid JSON: json: cannot unmarshal array into Go value of type "
         "container.ExecStartOptions"),
    ("x", "invalid JSON: json: cannot unmarshal string into Go value of type "
          "container.ExecStartOptions"),
    ({"Detach": "yes"}, cannot("string", "ExecStartOptions.Detach", "bool")),
])
def test_exec_start_body_of_the_wrong_types_is_400(daemon, body, message):
    assert refused(daemon, "POST", "/exec/nosuch/start", body) == message


@pytest.mark.parametrize("body,message", [
    ([], "invalid JSON: json: cannot unmarshal array into Go value of type "
         "container.UpdateConfig"),
    ({"Memory": "lots"}, cannot("string", "UpdateConfig.Memory", "int64")),
    ({"RestartPolicy": "always"},
     cannot("string", "UpdateConfig.RestartPolicy", "container.RestartPolicy")),
    ({"Memory": -100}, "Minimum memory limit allowed is 6MB"),
    ({"NanoCpus": 100000 * 10**9},
     f"range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs available"),
    ({"CpusetCpus": "0-99"}, None),
])
def test_update_body_is_checked_before_use(daemon, body, message):
    r = daemon.api("POST", "/containers/create", {**BB, "HostConfig": {"Memory": 64 << 20}})
    cid = r.json()["Id"]
    got = refused(daemon, "POST", f"/containers/{cid}/update", body)
    if message is None:
        assert got.startswith("Requested CPUs are not available - requested 0-99")
    else:
        assert got == message
    assert daemon.api("GET", f"/containers/{cid}/json").json()["HostConfig"]["Memory"] == 64 << 20


@pytest.mark.parametrize("path,message", [
    ("/containers/nosuch/resize?h=-1&w=80", 'invalid resize height "-1": value out of range'),
    ("/containers/nosuch/resize?h=abc&w=80", 'invalid resize height "abc": invalid syntax'),
    ("/containers/nosuch/resize?h=24", 'invalid resize width "": invalid syntax'),
    ("/exec/nosuch/resize?h=24&w=99999999999",
     'invalid resize width "99999999999": value out of range'),
    ("/containers/nosuch/stop?t=soon", "invalid value for t: 'soon': not an integer"),
    ("/containers/nosuch/stop?t=99999999999999999999",
     "invalid value for t: '99999999999999999999': value out of range"),
])
def test_query_numbers_are_checked(daemon, path, message):
    assert refused(daemon, "POST", path, None) == message


def test_bodies_that_are_not_json_are_400(daemon):
    for data, message in ((b"{", "invalid JSON: "), (b"{} {}", "unexpected content after JSON"),
                          (b"\xff\xfe", "invalid JSON: not UTF-8")):
        r = raw(daemon, "POST", "/containers/create", data)
        assert r.status == 400 and r.json()["message"].startswith(message), r
    assert daemon.api("GET", "/_ping").status == 200


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_too_large_to_keep_is_413(daemon, chunked):
    before = daemon.container_ids()
    body = json.dumps({**BB, "Labels": {"big": "x" * (MAX_JSON_BODY + 1)}}).encode()
    r = raw(daemon, "POST", "/containers/create", body, chunked=chunked)
    assert r.status == 413, r
    assert "request body too large" in r.json()["message"]
    assert str(MAX_JSON_BODY) in r.json()["message"]
    assert daemon.container_ids() == before
    assert daemon.api("GET", "/_ping").status == 200


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_berthd_memory_stays_bounded_under_large_labels(daemon):
    """The issue's loop: containers with large labels made and removed; every event keeps the
    labels, so only the event history's byte budget keeps berthd from growing with each."""
    label = "x" * (MAX_JSON_BODY - 4096)
    before = daemon.container_ids()
    daemon.api("GET", "/_ping")
    start = _rss(daemon.pid())
    for i in range(30):
        r = daemon.api("POST", "/containers/create", {**BB, "Labels": {"big": label, "i": str(i)}})
        assert r.status == 201, r
        assert daemon.api("DELETE", f"/containers/{r.json()['Id']}").status == 204
    for _ in range(3):          # and what is refused is not kept either
        big = json.dumps({**BB, "Labels": {"big": "y" * (100 << 20)}}).encode()
        assert raw(daemon, "POST", "/containers/create", big).status == 413
    grown = _rss(daemon.pid()) - start
    # 30 cycles would keep 60 events of 4 MB each without a bound (240 MB); the history keeps
    # 16 MB of them (measured: about 30 MB of growth in all)
    assert grown < 64 << 20, f"berthd grew by {grown >> 20} MB"
    assert daemon.container_ids() == before
    conn = _UnixHTTP(str(daemon.sock), 30)
    try:
        conn.request("GET", f"/events?since=1&until={int(time.time())}")
        replay = conn.getresponse().read()
    finally:
        conn.close()
    assert len(replay) < 24 << 20


def test_docker_run_refusals_as_dockerd(daemon):
    before = daemon.container_ids()
    r = daemon.docker("run", "--rm", "--cpus", "100000", "busybox", "true")
    assert r.returncode == 125, r
    assert (f"range of CPUs is from 0.01 to {NCPU}.00, as there are only {NCPU} CPUs "
            f"available") in r.stderr.decode()
    r = daemon.docker("run", "--rm", "--cpuset-cpus", "0-99", "busybox", "true")
    assert r.returncode == 125, r
    assert "Requested CPUs are not available - requested 0-99, available: " in r.stderr.decode()
    r = daemon.docker("run", "--rm", "-m", "1k", "busybox", "true")
    assert r.returncode == 125 and "Minimum memory limit allowed is 6MB" in r.stderr.decode()
    assert daemon.container_ids() == before


def test_the_hostname_is_in_etc_hosts_as_dockerd_lists_it(daemon):
    """dockerd lists the container's names against its address on the default bridge. With
    --network none there is none, and dockerd lists no name."""
    r = daemon.docker("run", "--rm", "-h", "h2", "busybox", "sh", "-c",
                      "cat /etc/hosts; hostname -i")
    lines = r.stdout.decode().splitlines()
    assert r.returncode == 0, r
    ip = lines[-1].strip()
    assert ip != "127.0.0.1" and f"{ip}\th2" in lines, lines
    r = daemon.docker("run", "--rm", "-h", "h2", "--domainname", "example.com", "busybox",
                      "sh", "-c", "cat /etc/hosts; hostname -i")
    lines = r.stdout.decode().splitlines()
    assert f"{lines[-1].strip()}\th2.example.com h2" in lines, r
    r = daemon.docker("run", "--rm", "--network", "none", "-h", "h2", "busybox",
                      "cat", "/etc/hosts")
    assert r.returncode == 0 and "h2" not in r.stdout.decode(), r
