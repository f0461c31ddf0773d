"""berthd's options from flags and daemon.json, merged and refused as dockerd does (pure logic:
no daemon is started)."""
from __future__ import annotations

import json

import pytest

from engine.daemon_options import parse


def config(tmp_path, data: dict | str) -> str:
    path = tmp_path / "daemon.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def refused(argv, capsys) -> str:
    with pytest.raises(SystemExit) as e:
        parse(argv)
    assert e.value.code == 1
    return capsys.readouterr().err


def test_the_file_sets_what_the_flags_do_not(tmp_path):
    cfg = parse(["--config-file", config(tmp_path, {
        "hosts": ["unix:///tmp/a.sock"], "data-root": str(tmp_path / "d"), "debug": True,
        "default-runtime": "runc", "group": "daemon"}), "--exec-root", str(tmp_path / "x")])
    assert cfg.hosts == ["unix:///tmp/a.sock"]
    assert cfg.data_root == tmp_path / "d" and cfg.exec_root == tmp_path / "x"
    assert cfg.debug and cfg.log_level == "debug" and cfg.default_runtime == "runc"
    assert (cfg.group, cfg.group_required) == ("daemon", True)


def test_a_setting_given_both_ways_is_refused_naming_both(tmp_path, capsys):
    err = refused(["--config-file", config(tmp_path, {"hosts": ["unix:///tmp/b.sock"],
                                                     "debug": False}),
                   "-H", "unix:///tmp/a.sock", "--debug"], capsys)
    assert ("the following directives are specified both as a flag and in the configuration "
            "file: hosts: (from flag: [unix:///tmp/a.sock], from file: [unix:///tmp/b.sock]), "
            "debug: (from flag: true, from file: false)") in err


@pytest.mark.parametrize("data, says", [
    ({"hots": []}, "the following directives don't match any configuration option: hots"),
    ({"debug": "yes"}, 'debug must be true or false, not "yes"'),
    ({"hosts": "unix:///a"}, "hosts must be a list of strings"),
    ("{nope", "invalid JSON"),
    ([1], "the file must hold a JSON object"),
])
def test_a_bad_file_is_refused_naming_what_is_wrong(tmp_path, capsys, data, says):
    path = config(tmp_path, data)
    err = refused(["--config-file", path], capsys)
    assert f"unable to configure the berth daemon with file {path}" in err and says in err


def test_a_missing_file_is_an_error_only_when_named(tmp_path, capsys):
    err = refused(["--config-file", str(tmp_path / "none.json")], capsys)
    assert "no such file or directory" in err


@pytest.mark.parametrize("argv", [
    ["-H", "tcp://0.0.0.0:2375"],
    ["-H", "tcp://127.0.0.1:2376", "--tls", "--tlscert", "c", "--tlskey", "k"],
])
def test_tcp_without_client_verification_is_refused_and_says_how_to_make_certificates(
        argv, capsys):
    err = refused(argv, capsys)
    assert "anyone who reaches the port would be root on this host" in err
    assert "berth tls ca" in err and "--tlsverify" in err and "--insecure-tcp" in err


def test_tcp_hosts_get_dockerds_default_ports_and_tls_defaults_from_docker_cert_path(
        monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
    cfg = parse(["-H", "tcp://127.0.0.1", "--tlsverify"])
    assert cfg.hosts == ["tcp://127.0.0.1:2376"] and cfg.tls and cfg.tlsverify
    assert cfg.tlscacert == str(tmp_path / "ca.pem") and cfg.tlskey == str(tmp_path / "key.pem")
    cfg = parse(["-H", "tcp://127.0.0.1", "--insecure-tcp"])
    assert cfg.hosts == ["tcp://127.0.0.1:2375"] and not cfg.tls


@pytest.mark.parametrize("host, says", [
    ("http://x", "unsupported scheme 'http'"),
    ("tcp://1.2.3.4:99999", "invalid port"),
    ("unix://relative.sock", "must be absolute"),
    ("nothing", "expected unix:///PATH"),
])
def test_bad_hosts_are_refused(capsys, host, says):
    assert says in refused(["-H", host, "--insecure-tcp"], capsys)


def test_cpu_rt_options_come_from_flags_or_the_file_under_dockerds_names(tmp_path, monkeypatch):
    from engine import cpu_rt
    monkeypatch.setattr(cpu_rt, "check_options", lambda *a: None)   # any host
    cfg = parse(["--cpu-rt-period", "1000000", "--cpu-rt-runtime", "95000"])
    assert (cfg.cpu_rt_period, cfg.cpu_rt_runtime) == (1000000, 95000)
    cfg = parse(["--config-file", config(tmp_path, {"cpu-rt-runtime": 5000})])
    assert (cfg.cpu_rt_period, cfg.cpu_rt_runtime) == (0, 5000)


@pytest.mark.parametrize("value", ['"95000"', "true", "1.5"])
def test_a_cpu_rt_value_that_is_not_an_integer_is_refused(tmp_path, capsys, value):
    err = refused(["--config-file", config(tmp_path, '{"cpu-rt-runtime": %s}' % value)],
                  capsys)
    assert f"cpu-rt-runtime must be an integer, not {json.dumps(json.loads(value))}" in err


def test_cpu_rt_options_a_host_cannot_give_are_refused_with_dockerds_words():
    from engine import cpu_rt
    assert cpu_rt.check_options(0, 0, True) is None
    assert cpu_rt.check_options(0, 95000, True) == ("daemon-scoped cpu-rt-period and "
                                                     "cpu-rt-runtime are not implemented for "
                                                     "cgroup v2")
    assert "not negative" in cpu_rt.check_options(-5, 0, False)
