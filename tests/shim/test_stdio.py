"""Every stdio mode of shim.proto against real containers: FIFOs (as ctr makes them), file://,
binary:// (containerd's logging binary protocol), berth-jsonfile:// (docker's json-file log),
berth-attach: stdin with attach clients, and TTYs through the runtime's console socket."""
from __future__ import annotations

import json
import os
import re
import select
import time

import pytest

from shim import errors
from shim.client import pb
from tests.helpers.shim_env import exec_spec

RFC3339_NANO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def _read_until(fd: int, predicate, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while not predicate(data) and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    return data


def test_fifo_stdio_as_ctr_makes_it(env):
    paths = {name: str(env.tmp / name) for name in ("in", "out", "err")}
    for p in paths.values():
        os.mkfifo(p)
    # ctr opens the output FIFOs for reading before it creates the task.
    out_r = os.open(paths["out"], os.O_RDONLY | os.O_NONBLOCK)
    err_r = os.open(paths["err"], os.O_RDONLY | os.O_NONBLOCK)
    try:
        env.create(["sh", "-c", "read line; echo got:$line; echo bye >&2"],
                   stdin=paths["in"], stdout=paths["out"], stderr=paths["err"])
        c = env.client
        c.start(env.id)
        stdin_w = os.open(paths["in"], os.O_WRONLY)
        os.write(stdin_w, b"hello\n")
        os.close(stdin_w)
        assert c.wait(env.id, timeout=10)[0] == 0
        assert _read_until(out_r, lambda d: d.endswith(b"\n")) == b"got:hello\n"
        assert _read_until(err_r, lambda d: d.endswith(b"\n")) == b"bye\n"
    finally:
        os.close(out_r)
        os.close(err_r)


def test_closing_the_stdin_fifo_closes_the_process_stdin(env):
    fifo_in, fifo_out = str(env.tmp / "in"), str(env.tmp / "out")
    os.mkfifo(fifo_in)
    os.mkfifo(fifo_out)
    out_r = os.open(fifo_out, os.O_RDONLY | os.O_NONBLOCK)
    try:
        env.create(["sh", "-c", "wc -c"], stdin=fifo_in, stdout=fifo_out)
        env.client.start(env.id)
        w = os.open(fifo_in, os.O_WRONLY)
        os.write(w, b"12345")
        os.close(w)   # EOF for `wc`, which then exits
        assert env.client.wait(env.id, timeout=10)[0] == 0
        assert _read_until(out_r, lambda d: d.endswith(b"\n")).strip() == b"5"
    finally:
        os.close(out_r)


def test_file_uri_gets_both_streams(env):
    path = env.tmp / "logs" / "out.txt"
    uri = f"file://{path}"
    env.create(["sh", "-c", "echo one; echo two >&2"], stdout=uri, stderr=uri)
    env.client.start(env.id)
    env.client.wait(env.id, timeout=10)
    assert sorted(path.read_text().splitlines()) == ["one", "two"]


def test_jsonfile_lines_timestamps_and_16k_split(env):
    log = env.tmp / "c-json.log"
    uri = f"berth-jsonfile://{log}"
    # 20000 bytes without a newline, then a newline; a last line without one; <&> escaped.
    script = ("head -c 20000 /dev/zero | tr '\\0' a; echo; printf '<&>\\n' >&2; "
              "printf 'tail'")
    env.create(["sh", "-c", script], stdout=uri, stderr=uri)
    env.client.start(env.id)
    env.client.wait(env.id, timeout=10)
    raw = log.read_bytes()
    entries = [json.loads(line) for line in raw.splitlines()]
    out = [e["log"] for e in entries if e["stream"] == "stdout"]
    assert out == ["a" * 16384, "a" * 3616 + "\n", "tail\n"], "split at 16 KiB as docker does"
    assert [e["log"] for e in entries if e["stream"] == "stderr"] == ["<&>\n"]
    assert b'"log":"\\u003c\\u0026\\u003e\\n"' in raw, "escaped as Go's encoder does"
    for e in entries:
        assert set(e) == {"log", "stream", "time"}
        assert RFC3339_NANO.match(e["time"]), e["time"]
        assert not re.search(r"\.\d*0Z$", e["time"]), "trailing zeros trimmed (RFC3339Nano)"


def test_jsonfile_rotation(env):
    log = env.tmp / "r-json.log"
    uri = f"berth-jsonfile://{log}?max-size=1k&max-file=3"
    env.create(["sh", "-c", "for i in $(seq 1 200); do echo line-$i; done"],
               stdout=uri, stderr=uri)
    env.client.start(env.id)
    env.client.wait(env.id, timeout=10)
    files = sorted(p.name for p in env.tmp.iterdir() if p.name.startswith("r-json.log"))
    assert files == ["r-json.log", "r-json.log.1", "r-json.log.2"]
    for name in files:
        size = (env.tmp / name).stat().st_size
        assert size < 1000 + 200, f"{name} is {size} bytes: rotated once it reached 1k"
    newest = [json.loads(l)["log"] for l in log.read_text().splitlines()]
    assert newest[-1] == "line-200\n"
    older = [json.loads(l)["log"] for l in (env.tmp / "r-json.log.1").read_text().splitlines()]
    n_last_old = int(older[-1].strip().split("-")[1])
    assert newest[0] == f"line-{n_last_old + 1}\n", "nothing lost at a rotation"


def test_binary_logger_protocol(env):
    out_dir = env.tmp / "logger"
    out_dir.mkdir()
    logger = env.tmp / "logger.sh"
    logger.write_text(
        "#!/bin/sh\n"
        "# args: dir DIR (from the uri query), as containerd passes them\n"
        'dir="$2"\n'
        'echo "$CONTAINER_NAMESPACE/$CONTAINER_ID $1" > "$dir/env"\n'
        "exec 5>&-   # ready (before the readers start, or they would hold it open)\n"
        'cat <&3 > "$dir/stdout" &\n'
        'cat <&4 > "$dir/stderr" &\n'
        "wait\n")
    logger.chmod(0o755)
    uri = f"binary://{logger}?dir={out_dir}"
    env.create(["sh", "-c", "echo to-out; echo to-err >&2"], stdout=uri, stderr=uri)
    env.client.start(env.id)
    assert env.client.wait(env.id, timeout=10)[0] == 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (out_dir / "stderr").read_text() != "to-err\n":
        time.sleep(0.05)
    assert (out_dir / "stdout").read_text() == "to-out\n"
    assert (out_dir / "stderr").read_text() == "to-err\n"
    assert (out_dir / "env").read_text() == f"{env.namespace}/{env.id} dir\n"


def test_attach_several_clients_stdin_and_close_stdin(env):
    log = env.tmp / "a-json.log"
    env.create(["sh", "-c", "cat; echo done >&2"], stdin="berth-attach:",
               stdout=f"berth-jsonfile://{log}", stderr=f"berth-jsonfile://{log}")
    c = env.client
    writer = c.attach(env.id, stdin=True)
    watcher = c.attach(env.id, stdout=True, stderr=True)
    only_err = c.attach(env.id, stdout=False, stderr=True)
    c.start(env.id)
    writer.write(b"ping\n")
    got = []
    for stream, data in watcher:
        got.append((stream, data))
        if b"ping\n" in b"".join(d for s, d in got if s == 1):
            break
    writer.close_stdin()
    assert c.wait(env.id, timeout=10)[0] == 0
    rest = list(watcher)                       # ends with the shim's `closed`
    both = got + rest
    assert b"".join(d for s, d in both if s == pb.AttachFrame.STDOUT) == b"ping\n"
    assert b"".join(d for s, d in both if s == pb.AttachFrame.STDERR) == b"done\n"
    assert list(only_err) == [(pb.AttachFrame.STDERR, b"done\n")]
    assert list(writer) == [(1, b"ping\n"), (2, b"done\n")]
    assert [json.loads(l)["log"] for l in log.read_text().splitlines()] == ["ping\n", "done\n"]
    for a in (writer, watcher, only_err):
        a.close()


def test_attach_once_closes_stdin_when_the_client_goes(env):
    env.create(["sh", "-c", "cat >/dev/null; echo eof-seen"], stdin="berth-attach:?once=1")
    c = env.client
    writer = c.attach(env.id, stdin=True, stdout=False, stderr=False)
    reader = c.attach(env.id)
    c.start(env.id)
    writer.write(b"data")
    writer.close()          # no eof frame: the disconnect itself closes stdin (once=1)
    assert c.wait(env.id, timeout=10)[0] == 0
    assert list(reader) == [(1, b"eof-seen\n")]
    reader.close()


def test_close_io_closes_stdin(env):
    env.create(["sh", "-c", "cat; echo closed"], stdin="berth-attach:")
    c = env.client
    reader = c.attach(env.id)
    c.start(env.id)
    c.close_io(env.id)
    assert c.wait(env.id, timeout=10)[0] == 0
    assert b"".join(d for _, d in reader) == b"closed\n"
    reader.close()


def test_attach_after_exit_gets_closed_at_once(env):
    env.create(["true"], stdout=f"file://{env.tmp}/o")
    c = env.client
    c.start(env.id)
    c.wait(env.id, timeout=10)
    a = c.attach(env.id)
    a.sock.settimeout(5)
    assert a.read() is None and a.ended
    a.close()


def test_slow_attach_client_never_blocks_the_container_or_the_log(env):
    log = env.tmp / "s-json.log"
    env.create(["sh", "-c", "head -c 12000000 /dev/zero | tr '\\0' 'x' | fold -w 1000"],
               stdout=f"berth-jsonfile://{log}")
    c = env.client
    stalled = c.attach(env.id)     # never read from
    stalled.sock.setsockopt(__import__("socket").SOL_SOCKET,
                            __import__("socket").SO_RCVBUF, 4096)
    c.start(env.id)
    assert c.wait(env.id, timeout=60)[0] == 0
    with open(log, "rb") as f:
        lines = sum(1 for _ in f)
    assert lines == 12000, "the log is complete when wait returns"
    stalled.close()


def test_tty_with_resize_through_the_console_socket(env):
    env.create(["sh", "-c", "read x; stty size; tty"], terminal=True, stdin="berth-attach:")
    c = env.client
    a = c.attach(env.id, stdin=True)
    c.start(env.id)
    c.resize_pty(env.id, width=123, height=45)
    a.write(b"go\n")
    out = b"".join(d for _, d in a)
    assert c.wait(env.id, timeout=10)[0] == 0
    assert b"45 123" in out
    assert b"/dev/pts/" in out
    assert c.state(env.id).terminal
    a.close()


def test_exec_with_its_own_stdio_tty_and_exit_code(env):
    log = env.tmp / "e-json.log"
    env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    with pytest.raises(errors.FailedPrecondition, match="stdin is not open"):
        c.attach(env.id, stdin=True)   # the init has no stdin to attach to
    sub = c.subscribe(2)
    c.exec(env.id, "ex1", exec_spec(["sh", "-c", "echo out; echo err >&2; exit 7"]),
           stdout=f"berth-jsonfile://{log}", stderr=f"berth-jsonfile://{log}")
    watcher = c.attach(env.id, "ex1")
    with pytest.raises(errors.AlreadyExists):
        c.exec(env.id, "ex1", exec_spec(["true"]))
    with pytest.raises(errors.FailedPrecondition, match="not created"):
        c.kill(env.id, 9, exec_id="ex1")
    pid = c.start(env.id, "ex1")
    assert c.wait(env.id, "ex1", timeout=10)[0] == 7
    st = c.state(env.id, "ex1")
    assert (st.status, st.exit_status, st.pid, st.exec_id) == (pb.STOPPED, 7, pid, "ex1")
    assert sorted(d for _, d in watcher) == [b"err\n", b"out\n"]
    assert sorted(json.loads(l)["log"] for l in log.read_text().splitlines()) == ["err\n",
                                                                                 "out\n"]
    with pytest.raises(errors.NotFound, match="already finished"):
        c.kill(env.id, 9, exec_id="ex1")
    assert c.delete(env.id, "ex1")[1] == 7
    with pytest.raises(errors.NotFound):
        c.state(env.id, "ex1")
    # a TTY exec
    c.exec(env.id, "tty1", exec_spec(["sh", "-c", "read x; stty size"], terminal=True),
           terminal=True, stdin="berth-attach:")
    a = c.attach(env.id, "tty1", stdin=True)
    c.start(env.id, "tty1")
    c.resize_pty(env.id, 80, 24, exec_id="tty1")
    a.write(b"\n")
    assert b"24 80" in b"".join(d for _, d in a)
    assert c.wait(env.id, "tty1", timeout=10)[0] == 0
    a.close()
    sub.sock.settimeout(10)
    kinds = []
    for ev in sub:
        kinds.append((ev.WhichOneof("event"), getattr(ev, ev.WhichOneof("event")).exec_id
                      if ev.WhichOneof("event") != "exit" else ev.exit.id))
        if len(kinds) == 6:
            break
    sub.close()
    assert kinds == [("exec_added", "ex1"), ("exec_started", "ex1"), ("exit", "ex1"),
                     ("exec_added", "tty1"), ("exec_started", "tty1"), ("exit", "tty1")]


def test_exec_that_cannot_start_reports_the_runtime_error(env):
    env.create(["sleep", "100"])
    c = env.client
    c.start(env.id)
    c.exec(env.id, "bad", exec_spec(["/no/such/program"]))
    with pytest.raises(errors.RuntimeFailed, match="OCI runtime exec failed"):
        c.start(env.id, "bad")
    assert c.state(env.id, "bad").status == pb.STOPPED
    assert c.wait(env.id, "bad", timeout=5)[0] == 255
    c.delete(env.id, "bad")


@pytest.mark.parametrize("field,value,message", [
    ("stdout", "nosuch://x", "unknown scheme"),
    ("stdout", "/nonexistent/fifo", "stdio fifo /nonexistent/fifo"),
    ("stdout", "berth-jsonfile:///tmp/x.log?max-size=lots", "invalid size"),
    ("stdin", "file:///etc/passwd", "unsupported scheme"),
])
def test_bad_stdio_is_invalid_argument_and_leaves_nothing(env, field, value, message):
    with pytest.raises(errors.InvalidArgument, match=message):
        env.create(["true"], **{field: value})
    assert not os.path.ismount(env.bundle / "rootfs")
    assert not (env.bundle / "rootfs").exists()
    with pytest.raises(errors.NotFound):
        env.client.state(env.id)


def _pty_size(pid: int) -> tuple[int, int]:
    """(rows, columns) of the terminal that is pid's stdin, as the process sees it."""
    import fcntl
    import struct
    import termios
    fd = os.open(f"/proc/{pid}/fd/0", os.O_RDWR | os.O_NOCTTY)
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))
    finally:
        os.close(fd)
    return rows, cols


def test_tty_size_is_zero_until_resized_unless_the_spec_sets_it(env):
    # `docker run -t busybox stty size` without a terminal: no consoleSize, no resize. The pty
    # then has no size, as runc and containerd leave it (busybox's stty reports that as an
    # error, with whatever errno it had); the shim sets none of its own.
    env.create(["sh", "-c", "read x; stty size"], terminal=True, stdin="berth-attach:")
    c = env.client
    a = c.attach(env.id, stdin=True)
    pid = c.start(env.id)
    assert _pty_size(pid) == (0, 0)
    c.resize_pty(env.id, width=100, height=30)
    assert _pty_size(pid) == (30, 100)
    a.write(b"\n")
    assert b"30 100" in b"".join(d for _, d in a)
    a.close()


def test_tty_console_size_from_the_spec_is_there_before_any_resize(env):
    env.create(["stty", "size"], terminal=True, console_size=(33, 111))
    c = env.client
    a = c.attach(env.id)
    c.start(env.id)
    assert c.wait(env.id, timeout=10)[0] == 0
    assert b"".join(d for _, d in a) == b"33 111\r\n"
    a.close()


def test_tty_close_io_writes_eof_so_cat_ends(env):
    # containerd writes the terminal's EOF character (^D) when a TTY's stdin is closed; the
    # master itself stays open, as it carries the output. After a partial line it takes two.
    env.create(["cat"], terminal=True, stdin="berth-attach:")
    c = env.client
    a = c.attach(env.id, stdin=True)
    c.start(env.id)
    a.write(b"line\n")
    a.write(b"partial")
    c.close_io(env.id)
    assert c.wait(env.id, timeout=10)[0] == 0
    out = b"".join(d for _, d in a)
    # the terminal echoes what is typed, and cat repeats it
    assert (out.count(b"line\r\n"), out.count(b"partial")) == (2, 2), out
    a.close()


def test_tty_stdin_closed_before_start_keeps_its_data_and_eof(env):
    env.create(["cat"], terminal=True, stdin="berth-attach:?once=1")
    c = env.client
    a = c.attach(env.id, stdin=True)
    a.write(b"early\n")
    a.close_stdin()
    c.state(env.id)
    c.start(env.id)
    assert c.wait(env.id, timeout=10)[0] == 0
    assert b"".join(d for _, d in a).count(b"early\r\n") == 2
    a.close()
