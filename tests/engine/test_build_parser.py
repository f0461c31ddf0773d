"""engine/build/dockerfile.py: Dockerfile parsing as dockerd's classic builder parses."""
from __future__ import annotations

import pytest

from engine.build.dockerfile import DockerfileError, classic_refusal, parse


def one(text: str):
    """The single instruction after a FROM line."""
    df = parse("FROM scratch\n" + text)
    assert len(df.instructions) == 2
    return df.instructions[1]


def error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    return info.value


# Lines, comments, continuations ----------------------------------------------------------------

def test_instruction_names_are_case_insensitive_and_original_kept():
    ins = one("run echo hi")
    assert ins.cmd == "RUN" and ins.args == ["echo hi"] and not ins.json
    assert ins.original == "run echo hi" and ins.line == 2


def test_continuation_lines_join_without_the_escape():
    df = parse("FROM a\nRUN echo a \\\n  && echo b\\\n\tc\n")
    ins = df.instructions[1]
    assert ins.args == ["echo a   && echo b\tc"]
    assert ins.original == "RUN echo a   && echo b\tc"
    assert ins.line == 2


def test_comments_and_blank_lines_inside_a_continuation_are_skipped_with_a_warning():
    df = parse("FROM a\nRUN a \\\n# note\n\n  b\nCMD x\n")
    assert df.instructions[1].args == ["a   b"]
    assert df.instructions[2].line == 6
    assert df.warnings[0] == "[WARNING]: Empty continuation line found in: RUN a   b"
    assert df.warnings[-1].endswith("will become errors in a future release.")


def test_no_warning_without_empty_continuation_lines():
    assert parse("FROM a\nRUN a \\\n  b\n").warnings == []


def test_double_escape_at_end_is_not_a_continuation():
    df = parse("FROM a\nRUN echo \\\\\nCMD x\n")
    assert [i.cmd for i in df.instructions] == ["FROM", "RUN", "CMD"]


def test_continuation_at_end_of_file():
    assert parse("FROM a\nRUN echo \\").instructions[1].args == ["echo"]


def test_comment_lines_and_indentation():
    df = parse("# hello\n   # indented comment\n  FROM a\n\n\tRUN x # not a comment\n")
    assert [i.line for i in df.instructions] == [3, 5]
    assert df.instructions[1].args == ["x # not a comment"]


def test_crlf_line_endings_and_bom():
    df = parse("\ufeffFROM a\r\nRUN x\r\n")
    assert df.instructions[0].args == ["a"] and df.instructions[1].args == ["x"]


# Parser directives ------------------------------------------------------------------------------

def test_escape_directive_backtick():
    df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  /s\n")
    assert df.escape == "`"
    assert df.instructions[1].args == ["dir c:\\   /s"]


def test_directives_only_at_the_top():
    df = parse("FROM a\n# escape=`\nRUN a \\\n b\n")
    assert df.escape == "\\" and df.instructions[1].args == ["a  b"]
    df = parse("# comment\n# escape=`\nFROM a\n")
    assert df.escape == "\\"


def test_syntax_directive_is_ignored():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n")
    assert df.escape == "`"


def test_bad_and_duplicate_directives():
    assert str(error("# escape=x\nFROM a")) == \
        "failed to parse Dockerfile: invalid escape token 'x' does not match ` or \\"
    assert str(error("# escape=`\n# escape=\\\nFROM a")) == \
        "failed to parse Dockerfile: only one escape parser directive can be used"


# Empty files, unknown instructions, stages ------------------------------------------------------

def test_empty_and_instructionless_files():
    assert str(error("")) == "the Dockerfile (Dockerfile) cannot be empty"
    assert str(error("\n\n# only a comment\n")) == \
        "failed to parse Dockerfile: file with no instructions"
    with pytest.raises(DockerfileError, match=r"the Dockerfile \(sub/Df\) cannot be empty"):
        parse("", name="sub/Df")


def test_unknown_instruction_names_the_line():
    e = error("FROM a\n\nfoo bar\n")
    assert str(e) == ("dockerfile parse error on line 3: unknown instruction: foo (did you "
                      "mean from?)")
    assert e.line == 3


def test_instruction_before_from():
    assert str(error("RUN x\nFROM a\n")) == "no build stage in current context"


def test_meta_args_and_stages():
    df = parse("ARG A=1\nARG B\nFROM --platform=$P img:$A AS Base\nRUN x\n"
               "FROM base\nARG C\nCOPY --from=base / /\n")
    assert [a.args for a in df.meta_args] == [["A=1"], ["B"]]
    assert [(s.name, s.base, s.platform, s.index) for s in df.stages] == \
        [("base", "img:$A", "$P", 0), (None, "base", None, 1)]
    assert [i.cmd for i in df.stages[0].instructions] == ["RUN"]
    assert [i.cmd for i in df.stages[1].instructions] == ["ARG", "COPY"]
    assert df.stages[0].original == "FROM --platform=$P img:$A AS Base"
    assert len(df.instructions) == 7


@pytest.mark.parametrize("text,message", [
    ("FROM", "FROM requires either one or three arguments"),
    ("FROM a b", "FROM requires either one or three arguments"),
    ("FROM a as 1st", 'invalid name for build stage: "1st", name can\'t start with a number'),
    ("FROM a AS b$c", "invalid name for build stage"),
])
def test_bad_from(text, message):
    assert message in str(error(text))


# Argument forms --------------------------------------------------------------------------------

def test_json_form():
    ins = one('CMD ["echo", "a b"]')
    assert ins.json and ins.args == ["echo", "a b"]
    ins = one('ENTRYPOINT  [ ]')
    assert ins.json and ins.args == []


def test_invalid_json_falls_back_to_shell_form():
    for text in ("CMD [\"echo\", 'x']", 'CMD ["a"', 'CMD ["a", "b"] x', "CMD [a]",
                 "CMD [NaN]"):
        ins = one(text)
        assert not ins.json and ins.args == [text[4:]]


def test_json_array_of_non_strings_is_refused():
    assert str(error('FROM a\nRUN ["a", 1]')) == ("failed to parse Dockerfile: when using "
                                                 "JSON array syntax, arrays must be "
                                                 "comprised of strings only")


def test_env_forms():
    assert one('ENV A=1 B="two words" C=x\\ y').args == ["A", "1", "B", '"two words"',
                                                         "C", "x\\ y"]
    assert one("ENV OLD some   value").args == ["OLD", "some   value"]
    assert one("LABEL a.b=c 'd e'=f").args == ["a.b", "c", "'d e'", "f"]


@pytest.mark.parametrize("text,message", [
    ("ENV X", "failed to parse Dockerfile: ENV must have two arguments"),
    ("LABEL X", "failed to parse Dockerfile: LABEL must have two arguments"),
    ("ENV A=1 B", "Syntax error - can't find = in \"B\". Must be of the form: name=value"),
    ("ENV", "ENV requires at least one argument"),
    ("ENV =x", "ENV names can not be blank"),
])
def test_bad_env(text, message):
    assert message in str(error("FROM a\n" + text))


def test_arg_forms():
    assert one('ARG A B=2 C="x y"').args == ["A", "B=2", 'C="x y"']
    assert "ARG requires at least one argument" in str(error("FROM a\nARG"))
    assert "ARG names can not be blank" in str(error("FROM a\nARG =1"))


def test_single_string_instructions_keep_spaces():
    assert one("USER a b").args == ["a b"]
    assert one("WORKDIR /a dir").args == ["/a dir"]
    assert one("STOPSIGNAL SIGTERM").args == ["SIGTERM"]
    assert "USER requires exactly one argument" in str(error("FROM a\nUSER"))


def test_copy_add_volume_expose():
    assert one("COPY a b  /dst/").args == ["a", "b", "/dst/"]
    assert one('COPY ["a b", "/d"]').json
    assert one("VOLUME /a /b").args == ["/a", "/b"]
    assert one('VOLUME ["/a"]').args == ["/a"]
    assert one("EXPOSE 8080 22 443/udp").args == ["22", "443/udp", "8080"]
    assert "COPY requires at least two arguments, but only one was provided" in \
        str(error("FROM a\nCOPY x"))
    assert "VOLUME specified can not be an empty string" in str(error('FROM a\nVOLUME [""]'))
    assert "EXPOSE requires at least one argument" in str(error("FROM a\nEXPOSE"))


def test_shell_must_be_json():
    assert one('SHELL ["/bin/bash", "-c"]').args == ["/bin/bash", "-c"]
    assert "SHELL requires the arguments to be in JSON form" in str(error("FROM a\nSHELL sh"))


def test_empty_run_and_cmd():
    assert one("CMD").args == []


# Flags -----------------------------------------------------------------------------------------

def test_flags():
    ins = one('COPY --from=build --chown="1:1" --link a /b')
    assert ins.flags == {"from": "build", "chown": "1:1", "link": "true"}
    assert ins.args == ["a", "/b"]
    ins = one("ADD --exclude=*.md --exclude=*.txt . /x")
    assert ins.flag_list == [("exclude", "*.md"), ("exclude", "*.txt")]


def test_double_dash_ends_flags():
    assert one("COPY -- --weird /x").args == ["--weird", "/x"]


@pytest.mark.parametrize("text,message", [
    ("COPY --bogus a b", "dockerfile parse error on line 2: unknown flag: --bogus"),
    ("COPY --from a b", "missing a value on flag: --from"),
    ("COPY --link=maybe a b", "expecting boolean value for flag --link, not: maybe"),
    ("COPY --from=a --from=b x y", "duplicate flag specified: --from"),
    ("RUN --chown=1 x", "unknown flag: --chown"),
    ("FROM --from=x y", "unknown flag: --from"),
])
def test_bad_flags(text, message):
    assert message in str(error("FROM a\n" + text))


def test_classic_refusals():
    refusal = classic_refusal(one("RUN --mount=type=cache,target=/c make"))
    assert refusal.startswith("the --mount option requires BuildKit")
    assert classic_refusal(one("COPY --chmod=644 a b")).startswith("the --chmod option")
    assert classic_refusal(one("ADD --exclude=x a b")).startswith("the --exclude option")
    assert classic_refusal(one("COPY --link --chown=1 a b")) is None
    assert classic_refusal(one("RUN make")) is None


# HEALTHCHECK -----------------------------------------------------------------------------------

def test_healthcheck_forms():
    ins = one("HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://x || exit 1")
    assert ins.args == ["CMD", "curl -f http://x || exit 1"] and not ins.json
    assert ins.flags == {"interval": "5s", "retries": "3"}
    ins = one('HEALTHCHECK CMD ["true"]')
    assert ins.args == ["CMD", "true"] and ins.json
    assert one("HEALTHCHECK NONE").args == ["NONE"]


@pytest.mark.parametrize("text,message", [
    ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
    ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
    ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
    ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
    ("HEALTHCHECK --interval=10us CMD x", 'Interval "interval" cannot be less than 1ms'),
    ("HEALTHCHECK --timeout=5 CMD x", 'time: missing unit in duration "5"'),
    ("HEALTHCHECK --timeout=abc CMD x", 'time: invalid duration "abc"'),
    ("HEALTHCHECK --retries=-2 CMD x", "--retries cannot be negative (-2)"),
    ("HEALTHCHECK --retries=x CMD x", 'parsing "x": invalid syntax'),
])
def test_bad_healthcheck(text, message):
    assert message in str(error("FROM a\n" + text))


def test_healthcheck_durations_accepted():
    ins = one("HEALTHCHECK --interval=1m30s --timeout=0 --start-period=1.5s CMD x")
    assert ins.flags["interval"] == "1m30s"


# ONBUILD and heredocs --------------------------------------------------------------------------

def test_onbuild_trigger_parsed():
    ins = one("ONBUILD  COPY --chown=1 a /b")
    assert ins.args == ["COPY --chown=1 a /b"]
    assert ins.sub.cmd == "COPY" and ins.sub.flags == {"chown": "1"}
    assert ins.sub.args == ["a", "/b"]


def test_onbuild_with_bad_trigger_is_kept_for_the_child_build():
    ins = one("ONBUILD FOO bar")
    assert ins.args == ["FOO bar"] and ins.sub is None


@pytest.mark.parametrize("text,message", [
    ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("ONBUILD from x", "FROM isn't allowed as an ONBUILD trigger"),
    ("ONBUILD MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("ONBUILD", "ONBUILD requires at least one argument"),
])
def test_bad_onbuild(text, message):
    assert message in str(error("FROM a\n" + text))


@pytest.mark.parametrize("text", [
    "RUN <<EOF\necho hi\nEOF",
    "RUN cat <<-EOT > /x\nhi\nEOT",
    "COPY <<EOF /dst\nhello\nEOF",
    "RUN python3 << 'PY'\nprint(1)\nPY",
    "ONBUILD RUN <<EOF\necho hi\nEOF",
])
def test_heredocs_are_refused(text):
    e = error("FROM a\n" + text)
    assert "is not supported by the classic builder" in str(e) and e.line == 2


def test_shift_and_json_forms_are_not_heredocs():
    # "<<" starts a heredoc word only at a word's start (dockerd reads "$((1 << 2))" as a
    # heredoc named "2))" too, and then fails on it)
    assert one("RUN echo $((1<<2))").args == ["echo $((1<<2))"]
    assert one('RUN ["sh", "-c", "cat <<EOF"]').json


def test_long_lines_are_refused():
    e = error("FROM a\nRUN " + "x" * 70000)
    assert "dockerfile line greater than max allowed size of 65535" in str(e)


@pytest.mark.parametrize("text,message", [
    ("FORM a", "unknown instruction: FORM (did you mean FROM?)"),
    ("form a", "unknown instruction: form (did you mean from?)"),
    ("FROM a\nCOPPY x y", "unknown instruction: COPPY (did you mean COPY?)"),
    ("FROM a\nXYZZY x", "unknown instruction: XYZZY"),
    ("FROM a\nCOPY --form=x a b", "unknown flag: --form (did you mean from?)"),
    ("FROM a\nCOPY --chownn=1 a b", "unknown flag: --chownn (did you mean chown?)"),
    ("FROM a\nCOPY --zzzzzz=1 a b", "unknown flag: --zzzzzz"),
])
def test_suggestions(text, message):
    assert str(error(text)).endswith(message)
