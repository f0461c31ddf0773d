"""berth's OpenAPI description (engine/api/openapi.py) against what berthd serves: every route
app.py registers is described and nothing else is, every field body_types declares is in the
body schemas with its type, every body a handler checks is described on that route, and every
query parameter a handler reads is described. A new route, field or parameter added without
its description fails here."""
from __future__ import annotations

import inspect
import re

import pytest

from engine import body_types as bt
from engine.api import app as app_module
from engine.api import openapi

DOC = openapi.build()
# the prefix as aiohttp's canonical form writes it: /v{api_version}
PREFIX = openapi.openapi_path(app_module.VERSION_PREFIX)


def _routes() -> set[tuple[str, str]]:
    """(METHOD, aiohttp path) of every route, the /vX.Y ones folded onto their plain path
    after checking that each has its plain twin."""
    app = app_module.make_app(daemon=None)
    plain, prefixed = set(), set()
    for route in app.router.routes():
        path = route.resource.canonical
        if path.startswith(PREFIX):
            prefixed.add((route.method, path[len(PREFIX):]))
        else:
            plain.add((route.method, path))
    assert prefixed == plain, "every route is served with and without the version prefix"
    return plain


def _handlers() -> dict[tuple[str, str], object]:
    app = app_module.make_app(daemon=None)
    return {(r.method, openapi.openapi_path(r.resource.canonical)): r.handler
            for r in app.router.routes()
            if not r.resource.canonical.startswith(PREFIX)}


def _described() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in DOC["paths"].items() for method in ops}


def test_every_route_is_described_and_nothing_else():
    served = {(m, openapi.openapi_path(p)) for m, p in _routes()}
    described = _described()
    assert served - described == set(), "routes berthd serves that the description lacks"
    assert described - served == set(), "described operations berthd does not serve"


def test_tables_name_only_described_operations():
    ops = set(openapi.RESPONSES)
    for table in (openapi.QUERY, openapi.BODIES, openapi.SUMMARIES):
        assert set(table) <= ops, set(table) - ops
    assert set(openapi.SUMMARIES) == ops


def _resolve(schema: dict) -> dict:
    """Follow a $ref (bare, or wrapped in allOf for nullability) to its component."""
    if "allOf" in schema:
        schema = schema["allOf"][0]
    ref = schema.get("$ref")
    if ref:
        return DOC["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def _walk(t: bt._Type, schema: dict, where: str) -> None:
    """The schema mirrors the type: each struct field present, each kind the JSON type Go
    decodes it from, integer limits those of its Go type."""
    schema = _resolve(schema)
    assert schema.get("nullable") is True or where.count(".") == 0, where
    if isinstance(t, bt.Struct):
        assert schema["type"] == "object", where
        props = schema["properties"]
        assert set(props) == set(t.fields), (where, set(t.fields) ^ set(props))
        for key, field in t.fields.items():
            _walk(field, props[key], f"{where}.{key}")
    elif isinstance(t, bt.Map):
        assert schema["type"] == "object", where
        _walk(t.elem, schema["additionalProperties"], f"{where}[*]")
    elif isinstance(t, bt.Slice):   # Array included
        assert schema["type"] == "array", where
        _walk(t.elem, schema["items"], f"{where}[]")
        if isinstance(t, bt.Array):
            assert schema["minItems"] == schema["maxItems"] == t.size, where
    elif isinstance(t, bt.StrSlice):
        kinds = sorted(s["type"] for s in schema["oneOf"])
        assert kinds == ["array", "string"], where
    elif isinstance(t, bt.Int):
        assert schema["type"] == "integer", where
        assert (schema["minimum"], schema["maximum"]) == (t.low, t.high), where
    elif isinstance(t, bt.Bool):
        assert schema["type"] == "boolean", where
    elif isinstance(t, bt.String):
        assert schema["type"] == "string", where
    else:
        pytest.fail(f"{where}: a body_types kind the test does not know: {type(t).__name__}")
    if t.go:
        assert schema.get("x-go-type") == t.go, where


@pytest.mark.parametrize("name", sorted(openapi.BODY_SCHEMAS))
def test_body_schema_mirrors_body_types(name):
    _walk(openapi.BODY_SCHEMAS[name], DOC["components"]["schemas"][name], name)


def _reachable(struct: bt.Struct, seen: set[int]) -> None:
    stack: list[bt._Type] = [struct]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        if isinstance(t, bt.Struct):
            stack.extend(t.fields.values())
        elif isinstance(t, (bt.Slice, bt.Map)):
            stack.append(t.elem)


def test_every_declared_struct_is_in_a_described_body():
    seen: set[int] = set()
    for struct in openapi.BODY_SCHEMAS.values():
        _reachable(struct, seen)
    for name, value in vars(bt).items():
        if isinstance(value, bt.Struct) and value is not bt.EMPTY_STRUCT:
            assert id(value) in seen, f"body_types.{name} is in no described request body"


def test_every_checked_body_is_described_on_its_route():
    by_struct = {id(s): name for name, s in openapi.BODY_SCHEMAS.items()}
    for key, handler in _handlers().items():
        source = inspect.getsource(handler)
        for struct_name in re.findall(r"body_types\.check\([^,]+,\s*body_types\.(\w+)\)",
                                      source):
            struct = getattr(bt, struct_name)
            assert id(struct) in by_struct, f"{key}: body_types.{struct_name} undescribed"
            assert openapi.BODIES.get(key) == by_struct[id(struct)], key
        if "read_json(" in source or "request.content" in source:
            assert key in openapi.BODIES, f"{key} reads a body the description lacks"


_QUERY_READ = re.compile(
    r"""(?:query(?:_bool|_int|_uint32)?\(request,\s*|query\.get(?:all)?\(|query\[)["']([\w-]+)["']""")


def test_every_query_parameter_a_handler_reads_is_described():
    for key, handler in _handlers().items():
        names = set(_QUERY_READ.findall(inspect.getsource(handler)))
        described = set(openapi.QUERY.get(key, {}))
        assert names <= described, f"{key[0]} {key[1]}: undescribed {names - described}"


def test_schemathesis_loads_it():
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(DOC)
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) == len(openapi.RESPONSES)
