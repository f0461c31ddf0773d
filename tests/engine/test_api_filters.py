"""The list filters berthd accepts are applied (or refused with dockerd's message), never
accepted and ignored: GET /images/json before/since/until/dangling, and GET /containers/json
network/volume/publish/expose/is-task/isolation."""
from __future__ import annotations

import json
import tempfile
import time
import urllib.parse

import pytest


def _q(filters: dict) -> str:
    return urllib.parse.quote(json.dumps(filters))


def _images(daemon, filters: dict) -> list[str]:
    r = daemon.api("GET", f"/images/json?filters={_q(filters)}")
    assert r.status == 200, r
    return [t for image in r.json() for t in image["RepoTags"]]


def _created(daemon) -> dict[str, int]:
    return {t: image["Created"] for image in daemon.api("GET", "/images/json").json()
            for t in image["RepoTags"]}


def test_image_before_since_and_until(daemon):
    created = _created(daemon)
    older, newer = sorted(("busybox:latest", "hello-world:latest"), key=created.get)
    assert created[older] < created[newer]
    assert older in _images(daemon, {"before": {newer: True}})
    assert newer not in _images(daemon, {"before": {newer: True}})
    assert newer in _images(daemon, {"since": {older: True}})
    assert older not in _images(daemon, {"since": {older: True}})
    assert _images(daemon, {"since": {newer: True}, "before": {newer: True}}) == []
    # until: a unix time, and a duration counted back from now (dockerd's GetTimestamp)
    between = str(created[newer] - 1)
    assert older in _images(daemon, {"until": {between: True}})
    assert newer not in _images(daemon, {"until": {between: True}})
    ago = f"{int(time.time()) - created[newer] + 1}s"
    assert newer not in _images(daemon, {"until": {ago: True}})
    assert newer in _images(daemon, {"until": {"-1h": True}})     # an hour from now
    # the CLI's --filter sends the same
    p = daemon.docker("images", "--filter", f"before={newer}", "--format", "{{.Repository}}")
    assert p.returncode == 0, p.stderr
    assert newer.split(":")[0].encode() not in p.stdout


@pytest.mark.parametrize("filters, status, message", [
    ({"before": {"nosuch:image": True}}, 404, "No such image: nosuch:image"),
    ({"since": {"nosuch:image": True}}, 404, "No such image: nosuch:image"),
    ({"until": {"yesterday": True}}, 400,
     'failed to parse value as time or duration: "yesterday"'),
    ({"dangling": {"maybe": True}}, 400, "invalid filter 'dangling=[maybe]'"),
])
def test_image_filter_values_that_are_refused(daemon, filters, status, message):
    r = daemon.api("GET", f"/images/json?filters={_q(filters)}")
    assert r.status == status and r.json()["message"] == message


def _create(daemon, label: str, **config) -> str:
    body = {"Image": "busybox", "Cmd": ["true"], "Labels": {"filtertest": label}, **config}
    r = daemon.api("POST", "/containers/create", body)
    assert r.status == 201, r
    return r.json()["Id"]


def _ps(daemon, filters: dict) -> set[str]:
    filters = {**filters, "label": {"filtertest": True}}
    r = daemon.api("GET", f"/containers/json?all=1&filters={_q(filters)}")
    assert r.status == 200, r
    return {c["Id"] for c in r.json()}


def test_container_network_volume_expose_publish_task_and_isolation(daemon):
    source = tempfile.mkdtemp(prefix="bt-filters-", dir="/tmp")
    try:
        on_host = _create(daemon, "host", HostConfig={"NetworkMode": "host"})
        on_none = _create(daemon, "none", HostConfig={"NetworkMode": "none"})
        web = _create(daemon, "web", ExposedPorts={"8080/tcp": {}},
                      HostConfig={"Binds": [f"{source}:/data:ro"]})
        everyone = {on_host, on_none, web}
        assert _ps(daemon, {}) == everyone
        assert _ps(daemon, {"network": {"host": True}}) == {on_host}
        assert _ps(daemon, {"network": {"none": True}}) == {on_none}
        assert _ps(daemon, {"network": {"bridge": True}}) == {web}
        assert _ps(daemon, {"network": {"host": True, "none": True}}) == {on_host, on_none}
        assert _ps(daemon, {"network": {"nosuch": True}}) == set()
        assert _ps(daemon, {"volume": {"/data": True}}) == {web}
        assert _ps(daemon, {"volume": {source: True}}) == {web}
        assert _ps(daemon, {"volume": {"/elsewhere": True}}) == set()
        assert _ps(daemon, {"expose": {"8080": True}}) == {web}
        assert _ps(daemon, {"expose": {"8000-8100/tcp": True}}) == {web}
        assert _ps(daemon, {"expose": {"8080/udp": True}}) == set()
        # berth publishes no port (it refuses --publish)
        assert _ps(daemon, {"publish": {"8080": True}}) == set()
        assert _ps(daemon, {"is-task": {"true": True}}) == set()
        assert _ps(daemon, {"is-task": {"false": True}}) == everyone
        assert _ps(daemon, {"isolation": {"default": True}}) == everyone
        assert _ps(daemon, {"isolation": {"hyperv": True}}) == set()
        # the CLI's --filter
        p = daemon.docker("ps", "-a", "--no-trunc", "--filter", "label=filtertest",
                          "--filter", "network=host", "--format", "{{.ID}}")
        assert p.returncode == 0, p.stderr
        assert p.stdout.decode().split() == [on_host]
    finally:
        import shutil
        shutil.rmtree(source, ignore_errors=True)


@pytest.mark.parametrize("filters, message", [
    ({"publish": {"80:80": True}}, "filter for 'publish' should not contain ':': 80:80"),
    ({"expose": {"http": True}}, 'error while looking up for expose http: '
                                 'strconv.ParseUint: parsing "http": invalid syntax'),
    ({"expose": {"90-80": True}}, "error while looking up for expose 90-80: invalid range "
                                  "specified for port: 90-80"),
    ({"is-task": {"maybe": True}}, "invalid filter 'is-task=[maybe]'"),
    ({"nosuch": {"x": True}}, "invalid filter 'nosuch'"),
    ({"exited": {"one": True}},
     'invalid filter \'exited=one\': strconv.Atoi: parsing "one": invalid syntax'),
])
def test_container_filter_values_that_are_refused(daemon, filters, message):
    r = daemon.api("GET", f"/containers/json?filters={_q(filters)}")
    assert r.status == 400 and r.json()["message"] == message
