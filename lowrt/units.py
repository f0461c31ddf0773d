"""Sizes as docker's users write them ("64m", "1.5g", "10MiB", "512"), read as go-units reads
them, in one place for every layer that reads one: berthd (HostConfig options, log options),
berth-shim (the json-file log's max-size) and lowrt (`update --memory`).

go-units has two readings of the same text, and docker uses each for different options:
- RAMInBytes, binary (k = 1024): memory, memory-swap, memory-reservation, shm-size, tmpfs
  sizes, `runc update --memory`;
- FromHumanSize, decimal (k = 1000): the json-file and local log drivers' max-size, so
  `--log-opt max-size=10m` rotates at 10,000,000 bytes.

The grammar is go-units v0.5's (what docker 28 vendors): a number (Go's ParseFloat syntax, not
negative), an optional single space, then no suffix, `b`, or one of k m g t p followed by
nothing, `b` or `ib`, in any case. Stdlib only and no `re`: lowrt and every shim import this.
"""
from __future__ import annotations

INT64_MAX = (1 << 63) - 1
_PREFIXES = "kmgtp"


def ram_in_bytes(text: str) -> int:
    """go-units' RAMInBytes: '64m' -> 67108864 (binary multiples)."""
    return _parse(text, 1024)


def from_human_size(text: str) -> int:
    """go-units' FromHumanSize: '10m' -> 10000000 (decimal multiples, as SI)."""
    return _parse(text, 1000)


def _parse(text: str, base: int) -> int:
    """ValueError with go-units' message ("invalid size: '…'", "invalid suffix: '…'") when
    text is not a size; a size beyond int64 is refused too (Go would wrap it around)."""
    text = str(text)
    sep = max(text.rfind(ch) for ch in "0123456789. ")
    if sep < 0:
        raise ValueError(f"invalid size: '{text}'")
    num = text[:sep] if text[sep] == " " else text[:sep + 1]
    suffix = text[sep + 1:]
    size = _go_float(num)
    if size < 0:
        raise ValueError(f"invalid size: '{text}'")
    if suffix:
        low = suffix.lower()
        if len(low) > 3 or (low[0] == "b" and len(low) > 1):
            raise ValueError(f"invalid suffix: '{low}'")
        if low[0] != "b":
            if low[0] not in _PREFIXES or low[1:] not in ("", "b", "ib"):
                raise ValueError(f"invalid suffix: '{low}'")
            size *= base ** (_PREFIXES.index(low[0]) + 1)
    if size != size or size > INT64_MAX:      # NaN cannot come in; overflow can
        raise ValueError(f"invalid size: '{text}': larger than {INT64_MAX} bytes")
    return int(size)


def _go_float(num: str) -> float:
    """Go's strconv.ParseFloat for the decimal forms a size can take ("1", "1.5", ".5", "1e3",
    "+2"), refusing what Python's float() takes and Go's does not (spaces, "1_000")."""
    digits = num[1:] if num[:1] in "+-" else num
    mantissa, e, exponent = digits.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    exponent = exponent[1:] if exponent[:1] in "+-" else exponent
    if not (ascii_digits(whole + frac) and (not e or ascii_digits(exponent))):
        raise ValueError(f'strconv.ParseFloat: parsing "{num}": invalid syntax')
    return float(num)


def ascii_digits(s: str) -> bool:
    """Only 0-9: str.isdigit() also takes "²" and "٣", which int() then refuses or reads."""
    return s.isascii() and s.isdigit()
