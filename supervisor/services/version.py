"""containerd.services.version.v1.Version and introspection.v1.Introspection."""
from __future__ import annotations

import platform

from protos.containerd.services.introspection.v1 import introspection_pb2 as ipb, introspection_pb2_grpc
from protos.containerd.services.version.v1 import version_pb2, version_pb2_grpc
from protos.containerd.types import platform_pb2
from supervisor import filters
from supervisor.services import unary

# The containerd release whose API this server speaks, and berth's own version after '+'.
VERSION = "1.6.20+berth.0.1.0"
REVISION = "berth-supervisor"

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}

# What this server implements, as containerd names its plugins (`ctr plugins ls`).
PLUGINS = [
    ("io.containerd.event.v1", "exchange", []),
    ("io.containerd.metadata.v1", "sqlite", []),
    ("io.containerd.runtime.v2", "task", ["io.containerd.event.v1", "io.containerd.metadata.v1"]),
    ("io.containerd.service.v1", "containers-service", ["io.containerd.metadata.v1"]),
    ("io.containerd.service.v1", "namespaces-service", ["io.containerd.metadata.v1"]),
    ("io.containerd.service.v1", "leases-service", ["io.containerd.metadata.v1"]),
    ("io.containerd.service.v1", "tasks-service", ["io.containerd.runtime.v2"]),
    ("io.containerd.grpc.v1", "containers", ["io.containerd.service.v1"]),
    ("io.containerd.grpc.v1", "events", ["io.containerd.event.v1"]),
    ("io.containerd.grpc.v1", "introspection", []),
    ("io.containerd.grpc.v1", "leases", ["io.containerd.service.v1"]),
    ("io.containerd.grpc.v1", "namespaces", ["io.containerd.service.v1"]),
    ("io.containerd.grpc.v1", "tasks", ["io.containerd.service.v1"]),
    ("io.containerd.grpc.v1", "version", []),
    ("io.containerd.grpc.v1", "berth.streams", ["io.containerd.runtime.v2"]),
]


class VersionServicer(version_pb2_grpc.VersionServicer):
    @unary
    async def Version(self, request, context):
        return version_pb2.VersionResponse(version=VERSION, revision=REVISION)


class IntrospectionServicer(introspection_pb2_grpc.IntrospectionServicer):
    def __init__(self, server_uuid: str):
        self.uuid = server_uuid
        machine = platform.machine()
        self.platform = platform_pb2.Platform(os="linux", architecture=_ARCH.get(machine, machine))

    @unary
    async def Server(self, request, context):
        return ipb.ServerResponse(uuid=self.uuid)

    @unary
    async def Plugins(self, request, context):
        flt = filters.parse(request.filters)
        out = ipb.PluginsResponse()
        for ptype, pid, requires in PLUGINS:
            fields = {"type": ptype, "id": pid}
            if not flt.match(filters.mapping_adaptor(fields)):
                continue
            plugin = out.plugins.add(type=ptype, id=pid, requires=requires)
            if ptype == "io.containerd.runtime.v2":
                plugin.platforms.append(self.platform)
        return out
