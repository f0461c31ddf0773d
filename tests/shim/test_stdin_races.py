"""Closing a process's stdin from every side at once: `echo hello | docker run -i --rm busybox cat`
sends stdin data, then an eof frame (the client's half-close) while berthd sends CloseIO, and cat
exits as soon as it sees the end, so the eof, the CloseIO, the client's disconnect (once=1), the
exit and the delete arrive in any order. Once, a second close of an already forgotten fd raised
in the shim, its delete then failed half-way and the shim was left behind; these tests drive
every ordering, with jitter, and check that the shim logged no error and still deletes and exits.
"""
from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from shim import errors
from shim.client import ShimClient
from tests.helpers.shim_env import exec_spec, wait_gone

ONCE = "berth-attach:?once=1"
PAYLOAD = b"hello\n"


def _together(*steps) -> None:
    """Run the steps at the same moment, each in a thread, and re-raise the first failure."""
    barrier = threading.Barrier(len(steps))
    failures: list[BaseException] = []

    def run(step):
        barrier.wait()
        try:
            step()
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)
    threads = [threading.Thread(target=run, args=(s,)) for s in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    hung = [steps[i] for i, t in enumerate(threads) if t.is_alive()]
    assert not hung, f"steps still running after 15 s: {hung}"
    if failures:
        raise failures[0]


def _jitter(rng: random.Random):
    return lambda: time.sleep(rng.random() * 0.003)


def _quietly(call):
    """A step whose target may already be gone (closed socket, deleted process)."""
    def step():
        try:
            call()
        except (OSError, errors.NotFound):
            pass
    return step


def _output(att) -> bytes:
    att.sock.settimeout(10)
    return b"".join(d for s, d in att if s == 1)


def _round(env, control: ShimClient, order: str, rng: random.Random, exec_id: str = "") -> None:
    """One attach-with-stdin life of a process, its stdin ended in the given order."""
    c, cid, sleep = env.client, env.id, _jitter(rng)
    args = {"exit-first": ["head", "-c", "3"], "ignore": ["true"],
            "delete-first": ["true"]}.get(order, ["cat"])
    if exec_id:
        c.exec(cid, exec_id, exec_spec(args), stdin=ONCE)
    att = c.attach(cid, exec_id, stdin=True)
    close_io = _quietly(lambda: control.close_io(cid, exec_id))
    eof = _quietly(att.close_stdin)
    if order == "before-start":
        att.write(PAYLOAD)
        _together(eof, close_io)
    c.start(cid, exec_id)
    if order == "eof-closeio":          # what berthd does when the client half-closes
        att.write(PAYLOAD)
        _together(lambda: (sleep(), eof()), lambda: (sleep(), close_io()))
    elif order == "closeio-eof":
        att.write(PAYLOAD)
        close_io()
        eof()
    elif order == "disconnect":         # once=1: the client going away closes stdin
        att.write(PAYLOAD)
        _together(lambda: (sleep(), att.close()), lambda: (sleep(), close_io()))
    elif order == "exit-first":         # head exits after 3 bytes; the rest meets a closed pipe
        att.write(PAYLOAD)
        c.wait(cid, exec_id, timeout=10)
        _together(_quietly(lambda: att.write(PAYLOAD * 2)), eof, close_io)
    elif order == "kill":
        att.write(PAYLOAD)
        kill = _quietly(lambda: control.kill(cid, signal.SIGKILL, exec_id=exec_id))
        _together(lambda: (sleep(), kill()), lambda: (sleep(), eof()),
                  lambda: (sleep(), close_io()))
    elif order == "delete-first":       # the process is deleted while its client still writes
        pass
    status = c.wait(cid, exec_id, timeout=10)[0]
    if order == "delete-first" and exec_id:
        c.delete(cid, exec_id)
        _together(_quietly(lambda: att.write(PAYLOAD)), eof, close_io)
    elif order != "ignore":
        assert status in ((0, 137) if order == "kill" else (0,)), order
    if order in ("eof-closeio", "closeio-eof", "before-start"):
        assert _output(att) == PAYLOAD, order
    elif order == "exit-first":
        assert _output(att) == PAYLOAD[:3]
    att.close()
    if exec_id and order != "delete-first":
        c.delete(cid, exec_id)


def _assert_shim_log_clean(env) -> None:
    log = (env.bundle / "shim.log").read_text()
    assert "Traceback" not in log and "error in the event loop" not in log, log[-3000:]


def _delete_and_gone(env) -> None:
    env.client.delete(env.id)
    assert wait_gone(env.shim_pid), "the shim exits once its container is deleted"
    _assert_shim_log_clean(env)
    env.client.close()
    env.client = None


EXEC_ORDERS = ("eof-closeio", "closeio-eof", "disconnect", "exit-first", "kill", "before-start",
               "delete-first", "ignore")


def test_exec_stdin_closed_in_any_order_while_it_exits(env):
    env.create(["sleep", "100"])
    env.client.start(env.id)
    control = ShimClient(env.socket, timeout=30)
    try:
        for i in range(3 * len(EXEC_ORDERS)):
            order = EXEC_ORDERS[i % len(EXEC_ORDERS)]
            _round(env, control, order, random.Random(i), exec_id=f"x{i}")
    finally:
        control.close()
    env.client.kill(env.id, signal.SIGKILL)
    env.client.wait(env.id, timeout=10)
    _delete_and_gone(env)


@pytest.mark.parametrize("order", ["eof-closeio", "disconnect"])
def test_init_stdin_closed_while_it_exits_then_delete_ends_the_shim(env, order):
    for i in range(3):
        env.create(["cat"], stdin=ONCE)
        control = ShimClient(env.socket, timeout=30)
        try:
            _round(env, control, order, random.Random(i))
        finally:
            control.close()
        _delete_and_gone(env)


def test_close_io_never_overtakes_stdin_sent_before_it(env):
    # CloseIO comes on another connection than the attach stream's data, and epoll gives no
    # order between two sockets that are both readable: the shim takes in what the attach
    # clients already sent before it closes stdin.
    env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    for i in range(12):
        c.exec(env.id, f"c{i}", exec_spec(["cat"]), stdin="berth-attach:")
        att = c.attach(env.id, f"c{i}", stdin=True)
        c.start(env.id, f"c{i}")
        att.write(PAYLOAD)
        c.close_io(env.id, f"c{i}")
        assert c.wait(env.id, f"c{i}", timeout=10)[0] == 0
        assert _output(att) == PAYLOAD, f"round {i}"
        att.close()
        c.delete(env.id, f"c{i}")
