"""Shell-word expansion of Dockerfile arguments, as the classic builder's shell lexer does it.

Interface (used by engine/build/builder.py):

    expand(word, env, escape="\\") -> str
        One word: $VAR, ${VAR}, ${VAR:-w}, ${VAR-w}, ${VAR:+w}, ${VAR+w}, ${VAR?w},
        ${VAR:?w}, ${VAR#p}, ${VAR##p}, ${VAR%p}, ${VAR%%p}, ${VAR/p/r}, ${VAR//p/r};
        quotes removed ('...' literal, "..." with $ expansion), the escape character makes the
        next character literal. No word splitting: the result is one string.
    expand_words(text, env, escape="\\") -> list[str]
        The same, then split into words on unquoted, unescaped whitespace, including
        whitespace that came from an unquoted variable's value (EXPOSE $PORTS with
        PORTS="80 443" gives two ports). Empty words are dropped ("" alone gives []).
    ExpandError: bad syntax or ${VAR?msg} on an unset VAR; its text is dockerd's,
        'failed to process "<word>": <why>'.
    EXPANDS: the instructions whose arguments the classic builder expands (see below).
    predefined_args() -> frozenset[str]: the proxy ARGs usable without an ARG line.
    automatic_platform_args() -> dict[str, str]: the automatic platform ARGs the classic
        builder defines: none (see its docstring).

Which arguments are expanded, and with what (dockerd's classic builder: the instruction types
with an Expand method, plus EXPOSE's and FROM's own handling in its dispatchers):
    ENV, LABEL   every key and every value (expand); env = the stage's ENV + allowed ARGs.
    ARG          the name and the default (expand).
    ADD, COPY    every source and the destination, --chown, --chmod (and ADD --checksum).
                 COPY --from is NOT expanded by the classic builder.
    WORKDIR, USER, STOPSIGNAL, VOLUME (each path)   expand.
    EXPOSE       each argument with expand_words (one argument may become several ports).
    FROM         the image text and --platform, with only the meta ARGs (those declared
                 before the first FROM, with --build-arg values) and the proxy ARGs as env.
    RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER, ONBUILD: never expanded (RUN's
                 shell does its own expansion at run time; ONBUILD's trigger is expanded when
                 it fires in the child build).
Variable names are case-sensitive (Linux); an unset variable expands to "".
"""
from __future__ import annotations

import re
from collections.abc import Mapping

EXPANDS = frozenset({"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL",
                     "USER", "VOLUME", "WORKDIR"})

# dockerd's builtinAllowedBuildArgs: settable with --build-arg without an ARG line, usable in
# RUN's environment, and left out of the image history and of the cache key unless the
# Dockerfile declares them with ARG (so a proxy change neither busts the cache nor leaks).
_PREDEFINED = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                         "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy",
                         "ALL_PROXY", "all_proxy"})

# BuildKit's automatic platform ARGs. Listed for reference only: the classic builder never
# defines them (see automatic_platform_args).
PLATFORM_ARG_NAMES = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT",
                      "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT")

_SPECIAL_PARAMS = "@*#?-$!0"


class ExpandError(ValueError):
    """A word the lexer refuses; the message is dockerd's."""


def predefined_args() -> frozenset[str]:
    """The proxy build args (dockerd's builtinAllowedBuildArgs). The rule for the builder:
    a --build-arg with one of these names is allowed without an ARG instruction and is put in
    RUN's environment; it is kept out of the committed history ("|N k=v ... /bin/sh -c ..."
    lists) and out of the cache key unless the Dockerfile declares it with ARG, in which case
    it is an ordinary ARG. They are never reported as unconsumed build args."""
    return _PREDEFINED


def automatic_platform_args() -> dict[str, str]:
    """The automatic platform ARGs the classic builder predefines: none. BuildKit defines
    TARGETPLATFORM, TARGETOS, ... (PLATFORM_ARG_NAMES); dockerd's classic builder (all
    versions, daemon/builder/dockerfile) never did, so `$TARGETARCH` expands to "" there unless
    declared with ARG and given with --build-arg. Kept as a function so the builder asks one
    place."""
    return {}


class _Lexer:
    """One pass over a word. words mode also tracks word boundaries as dockerd's lexer does:
    unquoted whitespace (literal or from an unquoted $VAR) splits; quoted or escaped text
    never does."""

    def __init__(self, text: str, env: Mapping[str, str], escape: str):
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def run(self, stop: str = "", raw_escapes: bool = False) -> tuple[str, list[str]]:
        """Up to stop (consumed) or the end; (the word, its words)."""
        result: list[str] = []
        words = _Words()
        while self.peek():
            ch = self.peek()
            if stop and ch == stop:
                self.next()
                return "".join(result), words.get()
            if ch == "$":
                value = self.dollar()
                result.append(value)
                words.add_text(value)
            elif ch == "'":
                value = self.single_quote()
                result.append(value)
                words.add_raw(value)
            elif ch == '"':
                value = self.double_quote()
                result.append(value)
                words.add_raw(value)
            else:
                ch = self.next()
                if ch == self.escape:
                    if raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self.next()
                    if not ch:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise ExpandError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get()

    def single_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.next()
            if not ch:
                raise ExpandError("unexpected end of statement while looking for matching "
                                  "single-quote")
            if ch == "'":
                return "".join(out)
            out.append(ch)

    def double_quote(self) -> str:
        self.next()
        out: list[str] = []
        while True:
            ch = self.peek()
            if not ch:
                raise ExpandError("unexpected end of statement while looking for matching "
                                  "double-quote")
            if ch == '"':
                self.next()
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
                continue
            ch = self.next()
            if ch == self.escape and self.peek() in ('"', "$", self.escape) and self.peek():
                ch = self.next()            # other escapes stay as written, as in sh
            out.append(ch)

    def name(self) -> str:
        out: list[str] = []
        while self.peek():
            ch = self.peek()
            if not out and ch.isdecimal():
                while self.peek() and self.peek().isdecimal():
                    out.append(self.next())
                return "".join(out)
            if not out and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            out.append(self.next())
        return "".join(out)

    def dollar(self) -> str:
        self.next()
        if self.peek() != "{":
            name = self.name()
            if not name:
                return "$"
            return self.env.get(name, "")
        self.next()
        if not self.peek():
            raise ExpandError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpandError("syntax error: bad substitution")
        name = self.name()
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        if not ch:
            raise ExpandError("syntax error: missing '}'")
        if ch == "/":
            return self.replace(name)
        modifier = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch
        if ch not in ("+", "-", "?", "#", "%"):
            raise ExpandError(f"unsupported modifier ({modifier}) in substitution")
        if null_is_unset and ch in "#%":
            raise ExpandError(f"unsupported modifier ({modifier}) in substitution")
        word = self.nested("}", raw_escapes=ch in "#%")
        is_set = name in self.env
        value = self.env.get(name, "")
        empty = not is_set or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if not is_set:
                raise ExpandError(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise ExpandError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(ch)
        if greedy:
            word = word[1:]
        pattern = _shell_pattern(word, greedy, anchored=True)
        if ch == "#":
            m = pattern.search(value)
            return value[m.end():] if m else value
        # suffix: match the reversed pattern against the reversed value, as dockerd does
        rpattern = _shell_pattern(_reverse_pattern(word), greedy, anchored=True)
        m = rpattern.search(value[::-1])
        return value[:len(value) - m.end()] if m else value

    def nested(self, stop: str, raw_escapes: bool) -> str:
        try:
            word, _ = self.run(stop, raw_escapes)
        except ExpandError:
            if not self.peek():
                raise ExpandError(f"syntax error: missing '{stop}'") from None
            raise
        return word

    def replace(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        try:
            pattern, _ = self.run("/", raw_escapes=True)
        except ExpandError:
            if not self.peek():
                raise ExpandError("syntax error: missing '/' in ${}") from None
            raise
        replacement = self.nested("}", raw_escapes=True)
        value = self.env.get(name, "")
        regex = _shell_pattern(pattern, greedy=True, anchored=False)
        if replace_all:
            return regex.sub(lambda _m: replacement, value)
        m = regex.search(value)
        return value[:m.start()] + replacement + value[m.end():] if m else value


class _Words:
    """Word boundaries: text from $VAR splits on whitespace, raw (quoted/escaped) never."""

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf = []
                self.in_word = False
        else:
            self.buf.append(ch)
            self.in_word = True

    def add_text(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw(self, text: str) -> None:
        self.buf.append(text)
        self.in_word = True

    def get(self) -> list[str]:
        if "".join(self.buf):
            self.words.append("".join(self.buf))
        self.buf = []
        return self.words


def _shell_pattern(pattern: str, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A ${VAR#pattern} glob as a regex: * any run (lazy unless greedy), ? one character,
    backslash escapes * ? and itself; other characters literal."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            nxt = pattern[i] if i < len(pattern) else ""
            if nxt in ("}", "/"):
                continue
            i += 1
            if nxt not in ("*", "?", "\\"):
                raise ExpandError(f"invalid pattern ({pattern}) in substitution: "
                                  f"invalid escape '\\{nxt}'")
            out.append(re.escape(nxt))
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _reverse_pattern(pattern: str) -> str:
    """The pattern read backwards, keeping each backslash before the character it escapes."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i:i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _check_escape(escape: str) -> None:
    if escape not in ("\\", "`"):
        raise ValueError(f"invalid escape token {escape!r} does not match ` or \\")


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """One word with variables substituted and quotes and escapes removed."""
    _check_escape(escape)
    try:
        result, _ = _Lexer(word, env, escape).run()
    except ExpandError as e:
        raise ExpandError(f'failed to process "{word}": {e}') from None
    return result


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """text expanded and split into words as an unquoted shell line would be."""
    _check_escape(escape)
    try:
        _, words = _Lexer(text, env, escape).run()
    except ExpandError as e:
        raise ExpandError(f'failed to process "{text}": {e}') from None
    return words
