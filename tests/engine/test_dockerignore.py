"""engine/build/dockerignore.py: .dockerignore reading and docker's pattern matching."""
from __future__ import annotations

import pytest

from engine.build.dockerignore import (IgnoreError, IgnoreMatcher, go_clean, keep_build_files,
                                       parse_dockerignore)


def test_parse_comments_blanks_and_cleaning():
    text = ("\ufeff# comment\n\n  \n  spaced  \n #not-a-comment\n/abs/path\n./a/./b//c/\n"
            "a/../b\n!  keep.txt\n! /x/\n/\r\n")
    assert parse_dockerignore(text) == ["spaced", "#not-a-comment", "abs/path", "a/b/c", "b",
                                        "!keep.txt", "!x", "/"]


def test_go_clean():
    assert go_clean("") == "."
    assert go_clean("a//b/./c/..") == "a/b"
    assert go_clean("../a") == "../a"
    assert go_clean("/../a") == "/a"
    assert go_clean("a/..") == "."


def matcher(*patterns: str) -> IgnoreMatcher:
    return IgnoreMatcher(list(patterns))


@pytest.mark.parametrize("pattern,path,expected", [
    ("foo", "foo", True),
    ("foo", "foo/bar/baz", True),             # a directory pattern covers its contents
    ("foo", "a/foo", False),
    ("*.go", "main.go", True),
    ("*.go", "pkg/main.go", False),           # * does not cross /
    ("*/*.go", "pkg/main.go", True),
    ("**/*.go", "main.go", True),
    ("**/*.go", "a/b/c.go", True),
    ("a/**/z", "a/z", True),
    ("a/**/z", "a/b/c/z", True),
    ("a/**", "a/b", True),
    ("a/**", "a", False),
    ("**", "anything/at/all", True),
    ("**.go", "x/y.go", True),                # dockerd's suffix fast path
    ("f?o", "foo", True),
    ("f?o", "f/o", False),
    ("[a-c]x", "bx", True),
    ("[a-c]x", "dx", False),
    ("[^a]x", "ax", False),
    ("\\*x", "*x", True),
    ("\\*x", "ax", False),
    ("a.b", "axb", False),                    # regex metacharacters are literal
    ("a+b", "a+b", True),
    ("(x)", "(x)", True),
])
def test_match(pattern, path, expected):
    m = matcher(pattern)
    assert m.matches(path) is expected


def test_exceptions_last_match_wins():
    m = matcher("*.md", "!README.md", "docs")
    assert m.matches("CHANGES.md")
    assert not m.matches("README.md")
    assert m.matches("docs/README.md")        # excluded again by the later "docs"
    m = matcher("docs", "!docs/README.md")
    assert m.matches("docs/a") and not m.matches("docs/README.md")
    assert m.matches("docs")


def test_exception_of_a_subdirectory():
    m = matcher("a", "!a/b", "a/b/c")
    assert m.matches("a/x")
    assert not m.matches("a/b/y")
    assert m.matches("a/b/c/d")


def test_should_skip_dir():
    m = matcher("node_modules", "build", "!build/keep", "docs/**")
    assert m.should_skip_dir("node_modules")
    assert not m.should_skip_dir("build")      # an exception may re-include inside it
    assert not m.should_skip_dir("src")
    # docker's rule: an exception not spelled under the directory cannot rescue its files
    m = matcher("vendor", "!**/*.go")
    assert m.should_skip_dir("vendor")


def test_paths_are_cleaned_before_matching():
    m = matcher("a/b")
    assert m.matches("./a/b") and m.matches("a//b/c")
    assert not m.matches(".")


@pytest.mark.parametrize("pattern", ["[", "[]", "[-a]", "a\\", "[a-]", "x[a"])
def test_bad_patterns(pattern):
    with pytest.raises(IgnoreError, match="syntax error in pattern"):
        IgnoreMatcher([pattern])


def test_bare_exclamation_mark():
    with pytest.raises(IgnoreError, match='illegal exclusion pattern: "!"'):
        IgnoreMatcher(["!"])


def test_blank_patterns_are_skipped():
    assert matcher("", "  ").patterns == []


def test_keep_build_files():
    assert keep_build_files(["*"], "Dockerfile") == ["*", "!.dockerignore", "!Dockerfile"]
    assert keep_build_files(["sub"], "./sub/Dockerfile.dev") == ["sub", "!sub/Dockerfile.dev"]
    assert keep_build_files(["x"], "Dockerfile") == ["x"]
    m = IgnoreMatcher(keep_build_files(["*"], "Dockerfile"))
    assert not m.matches("Dockerfile") and not m.matches(".dockerignore") and m.matches("a")
