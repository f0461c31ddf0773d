"""Command-line parsing the way runc's (urfave/cli on Go's flag package) accepts it.

`-flag` and `--flag` are the same, values come as `--flag value` or `--flag=value`, booleans
take an optional `=true|false`, and flags may follow the positional arguments except for
commands whose trailing arguments are a program's (`exec`, `ps`). argparse is not used: its
import alone costs more than a whole `lowrt start`.
"""
from __future__ import annotations

from lowrt.errors import LowrtError


class ShowHelp(Exception):
    """-h/--help on a command: the text lists its flags."""

    def __init__(self, flags: list["Flag"]) -> None:
        lines = []
        for f in flags:
            names = f"--{f.name}" + (f", -{f.short}" if f.short else "")
            value = "" if f.kind == "bool" else " value"
            lines.append(f"   {names}{value}\n")
        super().__init__("help")
        self.text = "".join(lines) or "   (none)\n"


class Flag:
    """name: the long name and the key in the result; kind: bool, str, int or list."""
    __slots__ = ("name", "kind", "short", "default")

    def __init__(self, name: str, kind: str = "bool", short: str = "",
                 default: object = None) -> None:
        self.name, self.kind, self.short, self.default = name, kind, short, default


class Parsed:
    __slots__ = ("values", "args", "given")

    def __init__(self, values: dict) -> None:
        self.values = values
        self.args: list[str] = []
        self.given: set[str] = set()

    def __getitem__(self, key: str):
        return self.values[key]


def parse(argv: list[str], flags: list[Flag], *, interspersed: bool = True,
          what: str = "lowrt") -> Parsed:
    by_name: dict[str, Flag] = {}
    for f in flags:
        by_name[f.name] = f
        if f.short:
            by_name[f.short] = f
    out = Parsed({f.name: ([] if f.kind == "list" else f.default if f.default is not None
                           else False if f.kind == "bool" else "" if f.kind == "str" else 0)
                  for f in flags})
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            out.args.extend(argv[i:])
            break
        if not a.startswith("-") or a == "-":
            out.args.append(a)
            if not interspersed:
                out.args.extend(argv[i:])
                break
            continue
        name, eq, value = a.lstrip("-").partition("=")
        f = by_name.get(name)
        if f is None and name in ("h", "help"):
            raise ShowHelp(flags)
        if f is None:
            raise LowrtError(f"{what}: flag provided but not defined: -{name}")
        out.given.add(f.name)
        if f.kind == "bool":
            if eq:
                if value.lower() not in ("true", "false", "1", "0", "t", "f"):
                    raise LowrtError(f"{what}: invalid boolean value {value!r} for -{name}")
                out.values[f.name] = value.lower() in ("true", "1", "t")
            else:
                out.values[f.name] = True
            continue
        if not eq:
            if i >= len(argv):
                raise LowrtError(f"{what}: flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if f.kind == "int":
            try:
                out.values[f.name] = int(value)
            except ValueError:
                raise LowrtError(f"{what}: invalid value {value!r} for flag -{name}: parse error") from None
        elif f.kind == "list":
            out.values[f.name].append(value)
        else:
            out.values[f.name] = value
    return out


def nargs(parsed: Parsed, command: str, exact: int | None = None, minimum: int | None = None,
          maximum: int | None = None) -> None:
    n = len(parsed.args)
    if exact is not None and n != exact:
        raise LowrtError(f"lowrt: {command!r} requires exactly {exact} argument(s)")
    if minimum is not None and n < minimum:
        raise LowrtError(f"lowrt: {command!r} requires a minimum of {minimum} argument(s)")
    if maximum is not None and n > maximum:
        raise LowrtError(f"lowrt: {command!r} requires a maximum of {maximum} argument(s)")
