"""The type of every field of the JSON bodies berthd reads (create, update, exec create, exec
start), as dockerd declares them in Go, and the check of a decoded body against them.

dockerd decodes a body into Go structs, so a value of the wrong JSON type is refused with a 400
before anything is done, with Go's words: `invalid JSON: json: cannot unmarshal string into Go
struct field HostConfig.HostConfig.Memory of type int64` (the innermost struct's name, the
field's path from the top, its Go type). berthd reads bodies as Python values, so without this
check `"Memory": "lots"` reached a comparison and gave a 500, and `"Env": "A=1"` became
['A', '=', '1']. The names are those of dockerd 28 (API 1.50, the newest berthd serves).

As in Go: null is accepted for any field (it leaves the default), fields not declared are
ignored, integers must be integral and within their Go type's range. What Go would make of the
rest, the check makes too, so that code after it meets no surprise: a null inside a list or as
a map's value becomes its type's zero value ("" for a string), and a fixed-size array
(ConsoleSize, [2]uint) gets exactly its size.
"""
from __future__ import annotations

from .errors import InvalidParameter


class GoFloat(float):
    """A JSON number with a fraction or exponent, keeping its text: Go quotes the literal
    ("number 1e3") when it cannot be an integer. json.loads(parse_float=GoFloat)."""

    def __new__(cls, text: str):
        self = super().__new__(cls, text)
        self.text = text
        return self


class _Type:
    go = ""
    zero = None             # what Go leaves for a null (None: a nil pointer, slice or map)

    def check(self, value, ctx: tuple[str, tuple[str, ...]]) -> None:
        raise NotImplementedError

    def zero_value(self):
        return self.zero


def _kind(value) -> str:
    """The JSON kind of a decoded value, as Go's UnmarshalTypeError names it."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _number_text(value) -> str:
    return value.text if isinstance(value, GoFloat) else repr(value)


class _TypeError(Exception):
    def __init__(self, what: str, go: str, ctx: tuple[str, tuple[str, ...]]):
        struct, path = ctx
        if struct:
            where = f"Go struct field {struct}.{'.'.join(path)}"
        else:
            where = "Go value"
        super().__init__(f"json: cannot unmarshal {what} into {where} of type {go}")


class String(_Type):
    zero = ""

    def __init__(self, go: str = "string"):
        self.go = go

    def check(self, value, ctx) -> None:
        if value is not None and not isinstance(value, str):
            raise _TypeError(_kind(value), self.go, ctx)


class Bool(_Type):
    go = "bool"
    zero = False

    def check(self, value, ctx) -> None:
        if value is not None and not isinstance(value, bool):
            raise _TypeError(_kind(value), self.go, ctx)


class Int(_Type):
    """Go's integer types: a JSON number that is integral and in range, nothing else."""
    zero = 0

    def __init__(self, go: str, bits: int, signed: bool = True):
        self.go = go
        self.low = -(1 << (bits - 1)) if signed else 0
        self.high = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1

    def check(self, value, ctx) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _TypeError(_kind(value), self.go, ctx)
        if isinstance(value, float) or not self.low <= value <= self.high:
            raise _TypeError(f"number {_number_text(value)}", self.go, ctx)


class Slice(_Type):
    def __init__(self, elem: _Type, go: str | None = None):
        self.elem = elem
        self.go = go or "[]" + elem.go

    def check(self, value, ctx) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            raise _TypeError(_kind(value), self.go, ctx)
        for i, item in enumerate(value):
            if item is None:
                value[i] = self.elem.zero_value()
            else:
                self.elem.check(item, ctx)


class Array(Slice):
    """A Go array ([2]uint): a JSON array, extra elements ignored, missing ones zero."""

    def __init__(self, elem: _Type, size: int, go: str):
        super().__init__(elem, go)
        self.size = size

    def check(self, value, ctx) -> None:
        super().check(value, ctx)
        if value is not None:
            value[:] = (value + [self.elem.zero_value()] * self.size)[:self.size]


class Map(_Type):
    def __init__(self, elem: _Type, go: str | None = None):
        self.elem = elem
        self.go = go or "map[string]" + elem.go

    def check(self, value, ctx) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise _TypeError(_kind(value), self.go, ctx)
        for key, item in value.items():
            if item is None:
                value[key] = self.elem.zero_value()
            else:
                self.elem.check(item, ctx)


class StrSlice(_Type):
    """strslice.StrSlice (Cmd, Entrypoint, Shell): a list of strings or one string. Its
    UnmarshalJSON tries both, and reports the second failure: "... of type string"."""
    go = "strslice.StrSlice"

    def check(self, value, ctx) -> None:
        if value is None or isinstance(value, str):
            return
        if not (isinstance(value, list)
                and all(v is None or isinstance(v, str) for v in value)):
            raise _TypeError(_kind(value), "string", ctx)
        value[:] = ["" if v is None else v for v in value]


class Struct(_Type):
    """A Go struct: name is its package-qualified name ("container.HostConfig"); fields maps
    each JSON key to its type (embedded structs' fields promoted, as Go decodes them)."""

    def __init__(self, go: str, fields: dict[str, _Type]):
        self.go = go
        self.name = go.rpartition(".")[2]
        self.fields = fields

    def zero_value(self) -> dict:
        return {}

    def check(self, value, ctx) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            raise _TypeError(_kind(value), self.go, ctx)
        path = ctx[1]
        for key, item in value.items():
            field = self.fields.get(key)
            if field is not None:
                field.check(item, (self.name, path + (key,)))


EMPTY_STRUCT = Struct("struct {}", {})
STRING, BOOL = String(), Bool()
INT = Int("int", 64)
INT64 = Int("int64", 64)
UINT16 = Int("uint16", 16, signed=False)
UINT64 = Int("uint64", 64, signed=False)
DURATION = Int("time.Duration", 64)
STRINGS = Slice(STRING)
STRING_MAP = Map(STRING)

HEALTHCHECK = Struct("v1.HealthcheckConfig", {
    "Test": STRINGS, "Interval": DURATION, "Timeout": DURATION, "StartPeriod": DURATION,
    "StartInterval": DURATION, "Retries": INT})

# container.Config, promoted into the create body (CreateRequest embeds *Config)
CONFIG_FIELDS: dict[str, _Type] = {
    "Hostname": STRING, "Domainname": STRING, "User": STRING, "AttachStdin": BOOL,
    "AttachStdout": BOOL, "AttachStderr": BOOL,
    "ExposedPorts": Map(EMPTY_STRUCT, "nat.PortSet"), "Tty": BOOL, "OpenStdin": BOOL,
    "StdinOnce": BOOL, "Env": STRINGS, "Cmd": StrSlice(), "Healthcheck": HEALTHCHECK,
    "ArgsEscaped": BOOL, "Image": STRING, "Volumes": Map(EMPTY_STRUCT, "map[string]struct {}"),
    "WorkingDir": STRING, "Entrypoint": StrSlice(), "NetworkDisabled": BOOL,
    "MacAddress": STRING, "OnBuild": STRINGS, "Labels": STRING_MAP, "StopSignal": STRING,
    "StopTimeout": INT, "Shell": StrSlice(),
}

WEIGHT_DEVICE = Struct("blkiodev.WeightDevice", {"Path": STRING, "Weight": UINT16})
THROTTLE_DEVICE = Struct("blkiodev.ThrottleDevice", {"Path": STRING, "Rate": UINT64})
DEVICE_MAPPING = Struct("container.DeviceMapping", {
    "PathOnHost": STRING, "PathInContainer": STRING, "CgroupPermissions": STRING})
DEVICE_REQUEST = Struct("container.DeviceRequest", {
    "Driver": STRING, "Count": INT, "DeviceIDs": STRINGS,
    "Capabilities": Slice(STRINGS), "Options": STRING_MAP})
ULIMIT = Struct("units.Ulimit", {"Name": STRING, "Hard": INT64, "Soft": INT64})

# container.Resources: in HostConfig and in the update body (both embed it)
RESOURCES_FIELDS: dict[str, _Type] = {
    "CpuShares": INT64, "Memory": INT64, "NanoCpus": INT64, "CgroupParent": STRING,
    "BlkioWeight": UINT16, "BlkioWeightDevice": Slice(WEIGHT_DEVICE, "[]*blkiodev.WeightDevice"),
    **{key: Slice(THROTTLE_DEVICE, "[]*blkiodev.ThrottleDevice")
       for key in ("BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                   "BlkioDeviceWriteIOps")},
    "CpuPeriod": INT64, "CpuQuota": INT64, "CpuRealtimePeriod": INT64,
    "CpuRealtimeRuntime": INT64, "CpusetCpus": STRING, "CpusetMems": STRING,
    "Devices": Slice(DEVICE_MAPPING), "DeviceCgroupRules": STRINGS,
    "DeviceRequests": Slice(DEVICE_REQUEST), "MemoryReservation": INT64, "MemorySwap": INT64,
    "MemorySwappiness": INT64, "OomKillDisable": BOOL, "PidsLimit": INT64,
    "Ulimits": Slice(ULIMIT, "[]*units.Ulimit"), "CpuCount": INT64, "CpuPercent": INT64,
    "IOMaximumIOps": UINT64, "IOMaximumBandwidth": UINT64,
}

RESTART_POLICY = Struct("container.RestartPolicy", {
    "Name": String("container.RestartPolicyMode"), "MaximumRetryCount": INT})

MOUNT = Struct("mount.Mount", {
    "Type": String("mount.Type"), "Source": STRING, "Target": STRING, "ReadOnly": BOOL,
    "Consistency": String("mount.Consistency"),
    "BindOptions": Struct("mount.BindOptions", {
        "Propagation": String("mount.Propagation"), "NonRecursive": BOOL,
        "CreateMountpoint": BOOL, "ReadOnlyNonRecursive": BOOL,
        "ReadOnlyForceRecursive": BOOL}),
    "VolumeOptions": Struct("mount.VolumeOptions", {
        "NoCopy": BOOL, "Labels": STRING_MAP, "Subpath": STRING,
        "DriverConfig": Struct("mount.Driver", {"Name": STRING, "Options": STRING_MAP})}),
    "ImageOptions": Struct("mount.ImageOptions", {"Subpath": STRING}),
    "TmpfsOptions": Struct("mount.TmpfsOptions", {
        "SizeBytes": INT64, "Mode": Int("fs.FileMode", 32, signed=False),
        "Options": Slice(STRINGS)}),
    "ClusterOptions": Struct("mount.ClusterOptions", {}),
})

PORT_BINDING = Struct("nat.PortBinding", {"HostIp": STRING, "HostPort": STRING})

HOST_CONFIG = Struct("container.HostConfig", {
    "Binds": STRINGS, "ContainerIDFile": STRING,
    "LogConfig": Struct("container.LogConfig", {"Type": STRING, "Config": STRING_MAP}),
    "NetworkMode": String("container.NetworkMode"),
    "PortBindings": Map(Slice(PORT_BINDING), "nat.PortMap"),
    "RestartPolicy": RESTART_POLICY, "AutoRemove": BOOL, "VolumeDriver": STRING,
    "VolumesFrom": STRINGS, "ConsoleSize": Array(Int("uint", 64, signed=False), 2, "[2]uint"),
    "Annotations": STRING_MAP, "CapAdd": STRINGS, "CapDrop": STRINGS,
    "CgroupnsMode": String("container.CgroupnsMode"), "Dns": STRINGS, "DnsOptions": STRINGS,
    "DnsSearch": STRINGS, "ExtraHosts": STRINGS, "GroupAdd": STRINGS,
    "IpcMode": String("container.IpcMode"), "Cgroup": String("container.CgroupSpec"),
    "Links": STRINGS, "OomScoreAdj": INT, "PidMode": String("container.PidMode"),
    "Privileged": BOOL, "PublishAllPorts": BOOL, "ReadonlyRootfs": BOOL, "SecurityOpt": STRINGS,
    "StorageOpt": STRING_MAP, "Tmpfs": STRING_MAP, "UTSMode": String("container.UTSMode"),
    "UsernsMode": String("container.UsernsMode"), "ShmSize": INT64, "Sysctls": STRING_MAP,
    "Runtime": STRING, "Isolation": String("container.Isolation"),
    **RESOURCES_FIELDS,
    "Mounts": Slice(MOUNT), "MaskedPaths": STRINGS, "ReadonlyPaths": STRINGS, "Init": BOOL,
})

ENDPOINT_SETTINGS = Struct("network.EndpointSettings", {
    "IPAMConfig": Struct("network.EndpointIPAMConfig", {
        "IPv4Address": STRING, "IPv6Address": STRING, "LinkLocalIPs": STRINGS}),
    "Links": STRINGS, "Aliases": STRINGS, "MacAddress": STRING, "DriverOpts": STRING_MAP,
    "GwPriority": INT, "NetworkID": STRING, "EndpointID": STRING, "Gateway": STRING,
    "IPAddress": STRING, "IPPrefixLen": INT, "IPv6Gateway": STRING,
    "GlobalIPv6Address": STRING, "GlobalIPv6PrefixLen": INT, "DNSNames": STRINGS,
})

NETWORKING_CONFIG = Struct("network.NetworkingConfig", {
    "EndpointsConfig": Map(ENDPOINT_SETTINGS, "map[string]*network.EndpointSettings")})

# POST /containers/create
CREATE_REQUEST = Struct("container.CreateRequest", {
    **CONFIG_FIELDS, "HostConfig": HOST_CONFIG, "NetworkingConfig": NETWORKING_CONFIG})

# POST /containers/{id}/update
UPDATE_CONFIG = Struct("container.UpdateConfig", {
    **RESOURCES_FIELDS, "RestartPolicy": RESTART_POLICY})

CONSOLE_SIZE = Array(Int("uint", 64, signed=False), 2, "[2]uint")

# POST /containers/{id}/exec
EXEC_OPTIONS = Struct("container.ExecOptions", {
    "User": STRING, "Privileged": BOOL, "Tty": BOOL, "ConsoleSize": CONSOLE_SIZE,
    "AttachStdin": BOOL, "AttachStderr": BOOL, "AttachStdout": BOOL, "DetachKeys": STRING,
    "Env": STRINGS, "WorkingDir": STRING, "Cmd": STRINGS, "Detach": BOOL})

# POST /exec/{id}/start
EXEC_START = Struct("container.ExecStartOptions", {
    "Detach": BOOL, "Tty": BOOL, "ConsoleSize": CONSOLE_SIZE})


def check(body, struct: Struct) -> dict:
    """body, when every field has its declared type (an empty body is an empty object);
    else InvalidParameter (400) with dockerd's words, naming the field and its type."""
    if body is None:
        return {}
    try:
        struct.check(body, ("", ()))
    except _TypeError as e:
        raise InvalidParameter(f"invalid JSON: {e}") from None
    return body
