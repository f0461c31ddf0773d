"""Dockerfile parsing as dockerd's classic builder does it (its vendored BuildKit parser and
instructions packages), minus what only BuildKit can carry out.

Interface (used by engine/build/builder.py):

    parse(text: str, name: str = "Dockerfile") -> Dockerfile      raises DockerfileError
    Dockerfile: instructions (all, in order), escape ("\\" or "`"), meta_args (the ARGs
        before the first FROM), stages (list[Stage]), warnings (lines to print to the build's
        stderr, as dockerd's PrintWarnings: empty continuation lines).
    Stage: name (lower-cased AS name or None), base (FROM's image text, unexpanded),
        platform (--platform text, unexpanded, or None), index (0-based), instructions (after
        its FROM), original (the FROM line).
    Instruction: cmd (upper case), args, json, flags, flag_list, original, line, sub.
    classic_refusal(ins) -> str | None: the error dockerd's classic builder (or berth, where
        dockerd would silently ignore a flag) gives when dispatching ins, else None.

What args holds, per cmd (nothing is expanded here: see expand.py for which are, and when):
    FROM         [image] or [image, "AS", name] ("AS" as written); flags: platform.
    RUN, CMD, ENTRYPOINT, SHELL
                 json: the array's strings; shell form: [the raw text after the flags]
                 ([] when empty). SHELL must be JSON.
    HEALTHCHECK  ["NONE"] or ["CMD", ...]: after "CMD", as RUN (json tells which form);
                 flags: interval, timeout, start-period, start-interval (Go durations,
                 checked here, >= 1ms or 0), retries (integer >= 0).
    ENV, LABEL   [k1, v1, k2, v2, ...], keys and values as written (quotes and escapes still
                 in them: expand() each). The old form "ENV k v w" gives [k, "v w"] (the rest
                 of the line, raw).
    ARG          each word as written: "NAME" or "NAME=default" (split on the first "=").
    ADD, COPY    json: the strings; else whitespace-split words. The last is the destination.
                 flags: chown, chmod, link, (ADD) keep-git-dir, checksum, unpack, exclude;
                 (COPY) from, parents, exclude.
    EXPOSE       whitespace-split words, sorted (dockerd sorts them).
    VOLUME       json: the strings; else whitespace-split words.
    USER, WORKDIR, STOPSIGNAL, MAINTAINER
                 [the whole raw text] (one argument even with spaces: "USER a b" is ["a b"]).
    ONBUILD      [the trigger text: original minus "ONBUILD"]; .sub is the trigger parsed
                 (None when it does not parse: dockerd only finds out when the trigger fires).
flags: {name: value} without the leading "--"; a bool flag given bare is "true"; flag_list
keeps every (name, value) in order (exclude, mount, device may repeat).
original: the instruction as written, continuation lines joined with the escape character
and newline removed, stripped: what dockerd prints after "Step N/M : ".
line: the 1-based line the instruction starts on.

Errors carry dockerd's text: "failed to parse Dockerfile: ..." for what its line parser
refuses (bad parser directive, JSON array with non-strings, ENV/LABEL without a value, no
instructions), "dockerfile parse error on line N: ..." for what its instruction parser refuses
(unknown instruction, argument counts, flags; an unknown name gets BuildKit's "(did you
mean X?)" when one is close), "the Dockerfile (Dockerfile) cannot be empty"
for an empty file, and "no build stage in current context" for an instruction before FROM.
The wording is current dockerd's (API 1.50, BuildKit's parser vendored): "unknown flag:
--bogus", where dockerd 20.10 said "Unknown flag: bogus".

Heredocs (RUN <<EOF, COPY <<EOF /dst) are refused. dockerd's parser reads their bodies but its
classic builder never uses them: RUN runs only the first line ("<<EOF": a no-op) and COPY copies
nothing for a heredoc source, so accepting them would build the wrong image without a word.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

INSTRUCTIONS = ("ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM",
                "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL",
                "USER", "VOLUME", "WORKDIR")

# Flag types per instruction, as BuildKit's instruction parser declares them ("string" needs
# a value, "bool" may go bare, "strings" may repeat). dockerd's classic builder accepts these
# at parse time and refuses some when dispatching (classic_refusal).
_FLAGS: dict[str, dict[str, str]] = {
    "ADD": {"chown": "string", "chmod": "string", "link": "bool", "keep-git-dir": "bool",
            "checksum": "string", "unpack": "bool", "exclude": "strings"},
    "COPY": {"chown": "string", "from": "string", "chmod": "string", "link": "bool",
             "exclude": "strings", "parents": "bool"},
    "FROM": {"platform": "string"},
    "RUN": {"mount": "strings", "network": "string", "security": "string",
            "device": "strings"},
    "HEALTHCHECK": {"interval": "string", "timeout": "string", "start-period": "string",
                    "start-interval": "string", "retries": "string"},
}

_BUILDKIT_HINT = ("requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn "
                  "how to build images with BuildKit enabled")

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_DIRECTIVE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_VALID_DIRECTIVES = ("escape", "syntax", "check")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_HEREDOC = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$")
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)
_MAX_LINE = 64 * 1024 - 1         # bufio.MaxScanTokenSize - 1, dockerd's line limit
_DURATION = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}


class DockerfileError(ValueError):
    """A Dockerfile dockerd would refuse; str() is dockerd's message, line the 1-based line
    it concerns (None where there is none)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class _LineError(Exception):
    """An error of the line parser, before "failed to parse Dockerfile: " is put on it."""


@dataclass
class Instruction:
    """One instruction; what each field holds per cmd is in the module docstring."""

    cmd: str
    args: list[str]
    json: bool
    flags: dict[str, str]
    original: str
    line: int
    flag_list: list[tuple[str, str]] = field(default_factory=list)
    sub: Instruction | None = None


@dataclass
class Stage:
    """A FROM and the instructions up to the next FROM."""

    name: str | None
    base: str
    platform: str | None
    index: int
    instructions: list[Instruction]
    original: str = ""


@dataclass
class Dockerfile:
    """A parsed Dockerfile: every instruction in order, and the same grouped into stages."""

    instructions: list[Instruction]
    escape: str
    meta_args: list[Instruction]
    stages: list[Stage]
    warnings: list[str] = field(default_factory=list)


# The line parser --------------------------------------------------------------------------------

class _Directives:
    """Parser directives: `# key=value` lines at the very top, before anything else."""

    def __init__(self) -> None:
        self.escape = "\\"
        self.done = False
        self.seen: set[str] = set()
        self._continuation = self._regex("\\")

    @staticmethod
    def _regex(escape: str) -> re.Pattern[str]:
        e = re.escape(escape)
        return re.compile(r"([^" + e + r"])" + e + r"[ \t]*$|^" + e + r"[ \t]*$")

    def feed(self, line: str) -> bool:
        """Look at one line while directives may still come; True if it was one."""
        if self.done:
            return False
        if not line.startswith("#"):
            self.done = True
            return False
        m = _DIRECTIVE.match(line[1:].lstrip())
        if not m or m.group(1).lower() not in _VALID_DIRECTIVES:
            self.done = True
            return False
        key, value = m.group(1).lower(), m.group(2)
        if key in self.seen:
            raise _LineError(f"only one {key} parser directive can be used")
        self.seen.add(key)
        if key == "escape":
            if value not in ("`", "\\"):
                raise _LineError(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
            self._continuation = self._regex(value)
        # syntax= and check= are BuildKit's (frontend image, lint rules): the classic builder
        # ignores them, and so does berth.
        return True

    def continued(self, line: str) -> tuple[str, bool]:
        """(line without its continuation escape, whether the instruction goes on)."""
        m = self._continuation.search(line)
        if not m:
            return line, False
        return line[:m.start()] + (m.group(1) or ""), True


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [ln.rstrip("\r\n") for ln in lines]


def _logical_lines(text: str, d: _Directives, warnings: list[str]) -> list[tuple[str, int]]:
    """(joined line, 1-based start line) per instruction; comments, blank lines and
    continuation escapes gone."""
    raw = _split_lines(text)
    out = []
    i = 0
    found_empty = False
    while i < len(raw):
        line = raw[i]
        if i == 0 and line.startswith("\ufeff"):
            line = line[1:]
        if len(line.encode()) > _MAX_LINE:
            raise _LineError(f"dockerfile line greater than max allowed size of {_MAX_LINE}")
        line = line.lstrip()
        d.feed(line)
        i += 1
        start = i
        if _is_comment(line):
            continue
        line, more = d.continued(line)
        if not more and line == "":
            continue
        parts = [line]
        empty_continuation = False
        while more and i < len(raw):
            nxt = raw[i]
            d.feed(nxt)
            i += 1
            if _is_comment(nxt):
                continue
            if nxt.strip() == "":
                empty_continuation = True
                continue
            nxt, more = d.continued(nxt)
            parts.append(nxt)
        joined = "".join(parts)
        if empty_continuation:
            found_empty = True
            warnings.append(f"[WARNING]: Empty continuation line found in: {joined}")
        out.append((joined, start))
    if found_empty:
        warnings.append("[WARNING]: Empty continuation lines will become errors in a future "
                        "release.")
    return out


def _extract_flags(rest: str, escape: str) -> tuple[str, list[str]]:
    """Leading `--flag[=value]` words (quotes and escapes removed) and what follows them."""
    words: list[str] = []
    pos = 0
    n = len(rest)
    while True:
        while pos < n and rest[pos].isspace():
            pos += 1
        if pos >= n:
            return "", words
        if not rest.startswith("--", pos):
            return rest[pos:], words
        buf: list[str] = []
        blank_ok = False
        quote = ""
        while pos < n:
            ch = rest[pos]
            if quote:
                if ch == quote:
                    quote = ""
                elif ch == escape:
                    if pos + 1 < n:
                        pos += 1
                        buf.append(rest[pos])
                else:
                    buf.append(ch)
                pos += 1
                continue
            if ch.isspace():
                break
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
            elif ch == escape:
                if pos + 1 < n:
                    pos += 1
                    buf.append(rest[pos])
            else:
                buf.append(ch)
            pos += 1
        word = "".join(buf)
        if word == "--":
            return rest[pos:], words
        if blank_ok or word:
            words.append(word)


def _parse_words(rest: str, escape: str) -> list[str]:
    """Words split on unquoted whitespace, quotes and escapes kept (dockerd's parseWords)."""
    words: list[str] = []
    buf: list[str] = []
    in_word = False
    blank_ok = False
    quote = ""
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if not quote:
            if ch.isspace():
                if blank_ok or buf:
                    words.append("".join(buf))
                buf, in_word, blank_ok = [], False, False
                i += 1
                continue
            if ch in ("'", '"'):
                quote = ch
                blank_ok = True
            if ch == escape:
                if i + 1 == n:
                    i += 1
                    continue
                buf.append(ch)
                i += 1
                ch = rest[i]
            buf.append(ch)
            i += 1
            continue
        if ch == quote:
            quote = ""
        elif ch == escape and quote != "'":
            if i + 1 == n:
                i += 1
                continue
            buf.append(ch)
            i += 1
            ch = rest[i]
        buf.append(ch)
        i += 1
    if in_word and (blank_ok or buf):
        words.append("".join(buf))
    return words


def _not_json(name: str) -> None:
    """NaN and Infinity are Python's extensions, not JSON: Go's decoder refuses them."""
    raise ValueError(name)


def _parse_json(rest: str) -> list[str] | None:
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest, parse_constant=_not_json)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _LineError("when using JSON array syntax, arrays must be comprised of strings "
                         "only")
    return value


def _name_val(rest: str, key: str, escape: str) -> list[str]:
    words = _parse_words(rest, escape)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WHITESPACE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _LineError(f"{key} must have two arguments")
        return [parts[0], parts[1]]
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise _LineError(f"Syntax error - can't find = in \"{word}\". Must be of the "
                             f"form: name=value")
        k, v = word.split("=", 1)
        out += [k, v]
    return out


def _node_args(cmd: str, rest: str, escape: str) -> tuple[list[str], bool]:
    """The arguments of one instruction as dockerd's line parser splits them."""
    if cmd in ("RUN", "CMD", "ENTRYPOINT", "SHELL"):
        if rest == "":
            return [], False
        parsed = _parse_json(rest)
        return (parsed, True) if parsed is not None else ([rest], False)
    if cmd in ("ADD", "COPY", "VOLUME"):
        parsed = _parse_json(rest)
        if parsed is not None:
            return parsed, True
        return (_WHITESPACE.split(rest) if rest else []), False
    if cmd in ("FROM", "EXPOSE"):
        return (_WHITESPACE.split(rest) if rest else []), False
    if cmd in ("MAINTAINER", "STOPSIGNAL", "USER", "WORKDIR"):
        return ([rest] if rest else []), False
    if cmd in ("ENV", "LABEL"):
        return _name_val(rest, cmd, escape), False
    if cmd == "ARG":
        return _parse_words(rest, escape), False
    if cmd == "HEALTHCHECK":
        m = re.match(r"(\S*)\s*", rest)
        typ = m.group(1) if m else ""
        if not typ:
            return [], False
        tail = rest[m.end():]
        if tail == "":
            return [typ], False
        parsed = _parse_json(tail)
        return ([typ] + parsed, True) if parsed is not None else ([typ, tail], False)
    return [], False            # ONBUILD is handled by the caller; unknown ones fail later


# The instruction parser -------------------------------------------------------------------------

class _InstructionError(Exception):
    pass


def _go_duration_ns(text: str) -> int:
    """Go's time.ParseDuration, to nanoseconds."""
    s = text
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise _InstructionError(f'time: invalid duration "{text}"')
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION.match(s, pos)
        if not m:
            if re.match(r"(\d+\.?\d*|\.\d+)", s[pos:]):
                raise _InstructionError(f'time: missing unit in duration "{text}"')
            raise _InstructionError(f'time: invalid duration "{text}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * int(total)


def _distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute: 1 each)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _did_you_mean(value: str, options: list[str], case_sensitive: bool) -> str:
    """BuildKit's suggestion suffix: the closest option under distance 3, in the case the
    user wrote ("FORM" -> "FROM", "form" -> "from"), or "" when none or an exact match."""
    val = value if case_sensitive else value.lower()
    best, best_distance = "", 3
    for option in options:
        opt = option if case_sensitive else option.lower()
        if val == opt:
            return ""
        d = _distance(val, opt)
        if d < best_distance:
            best, best_distance = opt, d
    if not best:
        return ""
    if not case_sensitive:
        if value == value.upper():
            best = best.upper()
    return f" (did you mean {best}?)"


def _parse_flags(cmd: str, words: list[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    known = _FLAGS.get(cmd, {})
    flags: dict[str, str] = {}
    flag_list: list[tuple[str, str]] = []
    for word in words:
        if word == "--":
            break
        if not word.startswith("--"):
            raise _InstructionError(f"arg should start with -- : {word}")
        flag_name, has_value, value = word.partition("=")
        name = flag_name[2:]
        kind = known.get(name)
        if kind is None:
            raise _InstructionError(f"unknown flag: {flag_name}"
                                    f"{_did_you_mean(name, sorted(known), True)}")
        if name in flags and kind != "strings":
            raise _InstructionError(f"duplicate flag specified: {flag_name}")
        if kind == "bool":
            if has_value and value == "":
                raise _InstructionError(f"missing a value on flag: {flag_name}")
            if value.lower() not in ("true", "false", ""):
                raise _InstructionError(f"expecting boolean value for flag {flag_name}, "
                                        f"not: {value}")
            value = "false" if value.lower() == "false" else "true"
        elif not has_value:
            raise _InstructionError(f"missing a value on flag: {flag_name}")
        flags[name] = value
        flag_list.append((name, value))
    return flags, flag_list


def _check(ins: Instruction) -> None:
    """The checks of dockerd's instruction parser, per cmd."""
    cmd, args = ins.cmd, ins.args
    if cmd in ("ENV", "LABEL"):
        if not args:
            raise _InstructionError(f"{cmd} requires at least one argument")
        if any(k == "" for k in args[0::2]):
            raise _InstructionError(f"{cmd} names can not be blank")
    elif cmd in ("MAINTAINER", "WORKDIR", "USER", "STOPSIGNAL"):
        if len(args) != 1:
            raise _InstructionError(f"{cmd} requires exactly one argument")
    elif cmd in ("ADD", "COPY"):
        if len(args) < 2:
            raise _InstructionError(f"{cmd} requires at least two arguments, but only one was "
                                    f"provided. Destination could not be determined")
    elif cmd == "FROM":
        if len(args) == 3 and args[1].lower() == "as":
            if not _STAGE_NAME.match(args[2].lower()):
                raise _InstructionError(f'invalid name for build stage: "{args[2]}", name '
                                        f"can't start with a number or contain symbols")
        elif len(args) != 1:
            raise _InstructionError("FROM requires either one or three arguments")
    elif cmd == "ONBUILD":
        if not args or not args[0].strip():
            raise _InstructionError("ONBUILD requires at least one argument")
    elif cmd == "HEALTHCHECK":
        _check_healthcheck(ins)
    elif cmd == "EXPOSE":
        if not args:
            raise _InstructionError("EXPOSE requires at least one argument")
        args.sort()
    elif cmd == "VOLUME":
        if not args:
            raise _InstructionError("VOLUME requires at least one argument")
        if any(v.strip() == "" for v in args):
            raise _InstructionError("VOLUME specified can not be an empty string")
        ins.args = [v.strip() for v in args]
    elif cmd == "ARG":
        if not args:
            raise _InstructionError("ARG requires at least one argument")
        if any(a.startswith("=") for a in args):
            raise _InstructionError("ARG names can not be blank")
    elif cmd == "SHELL":
        if not args:
            raise _InstructionError("SHELL requires at least one argument")
        if not ins.json:
            raise _InstructionError("SHELL requires the arguments to be in JSON form")
    if cmd in ("RUN", "ADD", "COPY") and not ins.json:
        _refuse_heredoc(ins)


def _check_healthcheck(ins: Instruction) -> None:
    args = ins.args
    if not args:
        raise _InstructionError("HEALTHCHECK requires at least one argument")
    typ = args[0].upper()
    if typ == "NONE":
        if len(args) != 1:
            raise _InstructionError("HEALTHCHECK NONE takes no arguments")
        return
    if typ != "CMD":
        raise _InstructionError(f'Unknown type "{typ}" in HEALTHCHECK (try CMD)')
    if len(args) == 1 or (not ins.json and args[1] == ""):
        raise _InstructionError("Missing command after HEALTHCHECK CMD")
    for name in ("interval", "timeout", "start-period", "start-interval"):
        value = ins.flags.get(name, "")
        if value and 0 < _go_duration_ns(value) < 1_000_000:
            raise _InstructionError(f'Interval "{name}" cannot be less than 1ms')
    retries = ins.flags.get("retries", "")
    if retries:
        if not re.fullmatch(r"[+-]?\d+", retries):
            raise _InstructionError(f'strconv.ParseInt: parsing "{retries}": invalid syntax')
        if int(retries) < 0:
            raise _InstructionError(f"--retries cannot be negative ({int(retries)})")


def _refuse_heredoc(ins: Instruction) -> None:
    """dockerd's heredoc detection: a word of the line starting "<<" or "<<-" (after an
    optional fd number) and naming a terminator."""
    words = _parse_words(ins.original, "\\")
    for i, word in enumerate(words):
        if re.fullmatch(r"\d*<<-?", word) and i + 1 < len(words):
            word += words[i + 1]          # "<< EOF" is one heredoc word to dockerd's lexer
        m = _HEREDOC.match(word)
        if m and m.group(3):
            raise _InstructionError(
                f"heredoc {word} in {ins.cmd} is not supported by the classic builder "
                f"(dockerd's would ignore its body): use a file from the build context")


@dataclass
class _Node:
    """An instruction as the line parser leaves it: flags still words, nothing checked."""

    ins: Instruction
    written: str                # the instruction name as written, for "unknown instruction"
    flag_words: list[str]


def _instruction(line: str, start: int, escape: str) -> _Node:
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    written = parts[0]
    rest, flag_words = _extract_flags(parts[1], escape) if len(parts) == 2 else ("", [])
    rest = rest.strip()
    cmd = written.upper()
    if cmd not in INSTRUCTIONS:
        args: list[str] = []
        is_json = False
    elif cmd == "ONBUILD":
        args, is_json = ([_ONBUILD_PREFIX.sub("", line.strip(), count=1)] if rest else []), False
    else:
        args, is_json = _node_args(cmd, rest, escape)
    ins = Instruction(cmd=cmd, args=args, json=is_json, flags={}, original=line.strip(),
                      line=start)
    return _Node(ins, written, flag_words)


def _validate(node: _Node, escape: str) -> None:
    """The instruction parser's checks; fills in flags (and ONBUILD's sub)."""
    ins = node.ins
    if ins.cmd not in INSTRUCTIONS:
        raise _InstructionError(f"unknown instruction: {node.written}"
                                f"{_did_you_mean(node.written, list(INSTRUCTIONS), False)}")
    ins.flags, ins.flag_list = _parse_flags(ins.cmd, node.flag_words)
    _check(ins)
    if ins.cmd == "ONBUILD":
        trigger = ins.args[0]
        first = _WHITESPACE.split(trigger.strip(), maxsplit=1)[0].upper()
        if first == "ONBUILD":
            raise _InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
        if first in ("MAINTAINER", "FROM"):
            raise _InstructionError(f"{first} isn't allowed as an ONBUILD trigger")
        if first in ("RUN", "ADD", "COPY"):
            try:
                trigger_node = _instruction(trigger, ins.line, escape)
            except _LineError:
                trigger_node = None
            if trigger_node is not None and not trigger_node.ins.json:
                _refuse_heredoc(trigger_node.ins)   # dockerd reads ONBUILD's heredocs too
        ins.sub = _parse_trigger(trigger, ins.line, escape)


def _parse_trigger(trigger: str, line: int, escape: str) -> Instruction | None:
    try:
        node = _instruction(trigger, line, escape)
        _validate(node, escape)
    except (_InstructionError, _LineError):
        return None
    return node.ins


def parse(text: str, name: str = "Dockerfile") -> Dockerfile:
    """The Dockerfile text parsed and checked as dockerd's classic builder does before it
    runs anything. name is only for messages (the Dockerfile's path in the context)."""
    if text == "":
        raise DockerfileError(f"the Dockerfile ({name}) cannot be empty")
    d = _Directives()
    warnings: list[str] = []
    nodes: list[_Node] = []
    try:
        for joined, start in _logical_lines(text, d, warnings):
            try:
                nodes.append(_instruction(joined, start, d.escape))
            except _LineError as e:
                raise DockerfileError(f"failed to parse {name}: {e}", start) from None
    except _LineError as e:
        raise DockerfileError(f"failed to parse {name}: {e}") from None
    if not nodes:
        raise DockerfileError(f"failed to parse {name}: file with no instructions")

    instructions: list[Instruction] = []
    meta_args: list[Instruction] = []
    stages: list[Stage] = []
    for node in nodes:
        ins = node.ins
        try:
            _validate(node, d.escape)
        except _InstructionError as e:
            raise DockerfileError(f"dockerfile parse error on line {ins.line}: {e}",
                                  ins.line) from None
        instructions.append(ins)
        if ins.cmd == "FROM":
            stage_name = ins.args[2].lower() if len(ins.args) == 3 else None
            stages.append(Stage(name=stage_name, base=ins.args[0],
                                platform=ins.flags.get("platform"), index=len(stages),
                                instructions=[], original=ins.original))
        elif not stages:
            if ins.cmd != "ARG":
                raise DockerfileError("no build stage in current context", ins.line)
            meta_args.append(ins)
        else:
            stages[-1].instructions.append(ins)
    return Dockerfile(instructions=instructions, escape=d.escape, meta_args=meta_args,
                      stages=stages, warnings=warnings)


def classic_refusal(ins: Instruction) -> str | None:
    """The error for a flag the classic builder cannot carry out, or None. dockerd refuses
    every RUN flag and --chmod with these words; it silently ignores COPY/ADD --exclude,
    --parents, --checksum, --keep-git-dir and --unpack, which would build something other
    than asked, so berth refuses those the same way. --link is accepted: it changes only how
    BuildKit caches the layer, not what the image holds."""
    target = ins.sub if ins.cmd == "ONBUILD" and ins.sub is not None else ins
    if target.cmd == "RUN" and target.flag_list:
        return f"the --{target.flag_list[0][0]} option {_BUILDKIT_HINT}"
    if target.cmd in ("ADD", "COPY"):
        for flag, _value in target.flag_list:
            if flag in ("chmod", "exclude", "parents", "checksum", "keep-git-dir", "unpack"):
                return f"the --{flag} option {_BUILDKIT_HINT}"
    return None
