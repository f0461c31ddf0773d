"""GET /system/df (`docker system df [-v]`): sizes measured by engine/disk_usage.py."""
from __future__ import annotations

from aiohttp import web

from .. import container as views, disk_usage, timefmt
from ..errors import InvalidParameter
from ..version import api_at_least
from . import images as image_views
from .http import json_response

# dockerd's DiskUsageObject names, for `type=` (API 1.42+)
TYPES = ("container", "image", "volume", "build-cache")


def _wanted(request: web.Request) -> set[str]:
    asked = request.query.getall("type", [])
    if not asked or not api_at_least(request["api_version"], "1.42"):
        return set(TYPES)
    for kind in asked:
        if kind not in TYPES:
            raise InvalidParameter(f"unknown object type: {kind}")
    return set(asked)


async def system_df(request: web.Request) -> web.Response:
    daemon = request.app["daemon"]
    wanted = _wanted(request)
    usage = await disk_usage.measure(daemon, images="image" in wanted,
                                     containers="container" in wanted,
                                     volumes="volume" in wanted)
    body: dict = {"LayersSize": 0, "Images": None, "Containers": None, "Volumes": None,
                  "BuildCache": None}
    if "image" in wanted:
        body["LayersSize"] = usage.layers_size
        body["Images"] = []
        for image in daemon.images.list():
            measured = usage.images.get(image.id)
            if measured is None:        # added while the others were measured
                continue
            summary = image_views.summary(daemon, image)
            summary.update(Size=measured.size, SharedSize=measured.shared_size,
                           VirtualSize=measured.size, Containers=measured.containers)
            body["Images"].append(summary)
    if "container" in wanted:
        body["Containers"] = []
        now = timefmt.now_ns()
        for c in daemon.containers.all():
            sizes = usage.containers.get(c.id)
            if sizes is None:
                continue
            summary = views.summary(c, image_id=c.record["Image"], now_ns=now)
            summary.update(SizeRw=sizes[0], SizeRootFs=sizes[1])
            body["Containers"].append(summary)
    if "volume" in wanted:
        body["Volumes"] = []
        for volume in daemon.containers.volumes.all():
            size = usage.volumes.get(volume.name)
            if size is None:            # made while the others were measured
                continue
            body["Volumes"].append(dict(volume.view(), UsageData={
                "Size": size, "RefCount": len(volume.users)}))
    if "build-cache" in wanted:
        body["BuildCache"] = []         # nor a builder
    return json_response(body)


ROUTES = [("GET", "/system/df", system_df)]
