"""berth's own OpenAPI 3.0 description of the endpoints berthd serves, built as a dict.

Written for this project from the Docker Engine API reference (names, types and limits are
facts of that API; the wording and layout are berth's). The request bodies berthd decodes
(create, update, exec create, exec start) are not written here: they are generated from
engine/body_types.py, the one declaration of each field's Go type that berthd checks bodies
against, so that the check and the description cannot drift apart. The paths, their query and
path parameters and the status codes each may answer are the small tables below.

Every path is also served under a /v{major}.{minor} prefix (engine/api/app.py); the
description lists each once, unprefixed, and says so in `info.description`.

tests/engine/test_openapi_contract.py walks this against app.py's routes and body_types;
tests/engine/test_fuzz_api.py fuzzes a private berthd with schemathesis from it.

    python -m engine.api.openapi > berth-openapi.json
"""
from __future__ import annotations

import json
import re
import sys

from .. import body_types as bt
from ..version import API_VERSION, VERSION
from . import image_archives, networks, volumes

# -- request bodies, from body_types ------------------------------------------------------

# Named schemas under components/schemas: the bodies and the structs worth a name of their own.
BODY_SCHEMAS: dict[str, bt.Struct] = {
    "ContainerCreateRequest": bt.CREATE_REQUEST,
    "ContainerUpdateRequest": bt.UPDATE_CONFIG,
    "ExecCreateRequest": bt.EXEC_OPTIONS,
    "ExecStartRequest": bt.EXEC_START,
}
# bodies whose declaration lives beside their handler, not in body_types (checked with it)
HANDLER_BODY_SCHEMAS: dict[str, bt.Struct] = {
    "VolumeCreateRequest": volumes.CREATE_OPTIONS,
    "NetworkCreateRequest": networks.CREATE_REQUEST,
    "NetworkConnectRequest": networks.CONNECT_REQUEST,
    "NetworkDisconnectRequest": networks.DISCONNECT_REQUEST,
    "CommitConfig": image_archives.COMMIT_CONFIG,
}
NAMED_STRUCTS: dict[str, bt.Struct] = {
    "HostConfig": bt.HOST_CONFIG,
    "NetworkingConfig": bt.NETWORKING_CONFIG,
    "EndpointSettings": bt.ENDPOINT_SETTINGS,
    "HealthConfig": bt.HEALTHCHECK,
    "RestartPolicy": bt.RESTART_POLICY,
    "Mount": bt.MOUNT,
}


def type_schema(t: bt._Type, refs: dict[int, str] | None = None) -> dict:
    """The JSON schema of one body_types type. Every value may be null, as Go accepts null for
    any field (it leaves the zero value); unknown object keys are allowed, as Go ignores them.
    refs maps id(struct) to a component name to point at instead of inlining it."""
    refs = refs or {}
    if isinstance(t, bt.Struct) and id(t) in refs:
        # OpenAPI 3.0 ignores siblings of $ref, so nullability rides on an allOf
        return {"allOf": [{"$ref": f"#/components/schemas/{refs[id(t)]}"}], "nullable": True}
    schema: dict
    if isinstance(t, bt.Bool):
        schema = {"type": "boolean"}
    elif isinstance(t, bt.Int):
        schema = {"type": "integer", "minimum": t.low, "maximum": t.high}
        if t.go in ("int64", "time.Duration", "uint64", "int", "uint"):
            schema["format"] = "int64"
        elif t.go == "uint16" or t.high < 1 << 32:
            schema["format"] = "int32"
    elif isinstance(t, bt.String):
        schema = {"type": "string"}
    elif isinstance(t, bt.StrSlice):
        # Cmd, Entrypoint, Shell: one string or a list of strings
        schema = {"oneOf": [{"type": "string"},
                            {"type": "array", "items": {"type": "string", "nullable": True}}]}
    elif isinstance(t, bt.Array):
        schema = {"type": "array", "items": type_schema(t.elem, refs),
                  "minItems": t.size, "maxItems": t.size}
    elif isinstance(t, bt.Slice):
        schema = {"type": "array", "items": type_schema(t.elem, refs)}
    elif isinstance(t, bt.Map):
        schema = {"type": "object", "additionalProperties": type_schema(t.elem, refs)}
    elif isinstance(t, bt.Struct):
        schema = {"type": "object",
                  "properties": {k: type_schema(v, refs) for k, v in t.fields.items()}}
    else:  # a new kind of type in body_types: describe it before serving it
        raise TypeError(f"no schema for {type(t).__name__}")
    schema["nullable"] = True
    if t.go:
        schema["x-go-type"] = t.go
    return schema


def component_schemas() -> dict[str, dict]:
    refs = {id(s): name for name, s in NAMED_STRUCTS.items()}
    out = {}
    for name, struct in {**BODY_SCHEMAS, **NAMED_STRUCTS}.items():
        inner = {k: v for k, v in refs.items() if k != id(struct)}
        out[name] = type_schema(struct, inner)
    for name, struct in HANDLER_BODY_SCHEMAS.items():
        out[name] = type_schema(struct, refs)
    for name in (*BODY_SCHEMAS, *HANDLER_BODY_SCHEMAS):
        out[name]["nullable"] = False   # the body itself: an object (an empty body is {})
    return out


# -- parameters ---------------------------------------------------------------------------

BOOL, INT, STR = {"type": "boolean"}, {"type": "integer", "format": "int64"}, {"type": "string"}
UINT32 = {"type": "integer", "minimum": 0, "maximum": (1 << 32) - 1}
FILTERS = {"type": "string", "description": "JSON: map[string][]string or map[string]map[string]bool"}

# A container's id, id prefix or name; an exec's id. A slash would make another path.
ID_PARAM = {"type": "string", "pattern": "^[^/]+$"}

# query parameters by (method, path): name -> (schema, required)
Q = dict[str, tuple[dict, bool]]
QUERY: dict[tuple[str, str], Q] = {
    ("POST", "/containers/prune"): {"filters": (FILTERS, False)},
    ("POST", "/images/prune"): {"filters": (FILTERS, False)},
    ("POST", "/containers/create"): {"name": ({"type": "string"}, False),
                                     "platform": (STR, False)},
    ("GET", "/containers/json"): {"all": (BOOL, False), "limit": (INT, False),
                                  "size": (BOOL, False), "filters": (FILTERS, False)},
    ("GET", "/containers/{name}/json"): {"size": (BOOL, False)},
    ("POST", "/containers/{name}/start"): {"detachKeys": (STR, False)},
    ("POST", "/containers/{name}/wait"): {
        "condition": ({"type": "string", "enum": ["not-running", "next-exit", "removed"]},
                      False)},
    ("POST", "/containers/{name}/attach"): {
        "detachKeys": (STR, False), "logs": (BOOL, False), "stream": (BOOL, False),
        "stdin": (BOOL, False), "stdout": (BOOL, False), "stderr": (BOOL, False)},
    ("POST", "/containers/{name}/resize"): {"h": (UINT32, True), "w": (UINT32, True)},
    ("GET", "/containers/{name}/logs"): {
        "follow": (BOOL, False), "stdout": (BOOL, False), "stderr": (BOOL, False),
        "since": (INT, False), "until": (INT, False), "timestamps": (BOOL, False),
        "details": (BOOL, False), "tail": (STR, False)},
    ("POST", "/containers/{name}/kill"): {"signal": (STR, False)},
    ("POST", "/containers/{name}/stop"): {"signal": (STR, False), "t": (INT, False)},
    ("POST", "/containers/{name}/restart"): {"signal": (STR, False), "t": (INT, False)},
    ("POST", "/containers/{name}/rename"): {"name": (STR, True)},
    ("DELETE", "/containers/{name}"): {"v": (BOOL, False), "force": (BOOL, False),
                                       "link": (BOOL, False)},
    ("POST", "/exec/{id}/resize"): {"h": (UINT32, True), "w": (UINT32, True)},
    ("GET", "/containers/{name}/stats"): {"stream": (BOOL, False), "one-shot": (BOOL, False)},
    ("GET", "/containers/{name}/top"): {"ps_args": (STR, False)},
    ("GET", "/events"): {"since": (STR, False), "until": (STR, False),
                         "filters": (FILTERS, False)},
    ("GET", "/images/json"): {"all": (BOOL, False), "filters": (FILTERS, False),
                              "shared-size": (BOOL, False), "digests": (BOOL, False)},
    ("POST", "/images/create"): {"fromImage": (STR, False), "fromSrc": (STR, False),
                                 "repo": (STR, False), "tag": (STR, False),
                                 "message": (STR, False), "platform": (STR, False),
                                 "changes": (STR, False)},
    ("GET", "/images/get"): {"names": (STR, True), "platform": (STR, False)},
    ("GET", "/images/{name}/get"): {"platform": (STR, False)},
    ("POST", "/images/load"): {"quiet": (BOOL, False), "platform": (STR, False)},
    ("POST", "/build"): {
        "t": ({"type": "array", "items": STR}, False), "dockerfile": (STR, False),
        "q": (BOOL, False), "nocache": (BOOL, False), "pull": (BOOL, False),
        "rm": (BOOL, False), "forcerm": (BOOL, False),
        "buildargs": ({**STR, "description": "JSON: map[string]string"}, False),
        "labels": ({**STR, "description": "JSON: map[string]string"}, False),
        "target": (STR, False), "networkmode": (STR, False),
        "platform": ({**STR, "description": "the host's platform only"}, False),
        "remote": ({**STR, "description": "refused: berthd downloads nothing"}, False),
        "version": ({**STR, "description": "1 (the classic builder); 2 refused"}, False),
        "squash": ({**BOOL, "description": "refused (experimental in dockerd)"}, False),
        "cachefrom": ({**STR, "description": "JSON list; refused when not empty"}, False),
        "isolation": (STR, False), "shmsize": (INT, False), "memory": (INT, False),
        "memswap": (INT, False), "cpushares": (INT, False), "cpuperiod": (INT, False),
        "cpuquota": (INT, False), "cpusetcpus": (STR, False), "cpusetmems": (STR, False),
        "cgroupparent": (STR, False), "extrahosts": (STR, False),
        "ulimits": ({**STR, "description": "JSON list of ulimits"}, False)},
    ("POST", "/commit"): {"container": (STR, True), "repo": (STR, False), "tag": (STR, False),
                          "comment": (STR, False), "author": (STR, False),
                          "pause": (BOOL, False), "changes": (STR, False)},
    ("POST", "/images/{name}/tag"): {"repo": (STR, False), "tag": (STR, False)},
    ("POST", "/images/{name}/push"): {"tag": (STR, False)},
    ("DELETE", "/images/{name}"): {"force": (BOOL, False), "noprune": (BOOL, False)},
    ("GET", "/containers/{name}/archive"): {"path": (STR, True)},
    ("HEAD", "/containers/{name}/archive"): {"path": (STR, True)},
    ("PUT", "/containers/{name}/archive"): {"path": (STR, True),
                                            "noOverwriteDirNonDir": (BOOL, False),
                                            "copyUIDGID": (BOOL, False)},
    ("GET", "/system/df"): {
        "type": ({"type": "array", "items": {
            "type": "string", "enum": ["container", "image", "volume", "build-cache"]}},
                 False)},
    ("GET", "/volumes"): {"filters": (FILTERS, False)},
    ("DELETE", "/volumes/{name}"): {"force": (BOOL, False)},
    ("POST", "/volumes/prune"): {"filters": (FILTERS, False)},
    ("GET", "/networks"): {"filters": (FILTERS, False)},
    ("POST", "/networks/prune"): {"filters": (FILTERS, False)},
}

# request bodies by (method, path): a component name, or a raw media type
BODIES: dict[tuple[str, str], str] = {
    ("POST", "/containers/create"): "ContainerCreateRequest",
    ("POST", "/containers/{name}/update"): "ContainerUpdateRequest",
    ("POST", "/containers/{name}/exec"): "ExecCreateRequest",
    ("POST", "/exec/{id}/start"): "ExecStartRequest",
    ("PUT", "/containers/{name}/archive"): "application/x-tar",
    ("POST", "/volumes/create"): "VolumeCreateRequest",
    ("POST", "/networks/create"): "NetworkCreateRequest",
    ("POST", "/networks/{id}/connect"): "NetworkConnectRequest",
    ("POST", "/networks/{id}/disconnect"): "NetworkDisconnectRequest",
    ("POST", "/images/load"): "application/x-tar",
    ("POST", "/build"): "application/x-tar",
    ("POST", "/commit"): "CommitConfig",
}

# -- responses ----------------------------------------------------------------------------

REASONS = {101: "switching protocols: the connection is hijacked for the stream",
           200: "no error", 201: "created", 204: "no error", 304: "already in that state",
           400: "bad parameter (for a container: also an ambiguous id prefix)",
           401: "the registry refused the credentials",
           403: "refused: the path is read-only, or a pre-defined or busy network",
           404: "no such container, exec, image, volume or network (or driver)",
           409: "conflict with the object's state (for an image: an ambiguous id prefix)",
           413: "request body too large", 500: "server error",
           501: "not implemented by berth"}

# status codes by (method, path); 500 is listed where dockerd lists it, and the fuzz test
# fails on it anyway. A path with a parameter may also answer 404 "page not found".
RESPONSES: dict[tuple[str, str], tuple[int, ...]] = {
    ("GET", "/_ping"): (200,),
    ("HEAD", "/_ping"): (200,),
    ("GET", "/version"): (200,),
    ("GET", "/info"): (200,),
    ("POST", "/containers/prune"): (200, 400, 500),
    ("POST", "/containers/create"): (201, 400, 404, 409, 413, 500, 501),
    ("GET", "/containers/json"): (200, 400, 404, 500),
    ("GET", "/containers/{name}/json"): (200, 404, 500),
    ("POST", "/containers/{name}/start"): (204, 304, 400, 404, 409, 500),
    ("POST", "/containers/{name}/wait"): (200, 400, 404, 500),
    ("POST", "/containers/{name}/attach"): (101, 200, 400, 404, 409, 500),
    ("POST", "/containers/{name}/resize"): (200, 400, 404, 409, 500),
    ("GET", "/containers/{name}/logs"): (200, 400, 404, 500, 501),
    ("POST", "/containers/{name}/kill"): (204, 400, 404, 409, 500),
    ("POST", "/containers/{name}/stop"): (204, 304, 400, 404, 500),
    ("POST", "/containers/{name}/restart"): (204, 400, 404, 500),
    ("POST", "/containers/{name}/pause"): (204, 404, 409, 500),
    ("POST", "/containers/{name}/unpause"): (204, 404, 409, 500),
    ("POST", "/containers/{name}/rename"): (204, 400, 404, 409, 500),
    ("POST", "/containers/{name}/update"): (200, 400, 404, 409, 413, 500),
    ("DELETE", "/containers/{name}"): (204, 400, 404, 409, 500),
    ("POST", "/containers/{name}/exec"): (201, 400, 404, 409, 413, 500),
    ("POST", "/exec/{id}/start"): (101, 200, 400, 404, 409, 413, 500),
    ("POST", "/exec/{id}/resize"): (200, 201, 400, 404, 409, 500),
    ("GET", "/exec/{id}/json"): (200, 404, 500),
    ("GET", "/containers/{name}/stats"): (200, 400, 404, 409, 500),
    ("GET", "/containers/{name}/top"): (200, 400, 404, 409, 500),
    ("GET", "/events"): (200, 400, 500),
    ("GET", "/images/json"): (200, 400, 404, 500),
    ("POST", "/images/prune"): (200, 400, 500),
    ("POST", "/images/create"): (200, 400, 404, 500, 501),
    ("GET", "/images/{name}/json"): (200, 400, 404, 409, 500),
    ("POST", "/images/{name}/tag"): (201, 400, 404, 409, 500),
    ("POST", "/images/{name}/push"): (200, 400, 404, 500),
    ("POST", "/auth"): (200, 400, 401, 500),
    ("DELETE", "/images/{name}"): (200, 400, 404, 409, 500),
    ("GET", "/images/get"): (200, 400, 404, 500),
    ("GET", "/images/{name}/get"): (200, 400, 404, 500),
    ("POST", "/images/load"): (200, 400, 500),
    ("POST", "/build"): (200, 400, 404, 500),
    ("GET", "/images/{name}/history"): (200, 400, 404, 500),
    ("POST", "/commit"): (201, 400, 404, 409, 500),
    ("GET", "/containers/{name}/archive"): (200, 400, 404, 500),
    ("HEAD", "/containers/{name}/archive"): (200, 400, 404, 500),
    ("PUT", "/containers/{name}/archive"): (200, 400, 403, 404, 409, 500),
    ("GET", "/containers/{name}/export"): (200, 404, 500),
    ("GET", "/containers/{name}/changes"): (200, 404, 500),
    ("GET", "/system/df"): (200, 400, 500),
    ("POST", "/volumes/create"): (201, 400, 404, 409, 413, 500),
    ("GET", "/volumes"): (200, 400, 500),
    ("GET", "/volumes/{name}"): (200, 404, 500),
    ("DELETE", "/volumes/{name}"): (204, 404, 409, 500),
    ("POST", "/volumes/prune"): (200, 400, 500),
    ("POST", "/networks/create"): (201, 400, 403, 404, 409, 413, 500),
    ("GET", "/networks"): (200, 400, 500),
    ("POST", "/networks/prune"): (200, 400, 500),
    ("GET", "/networks/{id}"): (200, 400, 404, 500),
    ("DELETE", "/networks/{id}"): (204, 400, 403, 404, 500),
    ("POST", "/networks/{id}/connect"): (200, 400, 403, 404, 409, 413, 500),
    ("POST", "/networks/{id}/disconnect"): (200, 400, 403, 404, 409, 413, 500),
}

SUMMARIES = {
    ("GET", "/_ping"): "Ping", ("HEAD", "/_ping"): "Ping (headers only)",
    ("GET", "/version"): "Version", ("GET", "/info"): "System information",
    ("POST", "/containers/prune"): "Remove stopped containers",
    ("POST", "/containers/create"): "Create a container",
    ("GET", "/containers/json"): "List containers",
    ("GET", "/containers/{name}/json"): "Inspect a container",
    ("POST", "/containers/{name}/start"): "Start a container",
    ("POST", "/containers/{name}/wait"): "Wait for a container",
    ("POST", "/containers/{name}/attach"): "Attach to a container",
    ("POST", "/containers/{name}/resize"): "Resize a container's TTY",
    ("GET", "/containers/{name}/logs"): "A container's logs",
    ("POST", "/containers/{name}/kill"): "Signal a container",
    ("POST", "/containers/{name}/stop"): "Stop a container",
    ("POST", "/containers/{name}/restart"): "Restart a container",
    ("POST", "/containers/{name}/pause"): "Pause a container",
    ("POST", "/containers/{name}/unpause"): "Unpause a container",
    ("POST", "/containers/{name}/rename"): "Rename a container",
    ("POST", "/containers/{name}/update"): "Update a container's resources",
    ("DELETE", "/containers/{name}"): "Remove a container",
    ("POST", "/containers/{name}/exec"): "Create an exec instance",
    ("POST", "/exec/{id}/start"): "Start an exec instance",
    ("POST", "/exec/{id}/resize"): "Resize an exec's TTY",
    ("GET", "/exec/{id}/json"): "Inspect an exec instance",
    ("GET", "/containers/{name}/stats"): "A container's resource usage",
    ("GET", "/containers/{name}/top"): "A container's processes",
    ("GET", "/events"): "Monitor events",
    ("GET", "/images/json"): "List images",
    ("POST", "/images/prune"): "Remove unused images",
    ("POST", "/images/create"): "Pull an image from a registry, or import one",
    ("POST", "/images/{name}/push"): "Push an image to a registry",
    ("POST", "/auth"): "Check a registry's credentials (docker login)",
    ("GET", "/images/{name}/json"): "Inspect an image",
    ("POST", "/images/{name}/tag"): "Tag an image",
    ("DELETE", "/images/{name}"): "Remove an image",
    ("GET", "/images/get"): "Export images (docker save)",
    ("GET", "/images/{name}/get"): "Export an image (docker save)",
    ("POST", "/images/load"): "Import images from a docker save archive",
    ("POST", "/build"): "Build an image from a Dockerfile (the classic builder's API)",
    ("GET", "/images/{name}/history"): "An image's history",
    ("POST", "/commit"): "Create an image from a container's changes",
    ("GET", "/containers/{name}/archive"): "A tar of a path in a container",
    ("HEAD", "/containers/{name}/archive"): "Stat a path in a container",
    ("PUT", "/containers/{name}/archive"): "Extract a tar into a container",
    ("GET", "/containers/{name}/export"): "Export a container's filesystem",
    ("GET", "/containers/{name}/changes"): "A container's filesystem changes",
    ("GET", "/system/df"): "Disk usage",
    ("POST", "/volumes/create"): "Create a volume",
    ("GET", "/volumes"): "List volumes",
    ("GET", "/volumes/{name}"): "Inspect a volume",
    ("DELETE", "/volumes/{name}"): "Remove a volume",
    ("POST", "/volumes/prune"): "Remove unused volumes",
    ("POST", "/networks/create"): "Create a network",
    ("GET", "/networks"): "List networks",
    ("POST", "/networks/prune"): "Remove unused networks",
    ("GET", "/networks/{id}"): "Inspect a network",
    ("DELETE", "/networks/{id}"): "Remove a network",
    ("POST", "/networks/{id}/connect"): "Connect a container to a network",
    ("POST", "/networks/{id}/disconnect"): "Disconnect a container from a network",
}

_STREAMS = {"application/json": {"schema": {}}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def openapi_path(aiohttp_path: str) -> str:
    """An aiohttp route's path as an OpenAPI template: {name:.+} -> {name}."""
    return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", aiohttp_path)


def _operation(method: str, path: str) -> dict:
    key = (method, path)
    params = [{"name": name, "in": "path", "required": True,
               "schema": dict(STR if path.startswith("/images/") else ID_PARAM)}
              for name in re.findall(r"\{(\w+)\}", path)]
    params += [{"name": name, "in": "query", "required": required, "schema": schema,
                **({"style": "form", "explode": True} if schema.get("type") == "array" else {})}
               for name, (schema, required) in QUERY.get(key, {}).items()]
    op: dict = {"summary": SUMMARIES[key],
                "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}",
                "parameters": params, "responses": {}}
    body = BODIES.get(key)
    if body == "application/x-tar":
        op["requestBody"] = {"required": True, "content": {body: _BINARY}}
    elif body:
        op["requestBody"] = {"required": False, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
    codes = set(RESPONSES[key])
    if path.startswith("/containers/{name}"):
        codes.add(400)      # an id prefix that several containers share (dockerd's 400 too)
    for code in sorted(codes):
        resp: dict = {"description": REASONS[code]}
        if code >= 400:
            resp["content"] = {"application/json": {
                "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        op["responses"][str(code)] = resp
    return op


def build() -> dict:
    """The whole description, as a dict ready for json.dumps."""
    paths: dict[str, dict] = {}
    for method, path in RESPONSES:
        paths.setdefault(path, {})[method.lower()] = _operation(method, path)
    schemas = component_schemas()
    schemas["ErrorResponse"] = {"type": "object", "required": ["message"],
                                "properties": {"message": {"type": "string"}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "berthd Engine API",
            "version": API_VERSION,
            "description": (
                f"The Docker Engine API as berthd {VERSION} serves it: the endpoints the docker "
                "CLI and docker-py use. Every path is also served under /v{major}.{minor}. "
                "Request bodies are generated from engine/body_types.py (x-go-type: the Go "
                "type dockerd decodes a field into); errors are {\"message\": ...}."),
        },
        "servers": [{"url": "http://localhost"}],
        "paths": paths,
        "components": {"schemas": schemas},
    }


def main() -> None:
    json.dump(build(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
