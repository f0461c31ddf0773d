"""Pure logic of berthd: times, names, references, sizes, signals, config merging, query values."""
from __future__ import annotations

import re
import signal

import pytest

from engine import names, timefmt
from engine.api.http import parse_bool
from engine.containers import exit_code_for_start_error
from engine.errors import InvalidParameter
from engine.host_config import merge_image_config, parse_signal
from engine.images import reference
from lowrt import units


def test_rfc3339nano_trims_zeros_like_go():
    assert timefmt.rfc3339nano(1_700_000_000_000_000_000) == "2023-11-14T22:13:20Z"
    assert timefmt.rfc3339nano(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.12Z"
    assert timefmt.rfc3339nano(0) == timefmt.ZERO_TIME


def test_log_timestamps_have_nine_digits():
    assert timefmt.rfc3339nano_fixed(1_700_000_000_120_000_000) == "2023-11-14T22:13:20.120000000Z"


@pytest.mark.parametrize("text,ns", [
    ("2023-11-14T22:13:20Z", 1_700_000_000_000_000_000),
    ("2023-11-14T22:13:20.5Z", 1_700_000_000_500_000_000),
    ("2023-11-14T23:13:20.000000001+01:00", 1_700_000_000_000_000_001),
])
def test_parse_rfc3339(text, ns):
    assert timefmt.parse_rfc3339(text) == ns


def test_unix_timestamps_as_the_cli_sends_them():
    assert timefmt.parse_unix_timestamp("1700000000") == 1_700_000_000_000_000_000
    assert timefmt.parse_unix_timestamp("1700000000.000000002") == 1_700_000_000_000_000_002
    with pytest.raises(ValueError):
        timefmt.parse_unix_timestamp("yesterday")


@pytest.mark.parametrize("seconds,text", [
    (0.2, "Less than a second"), (1, "1 second"), (45, "45 seconds"), (61, "About a minute"),
    (300, "5 minutes"), (3600, "About an hour"), (7200, "2 hours"), (3 * 86400, "3 days"),
    (20 * 86400, "2 weeks"), (90 * 86400, "3 months"), (800 * 86400, "2 years"),
])
def test_human_duration_as_go_units(seconds, text):
    assert timefmt.human_duration(seconds) == text


def test_container_names():
    assert names.normalize("web") == "/web"
    assert names.normalize("/web.1_a-b") == "/web.1_a-b"
    assert names.normalize("x") == "/x"      # dockerd refuses one letter; issue 2 needs it
    for bad in ("", "-web", "we b", "a/b", "ü"):
        with pytest.raises(InvalidParameter, match="Invalid container name"):
            names.normalize(bad)
    taken = {"/a"}
    assert names.generate(taken.__contains__).startswith("/")


@pytest.mark.parametrize("text,full,familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("me/app:v1", "docker.io/me/app:v1", "me/app:v1"),
    ("localhost:5000/app", "localhost:5000/app:latest", "localhost:5000/app:latest"),
    ("registry.example/a/b:c", "registry.example/a/b:c", "registry.example/a/b:c"),
])
def test_references(text, full, familiar):
    ref = reference.parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize("bad", ["Busybox", "busybox:", "a//b", "busybox@sha256:12", " x"])
def test_invalid_references(bad):
    with pytest.raises(InvalidParameter, match="invalid reference format"):
        reference.parse(bad)


@pytest.mark.parametrize("text,binary,decimal", [
    ("64m", 64 << 20, 64_000_000), ("1g", 1 << 30, 10**9), ("512", 512, 512),
    ("10m", 10_485_760, 10_000_000), ("1.5k", 1536, 1500), ("3KiB", 3072, 3000),
    ("2MB", 2 << 20, 2_000_000), ("10 m", 10 << 20, 10_000_000), ("1e3", 1000, 1000),
    ("0", 0, 0), ("7b", 7, 7),
])
def test_one_size_parser_with_both_of_go_units_readings(text, binary, decimal):
    """memory and shm-size are RAMInBytes (binary); log max-size is FromHumanSize (decimal)."""
    assert units.ram_in_bytes(text) == binary
    assert units.from_human_size(text) == decimal


@pytest.mark.parametrize("bad,message", [
    ("lots", "invalid size: 'lots'"), ("", "invalid size: ''"), ("-1k", "invalid size: '-1k'"),
    ("1x", "invalid suffix: 'x'"), ("10mi", "invalid suffix: 'mi'"), ("1bb", "invalid suffix"),
    ("1.2.3", 'strconv.ParseFloat: parsing "1.2.3": invalid syntax'),
    ("1_000", "invalid syntax"), ("99999999999p", "larger than"),
])
def test_sizes_go_units_refuses(bad, message):
    for parse in (units.ram_in_bytes, units.from_human_size):
        with pytest.raises(ValueError, match=re.escape(message)):
            parse(bad)


def test_signals_and_start_errors():
    assert parse_signal("HUP", 15) == signal.SIGHUP
    assert parse_signal("SIGKILL", 15) == 9
    assert parse_signal("10", 15) == 10
    assert parse_signal(None, 15) == 15
    with pytest.raises(InvalidParameter, match="invalid signal"):
        parse_signal("SIGNOPE", 15)
    assert exit_code_for_start_error(
        'exec: "nope": executable file not found in $PATH') == 127
    assert exit_code_for_start_error("exec /etc/passwd: permission denied") == 126
    assert exit_code_for_start_error("something else broke") == 128


def test_dockerd_booleans():
    # the CLI sends 1/0, docker-py True/False: a plain == "0" check would make False true
    for true in ("1", "true", "True", "yes", "anything"):
        assert parse_bool(true)
    for false in ("", "0", "false", "False", "no", "none", " NONE "):
        assert not parse_bool(false)
    assert parse_bool(None, default=True)


def test_image_config_fills_what_create_left_out():
    image = {"Env": ["PATH=/bin", "A=image"], "Cmd": ["sh"], "WorkingDir": "/w",
             "Labels": {"l": "image", "m": "image"}, "User": "nobody"}
    config = {"Env": ["A=mine"], "Cmd": None, "Entrypoint": None, "Labels": {"l": "mine"},
              "User": "", "WorkingDir": ""}
    merge_image_config(config, image)
    assert config["Env"] == ["A=mine", "PATH=/bin"]
    assert config["Cmd"] == ["sh"]
    assert config["WorkingDir"] == "/w"
    assert config["Labels"] == {"l": "mine", "m": "image"}
    assert config["User"] == "nobody"
    # an entrypoint given at create drops the image's Cmd, as docker does
    config = {"Entrypoint": ["echo"], "Cmd": None}
    merge_image_config(config, {"Cmd": ["sh"], "Entrypoint": ["/init"]})
    assert config["Entrypoint"] == ["echo"] and config["Cmd"] is None


def test_init_is_the_containers_choice_else_the_daemons(tmp_path):
    from engine.config import DaemonConfig
    from engine.host_config import init_binary
    init = tmp_path / "my-init"
    init.write_text("#!/bin/sh\n")
    init.chmod(0o755)
    plain, daemon_init = DaemonConfig(init_path=str(init)), DaemonConfig(init=True,
                                                                         init_path=str(init))
    assert init_binary({"Init": True}, plain) == str(init)
    assert init_binary({}, plain) is None and init_binary({"Init": None}, plain) is None
    assert init_binary({}, daemon_init) == str(init)
    assert init_binary({"Init": False}, daemon_init) is None
    with pytest.raises(InvalidParameter, match="no init binary"):
        init_binary({"Init": True}, DaemonConfig(init_path=str(tmp_path / "none")))
