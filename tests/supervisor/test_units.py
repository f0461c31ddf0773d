"""Pure logic without a supervisor: metrics conversion, message dicts, ids, runtime choice,
the store's journal mode."""
from __future__ import annotations

import os

import pytest

from protos.berth.shim.v1 import shim_pb2
from protos.containerd.events import task_pb2 as ev
from supervisor import convert, errors, identifiers, runtimes
from supervisor.metrics import STATS_FIELDS, metrics_to_stats, stats_to_metrics
from supervisor.store import Store


def _stats(version: int) -> shim_pb2.StatsResponse:
    s = shim_pb2.StatsResponse(
        timestamp=5, cpu_usage_ns=3_000_000, cpu_user_ns=2_000_000, cpu_system_ns=1_000_000,
        cpu_percpu_ns=[1_000_000, 2_000_000] if version == 1 else [], cpu_throttled_periods=4,
        cpu_throttled_ns=7_000, memory_usage=100, memory_limit=200,
        memory_max_usage=150 if version == 1 else 0, pids_current=3, pids_limit=10,
        blkio_read_bytes=11, blkio_write_bytes=12, oom_kills=1, cgroup_version=version,
        cpu_periods=9, blkio_devices=[shim_pb2.BlkioEntry(major=8, minor=0, op="Read", value=11),
                                      shim_pb2.BlkioEntry(major=8, minor=0, op="Write",
                                                          value=12)])
    s.memory_stat.update({"cache": 5, "pgfault": 6} if version == 1 else {"anon": 5, "file": 6})
    return s


@pytest.mark.parametrize("version", [1, 2])
def test_stats_survive_the_trip_through_cgroup_metrics(version):
    stats = _stats(version)
    metrics = stats_to_metrics(stats)
    assert metrics.DESCRIPTOR.full_name == f"io.containerd.cgroups.v{version}.Metrics"
    back = metrics_to_stats(metrics, 5)
    assert set(back) == set(STATS_FIELDS)
    for name in STATS_FIELDS:
        if name == "memory_stat":
            assert {k: v for k, v in back[name].items() if v} == dict(stats.memory_stat)
        elif name == "blkio_devices":
            assert back[name] == [{"major": e.major, "minor": e.minor, "op": e.op,
                                   "value": e.value} for e in stats.blkio_devices]
        else:
            assert back[name] == (list(getattr(stats, name)) if name == "cpu_percpu_ns"
                                  else getattr(stats, name)), name


def test_event_dicts_have_every_field_and_nanosecond_times():
    msg = ev.TaskExit(container_id="c", id="c", pid=7, exit_status=0,
                      exited_at=convert.ns_to_timestamp(1_500_000_000_123))
    assert convert.to_dict(msg) == {"container_id": "c", "id": "c", "pid": 7, "exit_status": 0,
                                    "exited_at": 1_500_000_000_123}
    create = convert.to_dict(ev.TaskCreate(container_id="c", io=ev.TaskIO(stdout="/x")))
    assert create["io"]["stdout"] == "/x" and create["rootfs"] == []
    assert convert.unpack_event(convert.pack(msg)) == msg


@pytest.mark.parametrize("value", ["a", "A1", "a.b_c-d", "x" * 76, "0"])
def test_valid_identifiers(value):
    assert identifiers.validate(value) == value


@pytest.mark.parametrize("value", ["", ".a", "a.", "a..b", "a/b", "a b", "é", "x" * 77])
def test_invalid_identifiers(value):
    with pytest.raises(errors.InvalidArgument):
        identifiers.validate(value)


def test_runtime_choice():
    runc = runtimes.resolve("io.containerd.runc.v2", None, "runc", "c")
    assert runc.name == "runc" and os.path.isabs(runc.binary)
    assert runtimes.resolve("crun", None, "runc", "c").name == "crun"
    assert runtimes.resolve("io.containerd.runc.v2", "crun", "runc", "c").name == "crun"
    assert runtimes.resolve(runc.binary, None, "lowrt", "c").binary == runc.binary
    with pytest.raises(errors.InvalidArgument, match="unknown runtime"):
        runtimes.resolve("io.containerd.kata.v2", None, "runc", "c")
    with pytest.raises(errors.InvalidArgument, match="must be set"):
        runtimes.resolve("", None, "runc", "c")
    with pytest.raises(errors.InvalidArgument, match="not found"):
        runtimes.resolve("runc", "no-such-runtime-binary", "runc", "c")


def test_store_is_in_wal_mode_and_keeps_a_uuid(tmp_path):
    store = Store(tmp_path / "db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    uuid = store.server_uuid()
    store.close()
    assert Store(tmp_path / "db").server_uuid() == uuid
