"""JSON through the C accelerator alone.

`import json` pulls in `re` and `enum` and costs more than the rest of a `lowrt run`; `_json`,
the C module behind it, parses and encodes everything lowrt reads and writes on its hot paths
(config.json, state.json) without them. Pretty-printed output (`state`, `spec`) uses `json`.
"""
from __future__ import annotations

import _json


class _DecodeContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name.replace("Infinity", "inf"))


_scan = _json.make_scanner(_DecodeContext())
_WHITESPACE = " \t\n\r"


def loads(text: str | bytes) -> object:
    """Parse text; invalid JSON raises json.JSONDecodeError (a ValueError) with json's message."""
    if isinstance(text, bytes):
        text = text.decode()
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        obj, end = _scan(text, start)
        if not text[end:].strip(_WHITESPACE):
            return obj
    except Exception:  # noqa: BLE001 - the C scanner needs json.decoder loaded to say what is wrong
        pass
    import json
    return json.loads(text)


def _unencodable(obj: object) -> object:
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(None, _unencodable, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)
_encode_compact = _json.make_encoder(None, _unencodable, _json.encode_basestring_ascii, None,
                                     ":", ",", False, False, True)


def dumps(obj: object, *, compact: bool = False) -> str:
    return "".join((_encode_compact if compact else _encode)(obj, 0))


def dumps_indent(obj: object, indent: str = "  ", _level: int = 0) -> str:
    """Go's json.MarshalIndent layout, for what lowrt prints for people (`state`)."""
    pad = indent * (_level + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{pad}{dumps(str(k))}: {dumps_indent(v, indent, _level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent * _level + "}"
    if isinstance(obj, list) and obj:
        items = [pad + dumps_indent(v, indent, _level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + indent * _level + "]"
    return dumps(obj, compact=True)
