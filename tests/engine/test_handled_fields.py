"""Every field of the create body's Config and HostConfig (engine/body_types.py) has a decision
in engine/host_config.py's HANDLED_FIELDS: applied, refused, warned or informational. A field
added to body_types without one fails here, so none can be accepted and dropped in silence."""
from __future__ import annotations

from engine import body_types, host_config

OUTCOMES = {"applied", "refused", "warned", "informational"}


def test_every_config_field_is_handled():
    table = host_config.HANDLED_FIELDS["Config"]
    assert set(body_types.CONFIG_FIELDS) == set(table), \
        set(body_types.CONFIG_FIELDS) ^ set(table)


def test_every_host_config_field_is_handled():
    table = host_config.HANDLED_FIELDS["HostConfig"]
    assert set(body_types.HOST_CONFIG.fields) == set(table), \
        set(body_types.HOST_CONFIG.fields) ^ set(table)


def test_outcomes_are_known():
    for struct, table in host_config.HANDLED_FIELDS.items():
        for field, outcome in table.items():
            assert outcome in OUTCOMES, (struct, field, outcome)


def test_device_cgroup_rules_parse_as_dockerd_reads_them():
    from engine import spec
    assert spec.device_cgroup_rule("c 1:3 rwm") == {
        "allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    assert spec.device_cgroup_rule("a *:* r") == {"allow": True, "type": "a", "access": "r"}
    assert spec.device_cgroup_rule("b 8:* mw")["major"] == 8
    import pytest
    from engine.errors import InvalidParameter
    for bad in ("c 1:3", "x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c a:3 r", ""):
        with pytest.raises(InvalidParameter, match="invalid device cgroup rule format"):
            spec.device_cgroup_rule(bad)


def test_bind_modes():
    import pytest
    from engine import spec
    from engine.errors import InvalidParameter
    assert spec._bind("/a:/b:ro,rshared") == ("/a", "/b", ["ro", "rshared"])
    assert spec.bind_propagation(["z", "rslave"]) == "rslave"
    assert spec.bind_propagation(["ro"]) == "rprivate"
    for bad in ("/a:/b:bogus", "/a:/b:ro,rw", "/a:/b:shared,slave", "/a:/b:nocopy"):
        with pytest.raises(InvalidParameter, match="invalid mode"):
            spec._bind(bad)
