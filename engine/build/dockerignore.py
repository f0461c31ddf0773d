""".dockerignore files and their patterns, as the docker CLI and dockerd read and apply them
(moby/patternmatcher and its ignorefile package).

Interface:

    parse_dockerignore(text: str) -> list[str]
        The patterns of a .dockerignore: a UTF-8 BOM dropped; lines starting with "#" are
        comments (only in the first column: " #x" is a pattern); blank lines skipped; each
        pattern trimmed, "!" exceptions trimmed after the "!", cleaned as a path (a/./b//c ->
        a/b/c, a/../b -> b) and a leading "/" dropped.
    IgnoreMatcher(patterns: list[str])                 raises IgnoreError for a bad pattern
        .matches(path) -> bool: whether the context-relative path is excluded: the last
            pattern matching the path or one of its parent directories wins ("!" patterns
            re-include), so a pattern naming a directory excludes everything in it.
        .should_skip_dir(path) -> bool: for a walk, whether to leave out a whole excluded
            directory without looking inside: True when it is excluded and no "!" pattern can
            re-include something below it (an exception's text starts with "<dir>/"; docker's
            rule, so "!**/keep" cannot bring back files under an excluded directory).
        .has_exclusions: any "!" pattern; .raw: the patterns as given.
    keep_build_files(patterns, dockerfile_rel) -> list[str]
        The docker CLI's rule: .dockerignore and the Dockerfile are always sent, even when
        ignored ("!.dockerignore" and "!<dockerfile>" appended when they match), so dockerd
        can read them. dockerd then deletes them from the context it received if the
        original patterns match them, so COPY never copies an ignored Dockerfile (the builder
        must do that too: see engine/build/context.py's remove_ignored_build_files).

Pattern syntax: Go's filepath.Match (* any run within one path element, ? one character,
[...] classes, \\ escapes the next character) plus "**" for any number of directories
("**/x" matches x at any depth, "a/**" everything under a). Matching uses dockerd's fast
paths, so a pattern starting with "**" followed by literal text matches by suffix as dockerd's
does ("**.go" matches "a/b.go").
"""
from __future__ import annotations

import re

_REGEX_SPECIAL = set(".+()|{}$^")


class IgnoreError(ValueError):
    """A .dockerignore pattern that cannot be used."""


def go_clean(path: str) -> str:
    """Go's filepath.Clean: one slash between elements, no "." elements, ".." resolved
    lexically (kept at the start of a relative path), "." for nothing."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = "/".join(out)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


def parse_dockerignore(text: str) -> list[str]:
    patterns: list[str] = []
    for i, line in enumerate(text.split("\n")):
        line = line.rstrip("\r")
        if i == 0 and line.startswith("\ufeff"):
            line = line[1:]
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


def _check_syntax(pattern: str) -> None:
    """filepath.Match's syntax check: closed [...] classes whose ranges start with a character
    (not "-" or "]"), no dangling escape."""
    bad = IgnoreError(f"syntax error in pattern: {pattern!r}")
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise bad
            i += 2
        elif ch == "[":
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            while True:
                if i >= n or pattern[i] in "-]":
                    raise bad
                if pattern[i] == "\\":
                    i += 1
                    if i >= n:
                        raise bad
                i += 1
                if i < n and pattern[i] == "-":
                    i += 1
                    if i >= n or pattern[i] in "-]":
                        raise bad
                    if pattern[i] == "\\":
                        i += 1
                        if i >= n:
                            raise bad
                    i += 1
                if i < n and pattern[i] == "]":
                    i += 1
                    break
        else:
            i += 1                      # "]" outside a class is literal, as in Go


class _Pattern:
    """One pattern compiled the way patternmatcher does: exact, prefix ("a/**", "a**"),
    suffix ("**/a", "**a") or a regular expression."""

    def __init__(self, text: str, exclusion: bool):
        self.text = text
        self.exclusion = exclusion
        self.kind, self.regex = self._compile()

    def _compile(self) -> tuple[str, re.Pattern[str] | None]:
        kind = "exact"
        out = ["^"]
        p = self.text
        i = 0
        first = True
        in_class = False
        while i < len(p):
            ch = p[i]
            i += 1
            if in_class:
                # inside [...] ranges and "^" keep their meaning (checked by _check_syntax)
                if ch == "]":
                    in_class = False
                    out.append("]")
                elif ch == "\\" and i < len(p):
                    out.append(re.escape(p[i]))
                    i += 1
                elif ch in "-^":
                    out.append(ch)
                else:
                    out.append(re.escape(ch))
                first = False
                continue
            if ch == "*":
                if i < len(p) and p[i] == "*":
                    i += 1
                    if i < len(p) and p[i] == "/":
                        i += 1
                    if i >= len(p):
                        if kind == "exact":
                            kind = "prefix"
                        else:
                            out.append(".*")
                            kind = "regexp"
                    else:
                        out.append("(.*/)?")
                        kind = "regexp"
                    if first:
                        kind = "suffix"
                else:
                    out.append("[^/]*")
                    kind = "regexp"
            elif ch == "?":
                out.append("[^/]")
                kind = "regexp"
            elif ch in _REGEX_SPECIAL:
                out.append("\\" + ch)
            elif ch == "\\":
                if i < len(p):
                    out.append(re.escape(p[i]))
                    i += 1
                    kind = "regexp"
                else:
                    out.append("\\\\")
            elif ch == "[":
                out.append(ch)
                in_class = True
                kind = "regexp"
            elif ch == "]":
                out.append("\\]")             # literal outside a class, as in Go
            else:
                out.append(re.escape(ch))
            first = False
        if kind != "regexp":
            return kind, None
        try:
            return kind, re.compile("".join(out) + "$", re.DOTALL)
        except re.error:
            raise IgnoreError(f"syntax error in pattern: {self.text!r}") from None

    def match(self, path: str) -> bool:
        if self.kind == "exact":
            return path == self.text
        if self.kind == "prefix":
            return path.startswith(self.text[:-2])
        if self.kind == "suffix":
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix.startswith("/") and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


class IgnoreMatcher:
    """Excluded paths of a build context, from .dockerignore patterns (in their order)."""

    def __init__(self, patterns: list[str]):
        self.raw = list(patterns)           # as given, for keep_build_files
        self.patterns: list[_Pattern] = []
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = p.startswith("!")
            if exclusion:
                if len(p) == 1:
                    raise IgnoreError('illegal exclusion pattern: "!"')
                p = p[1:]
            _check_syntax(p)
            self.patterns.append(_Pattern(p, exclusion))
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    def matches(self, path: str) -> bool:
        path = go_clean(path)
        if path in (".", ""):
            return False
        parent = path.rpartition("/")[0] or "."
        parent_dirs = parent.split("/")
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue        # only a match can change the outcome: skip the others
            hit = pattern.match(path)
            if not hit and parent != ".":
                hit = any(pattern.match("/".join(parent_dirs[:i + 1]))
                          for i in range(len(parent_dirs)))
            if hit:
                matched = not pattern.exclusion
        return matched

    def should_skip_dir(self, path: str) -> bool:
        path = go_clean(path)
        if not self.matches(path):
            return False
        prefix = path + "/"
        return not any(p.exclusion and (p.text + "/").startswith(prefix)
                       for p in self.patterns)


def keep_build_files(patterns: list[str], dockerfile_rel: str) -> list[str]:
    """patterns plus the exceptions that keep .dockerignore and the Dockerfile in the
    context, as the docker CLI adds them before it makes the context tar."""
    out = list(patterns)
    matcher = IgnoreMatcher(patterns)
    if matcher.matches(".dockerignore"):
        out.append("!.dockerignore")
    dockerfile = go_clean(dockerfile_rel).lstrip("/")
    if matcher.matches(dockerfile):
        out.append("!" + dockerfile)
    return out
