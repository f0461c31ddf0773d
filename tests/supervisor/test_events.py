"""The event exchange: filters, publish/forward, resuming after a sequence number (over gRPC and
on the logic class directly), and the filter syntax as containerd writes it."""
from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from protos.containerd.events import container_pb2, task_pb2 as ev
from protos.containerd.services.events.v1 import events_pb2 as epb, events_pb2_grpc
from supervisor import convert, errors, filters
from supervisor.client import AsyncClient
from supervisor.events import Exchange
from supervisor.store import Store
from tests.helpers.supervisor_env import busybox_spec


def take(sub, n, timeout=10.0):
    out = []
    deadline = time.monotonic() + timeout
    for e in sub:
        out.append(e)
        if len(out) == n:
            return out
        assert time.monotonic() < deadline
    return out


def test_resubscribe_after_seq_loses_nothing(client, new_id):
    c = client
    mine = f"namespace=={c.namespace}"
    sub = c.subscribe(mine)
    ids = [new_id() for _ in range(6)]
    for cid in ids[:3]:
        c.create_container(cid, busybox_spec(["true"]))
    first = take(sub, 3)
    sub.close()
    last = first[-1]["seq"]
    for cid in ids[3:]:                       # while nobody listens
        c.create_container(cid, busybox_spec(["true"]))
    resumed = c.subscribe(mine, after=last)
    c.delete_container(ids[0])                # and live ones after the stored ones
    rest = take(resumed, 4)
    resumed.close()
    assert [e["event"]["id"] for e in first + rest] == ids + [ids[0]]
    assert [e["topic"] for e in rest] == ["/containers/create"] * 3 + ["/containers/delete"]
    seqs = [e["seq"] for e in first + rest]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert resumed.start_seq >= rest[2]["seq"]


def test_filters_over_topic_namespace_and_event_fields(client, new_id):
    c = client
    a, b = new_id(), new_id()
    sub = c.subscribe(f"namespace=={c.namespace},topic==/containers/delete",
                      f'namespace=={c.namespace},event.id=="{b}"')
    c.create_container(a, busybox_spec(["true"]))
    c.create_container(b, busybox_spec(["true"]))
    c.delete_container(a)
    got = take(sub, 2)
    sub.close()
    assert [(e["topic"], e["event"]["id"]) for e in got] == [("/containers/create", b),
                                                            ("/containers/delete", a)]


def test_publish_and_forward(supervisor, client, new_id):
    c = client
    sub = c.subscribe(f"namespace=={c.namespace}")
    c.publish("/custom/thing", container_pb2.ContainerDelete(id="x"))
    ch = grpc.insecure_channel(supervisor.address)
    stub = events_pb2_grpc.EventsStub(ch)
    env = epb.Envelope(timestamp=convert.ns_to_timestamp(1_000_000_000), namespace=c.namespace,
                       topic="/tasks/oom", event=convert.pack(ev.TaskOOM(container_id="y")))
    stub.Forward(epb.ForwardRequest(envelope=env))
    with pytest.raises(grpc.RpcError) as info:
        stub.Publish(epb.PublishRequest(topic="no-slash"), metadata=(("containerd-namespace", "x"),))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    ch.close()
    got = take(sub, 2)
    sub.close()
    assert [(e["topic"], e["event"]) for e in got] == [
        ("/custom/thing", {"id": "x"}), ("/tasks/oom", {"container_id": "y"})]
    assert got[1]["timestamp"] == 1_000_000_000


def test_events_survive_a_restart(private_supervisor):
    sup = private_supervisor()
    c = sup.client("evns")
    c.create_container("keep1", busybox_spec(["true"]))
    seq = c.subscribe().start_seq
    sup.kill9()
    sup.start()
    c = sup.client("evns")
    stored = take(c.subscribe(after=0), seq)
    assert [e["topic"] for e in stored] == ["/containers/create"]
    c.create_container("keep2", busybox_spec(["true"]))
    assert take(c.subscribe(after=seq), 1)[0]["seq"] == seq + 1


def test_async_client_subscribe_and_errors(supervisor, new_id):
    async def main():
        c = AsyncClient(supervisor.address, new_id("ans"))
        try:
            sub = await c.subscribe(f"namespace=={c.namespace}")
            cid = new_id()
            await c.create_container(cid, busybox_spec(["true"]))
            async for e in sub:
                assert (e["topic"], e["event"]["id"]) == ("/containers/create", cid)
                break
            sub.close()
            with pytest.raises(errors.InvalidArgument, match="invalid filter"):
                await c.subscribe("topic=")
            with pytest.raises(errors.NotFound):
                await c.attach("nope")
            await c.delete_container(cid)
        finally:
            await c.close()
    asyncio.run(main())


# --- the exchange and the filter syntax, without a server -------------------------------------

def test_exchange_backlog_then_live_without_a_gap(tmp_path):
    async def main():
        store = Store(tmp_path / "db")
        ex = Exchange(store)
        for i in range(5):
            ex.publish("ns", "/t/x", ev.TaskOOM(container_id=f"c{i}"))
        sub = ex.subscribe(["namespace==ns"], after=2)
        ex.publish("ns", "/t/x", ev.TaskOOM(container_id="live"))
        ex.publish("other", "/t/x", ev.TaskOOM(container_id="filtered"))
        got = []
        async for seq, env in sub:
            got.append((seq, convert.unpack_event(env.event).container_id))
            if len(got) == 4:
                break
        sub.close()
        store.close()
        return got
    assert asyncio.run(main()) == [(3, "c2"), (4, "c3"), (5, "c4"), (6, "live")]


def test_exchange_prunes_to_its_bound(tmp_path):
    store = Store(tmp_path / "db")
    ex = Exchange(store, keep=10)
    for i in range(1500):
        ex.publish("ns", "/t/x", ev.TaskOOM(container_id=str(i)))
    rows = store.events_after(0, 5000)
    assert 10 <= len(rows) <= 510 and rows[-1][0] == 1500
    with pytest.raises(errors.SupervisorError, match="cannot resume after seq 3") as info:
        ex.subscribe(after=3)
    assert info.value.code == grpc.StatusCode.OUT_OF_RANGE
    ex.subscribe(after=rows[0][0] - 1).close()     # from just before the oldest: nothing lost
    store.close()


@pytest.mark.parametrize("expr,fields,expected", [
    ("topic==/tasks/exit", {"topic": "/tasks/exit"}, True),
    ("topic==/tasks/exit", {"topic": "/tasks/start"}, False),
    ('topic=="/tasks/exit"', {"topic": "/tasks/exit"}, True),
    ("topic~=/tasks/", {"topic": "/tasks/oom"}, True),
    ("topic~=|^/containers/|", {"topic": "/tasks/oom"}, False),
    ("topic!=/tasks/oom", {"topic": "/tasks/oom"}, False),
    ("namespace==a,topic==/x", {"namespace": "a", "topic": "/x"}, True),
    ("namespace==a,topic==/x", {"namespace": "b", "topic": "/x"}, False),
    ("labels.app", {"labels": {"app": ""}}, True),
    ('labels."a.b"==c', {"labels": {"a.b": "c"}}, True),
    ("event.exit_status==0", {"event": {"exit_status": 0}}, True),
    ("event.io.terminal==true", {"event": {"io": {"terminal": True}}}, True),
])
def test_filter_syntax(expr, fields, expected):
    assert filters.parse([expr]).match(filters.mapping_adaptor(fields)) is expected


@pytest.mark.parametrize("bad", ["topic=", "==x", 'labels."open', "topic~=(", "a b"])
def test_filter_syntax_errors_name_the_filter(bad):
    with pytest.raises(errors.InvalidArgument, match="invalid filter"):
        filters.parse([bad])


def test_no_filters_match_everything():
    assert filters.parse([]).match(filters.mapping_adaptor({}))
