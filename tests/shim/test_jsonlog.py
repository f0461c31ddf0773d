"""docker's json-file format, as shim/jsonlog.py writes it (pure logic, no containers)."""
from __future__ import annotations

import json

import pytest

from shim.jsonlog import LINE_MAX, JsonLog, json_string, parse_size
from shim.io import parse_uri


def _entries(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("text,size", [("10m", 10_000_000), ("1k", 1000), ("1kb", 1000),
                                       ("2MB", 2_000_000), ("1g", 10**9), ("123", 123),
                                       ("1.5k", 1500), ("10 m", 10_000_000), ("3KiB", 3000)])
def test_sizes_are_decimal_as_docker_parses_them(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "m", "lots", "-1k", "1x", "10mi"])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="invalid (size|suffix)"):
        parse_size(bad)


def test_strings_are_escaped_as_gos_encoder_does():
    assert json_string(b'a"b\\c\n\r\t\x01<>&') == \
        b'"a\\"b\\\\c\\n\\r\\t\\u0001\\u003c\\u003e\\u0026"'
    assert json_string("é\u2028".encode()) == '"é\\u2028"'.encode()
    assert json_string(b"ok\xff\xfe") == b'"ok\\ufffd\\ufffd"', "one U+FFFD per invalid byte"


def test_lines_are_cut_per_stream_across_writes(tmp_path):
    log = JsonLog(str(tmp_path / "l.log"))
    log.write("stdout", b"hel")
    log.write("stderr", b"err")
    log.write("stdout", b"lo\nwor")
    log.write("stderr", b"or\n")
    log.end_stream("stdout")
    log.close()
    assert [(e["stream"], e["log"]) for e in _entries(tmp_path / "l.log")] == [
        ("stdout", "hello\n"), ("stderr", "error\n"), ("stdout", "wor\n")]


def test_long_lines_become_16k_partials(tmp_path):
    log = JsonLog(str(tmp_path / "l.log"))
    log.write("stdout", b"x" * (LINE_MAX * 2 + 5))
    log.write("stdout", b"\n")
    log.close()
    assert [e["log"] for e in _entries(tmp_path / "l.log")] == [
        "x" * LINE_MAX, "x" * LINE_MAX, "xxxxx\n"]


def test_rotation_keeps_max_file_files(tmp_path):
    path = tmp_path / "r.log"
    log = JsonLog(str(path), max_size=300, max_file=3)
    for i in range(40):
        log.write("stdout", f"line {i}\n".encode())
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.log", "r.log.1", "r.log.2"]
    seen = [e["log"] for name in ("r.log.2", "r.log.1", "r.log")
            for e in _entries(tmp_path / name)]
    assert seen == [f"line {i}\n" for i in range(40 - len(seen), 40)], "oldest dropped, in order"


def test_max_file_one_truncates(tmp_path):
    path = tmp_path / "t.log"
    log = JsonLog(str(path), max_size=200, max_file=1)
    for i in range(20):
        log.write("stdout", f"line {i}\n".encode())
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.log"]
    assert _entries(path)[-1]["log"] == "line 19\n"
    assert path.stat().st_size < 300


def test_max_file_without_max_size_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs max-size"):
        JsonLog(str(tmp_path / "x.log"), max_file=3)


@pytest.mark.parametrize("uri,parsed", [
    ("", ("", "", [])),
    ("/run/fifo/out", ("fifo", "/run/fifo/out", [])),
    ("fifo:///run/a%20b", ("fifo", "/run/a b", [])),
    ("file:///var/log/x", ("file", "/var/log/x", [])),
    ("binary:///usr/bin/logger?id=1&mode=x%3Dy", ("binary", "/usr/bin/logger",
                                                   [("id", "1"), ("mode", "x=y")])),
    ("berth-jsonfile:///d/c-json.log?max-size=10m&max-file=3",
     ("berth-jsonfile", "/d/c-json.log", [("max-size", "10m"), ("max-file", "3")])),
    ("berth-attach:?once=1", ("berth-attach", "", [("once", "1")])),
])
def test_stdio_uris(uri, parsed):
    assert parse_uri(uri) == parsed
