"""engine/build/expand.py: shell-word expansion of Dockerfile arguments."""
from __future__ import annotations

import pytest

from engine.build.expand import (EXPANDS, ExpandError, automatic_platform_args, expand,
                                 expand_words, predefined_args)

ENV = {"A": "a", "SP": "two words", "E": "", "F": "file.tar.gz", "P": "/usr/local/bin"}


@pytest.mark.parametrize("word,expected", [
    ("$A", "a"),
    ("${A}b", "ab"),
    ("$Ab", ""),                      # the name runs on: $Ab is unset
    ("x$U-y", "x-y"),
    ("$", "$"),
    ("a$", "a$"),
    ("$1", ""),
    ("${E:-d}", "d"), ("${E-d}", ""), ("${U-d}", "d"), ("${A:-d}", "a"),
    ("${E:+y}", ""), ("${E+y}", "y"), ("${U+y}", ""), ("${A:+y}", "y"),
    ("${U:-$A$A}", "aa"),
    ("${U:-'q x'}", "q x"),
    ("${F%.*}", "file.tar"), ("${F%%.*}", "file"),
    ("${F#*.}", "tar.gz"), ("${F##*.}", "gz"),
    ("${P#/usr}", "/local/bin"), ("${F%.zip}", "file.tar.gz"),
    ("${P/l/L}", "/usr/Local/bin"), ("${P//l/L}", "/usr/LocaL/bin"),
    ("${A?}", "a"),
])
def test_substitutions(word, expected):
    assert expand(word, ENV) == expected


@pytest.mark.parametrize("word,expected", [
    ("'$A'", "$A"),
    ('"$A"', "a"),
    ('"$SP"', "two words"),
    ("a\\ b", "a b"),
    ("\\$A", "$A"),
    ('"a\\"b"', 'a"b'),
    ('"a\\nb"', "a\\nb"),             # other escapes stay inside double quotes
    ("'a\\nb'", "a\\nb"),
    ("a\\", "a"),                     # a trailing escape is dropped
    ('x"y"z', "xyz"),
    ("''", ""),
])
def test_quotes_and_escapes(word, expected):
    assert expand(word, ENV) == expected


def test_backtick_escape():
    assert expand("`$A", ENV, "`") == "$A"
    assert expand("c:\\dir", ENV, "`") == "c:\\dir"


def test_names_are_case_sensitive():
    assert expand("$a", ENV) == ""


@pytest.mark.parametrize("word,message", [
    ("${", "syntax error: missing '}'"),
    ("${A", "syntax error: missing '}'"),
    ("${}", "syntax error: bad substitution"),
    ("${:-x}", "syntax error: bad substitution"),
    ("${A:-x", "syntax error: missing '}'"),
    ("'abc", "unexpected end of statement while looking for matching single-quote"),
    ('"abc', "unexpected end of statement while looking for matching double-quote"),
    ("${U?}", "U: is not allowed to be unset"),
    ("${U?need it}", "U: need it"),
    ("${E:?}", "E: is not allowed to be empty"),
    ("${A:#x}", "unsupported modifier (:#) in substitution"),
    ("${A*}", "unsupported modifier (*) in substitution"),
])
def test_errors(word, message):
    with pytest.raises(ExpandError) as info:
        expand(word, ENV)
    assert str(info.value) == f'failed to process "{word}": {message}'


def test_bad_escape_token():
    with pytest.raises(ValueError):
        expand("x", {}, "!")


@pytest.mark.parametrize("text,expected", [
    ("$SP", ["two", "words"]),
    ('"$SP"', ["two words"]),
    ("80 $SP", ["80", "two", "words"]),
    ("a\\ b c", ["a b", "c"]),
    ("'x y' z", ["x y", "z"]),
    ('""', []),
    ("$E", []),
    ("  a   b  ", ["a", "b"]),
    ("x${SP}y", ["xtwo", "wordsy"]),
])
def test_words(text, expected):
    assert expand_words(text, ENV) == expected


def test_expanding_instructions_are_dockerds():
    assert EXPANDS == {"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL",
                       "USER", "VOLUME", "WORKDIR"}
    assert not EXPANDS & {"RUN", "CMD", "ENTRYPOINT", "SHELL", "HEALTHCHECK", "ONBUILD",
                          "MAINTAINER"}


def test_predefined_and_platform_args():
    assert predefined_args() == {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                 "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy",
                                 "ALL_PROXY", "all_proxy"}
    assert automatic_platform_args() == {}
