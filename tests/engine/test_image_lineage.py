"""A build's step images, as dockerd's image store treats an image's parents: listed only with
-a, never dangling, refused by rmi while a child needs them, removed with their last child."""
from __future__ import annotations

import uuid

DOCKERFILE = "FROM busybox\nENV STEP=1\nRUN echo one > /one\nLABEL step=3\n"


def _build(daemon, tmp_path) -> tuple[str, str]:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    tag = f"lineage-{uuid.uuid4().hex[:8]}"
    p = daemon.berth("build", "--no-cache", "-q", "-t", tag, str(ctx), timeout=120)
    assert p.returncode == 0, p.stderr
    image = daemon.api("GET", f"/images/{tag}/json").json()
    return tag, image["Id"]


def _ids(daemon, query: str = "") -> set[str]:
    return {i["Id"] for i in daemon.api("GET", f"/images/json{query}").json()}


def _chain(daemon, image_id: str) -> list[str]:
    out = []
    while image_id:
        info = daemon.api("GET", f"/images/{image_id}/json").json()
        image_id = info["Parent"]
        if image_id:
            out.append(image_id)
    return out


def test_step_images_are_listed_with_all_only_and_never_dangling(daemon, tmp_path):
    tag, top = _build(daemon, tmp_path)
    try:
        parents = _chain(daemon, top)
        busybox = daemon.api("GET", "/images/busybox/json").json()["Id"]
        steps = [p for p in parents if p != busybox]
        assert len(steps) == 2 and parents[-1] == busybox, parents      # ENV, RUN; LABEL on top
        assert top in _ids(daemon) and not set(steps) & _ids(daemon)
        assert set(steps) <= _ids(daemon, "?all=1")
        listed = {i["Id"]: i for i in daemon.api("GET", "/images/json?all=1").json()}
        assert listed[top]["ParentId"] == steps[0]
        dangling = _ids(daemon, '?filters={"dangling":["true"]}')
        assert not set(steps) & dangling
        # prune leaves them to the image they make
        r = daemon.api("POST", "/images/prune")
        assert r.status == 200 and set(steps) <= _ids(daemon, "?all=1")
        # rmi of a step a child needs: refused, whatever force says
        r = daemon.api("DELETE", f"/images/{steps[1]}?force=1")
        assert r.status == 409 and "image has dependent child images" in r.json()["message"]
    finally:
        r = daemon.api("DELETE", f"/images/{tag}")
    assert r.status == 200, r.body
    deleted = [e["Deleted"] for e in r.json() if "Deleted" in e]
    assert deleted == [top, *steps]             # the steps go with their last child
    assert busybox in _ids(daemon)
