"""containerd's filter syntax, for Events.Subscribe, Containers.List and Tasks.Metrics.

A filter is selectors joined by `,` (all must match); a request's several filters are alternatives
(any may match; none means everything). A selector is `fieldpath`, `fieldpath==value`,
`fieldpath!=value` or `fieldpath~=regexp`; field path parts are joined by `.` and may be quoted
(`labels."a.b"==x`), values may be quoted with `"` (backslash escapes), a regexp also with
`/` or `|` (`topic~=|^/tasks/|`); an unquoted value runs to the next `,`.
A bare field path matches when the field is present.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from supervisor.errors import InvalidArgument

# An adaptor answers (value, present) for a field path of the object being filtered.
Adaptor = Callable[[list[str]], tuple[str, bool]]

_OPERATORS = ("==", "!=", "~=")
_FIELD_CHARS = re.compile(r"[A-Za-z0-9_\-/:@]")


@dataclass(frozen=True)
class Selector:
    fieldpath: tuple[str, ...]
    operator: str = ""          # "" means presence
    value: str = ""
    regexp: re.Pattern | None = None

    def match(self, adaptor: Adaptor) -> bool:
        value, present = adaptor(list(self.fieldpath))
        if self.operator == "":
            return present
        if self.operator == "==":
            return present and value == self.value
        if self.operator == "!=":
            return not present or value != self.value
        return present and self.regexp is not None and self.regexp.search(value) is not None


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def fail(self, what: str):
        raise InvalidArgument(f'filters: invalid filter "{self.text}": {what} at position {self.pos}')

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos:self.pos + n]

    def quoted(self, quote: str) -> str:
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == '\\' and quote == '"' and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                self.pos += 2
                continue
            if ch == quote:
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        self.fail(f"unterminated quote {quote}")

    def _alt_quoted(self) -> bool:
        """A regexp quoted with / or | (containerd's alternative quotes): the value up to the
        next `,` starts and ends with the quote. Anything else starting with / is a plain value,
        so `topic==/tasks/exit` works unquoted (containerd itself refuses it)."""
        quote = self.peek()
        if quote not in ("/", "|"):
            return False
        end = self.text.find(",", self.pos)
        value = self.text[self.pos:end if end >= 0 else len(self.text)].rstrip()
        return len(value) >= 2 and value.endswith(quote)

    def field(self) -> str:
        if self.peek() == '"':
            return self.quoted('"')
        start = self.pos
        while self.pos < len(self.text) and _FIELD_CHARS.match(self.text[self.pos]):
            self.pos += 1
        if self.pos == start:
            self.fail("expected a field name")
        return self.text[start:self.pos]

    def selector(self) -> Selector:
        path = [self.field()]
        while self.peek() == ".":
            self.pos += 1
            path.append(self.field())
        op = self.peek(2)
        if op not in _OPERATORS:
            if self.pos < len(self.text) and self.peek() != ",":
                self.fail("expected an operator (==, !=, ~=) or ','")
            return Selector(tuple(path))
        self.pos += 2
        if self.peek() == '"':
            value = self.quoted('"')
        elif op == "~=" and self._alt_quoted():
            end = self.text.find(",", self.pos)
            end = len(self.text) if end < 0 else end
            raw = self.text[self.pos:end].rstrip()
            value = raw[1:-1]
            self.pos += len(raw)
        else:
            start = self.pos
            while self.pos < len(self.text) and self.text[self.pos] != ",":
                self.pos += 1
            value = self.text[start:self.pos].strip()
        regexp = None
        if op == "~=":
            try:
                regexp = re.compile(value)
            except re.error as e:
                self.fail(f'bad regular expression "{value}" ({e})')
        return Selector(tuple(path), op, value, regexp)

    def parse(self) -> list[Selector]:
        selectors = [self.selector()]
        while self.pos < len(self.text):
            if self.peek() != ",":
                self.fail("expected ','")
            self.pos += 1
            selectors.append(self.selector())
        return selectors


class Filter:
    """Parsed filters; `match(adaptor)` is true when any filter's selectors all match."""

    def __init__(self, filters: Iterable[str] = ()):
        self.alternatives = [_Parser(f.strip()).parse() for f in filters if f.strip()]

    def match(self, adaptor: Adaptor) -> bool:
        if not self.alternatives:
            return True
        return any(all(s.match(adaptor) for s in alt) for alt in self.alternatives)


def parse(filters: Iterable[str]) -> Filter:
    return Filter(filters)


def mapping_adaptor(fields: dict) -> Adaptor:
    """An adaptor over nested dicts: a path walks the keys; scalars compare as strings (booleans
    lowercase, as containerd prints them)."""
    def adapt(path: list[str]) -> tuple[str, bool]:
        value = fields
        for part in path:
            if not isinstance(value, dict) or part not in value:
                return "", False
            value = value[part]
        if isinstance(value, dict):
            return "", True
        if isinstance(value, bool):
            return ("true" if value else "false"), True
        return str(value), True
    return adapt
