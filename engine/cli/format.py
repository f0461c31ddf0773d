"""Output as the docker CLI prints it: tabwriter tables, short IDs, human sizes and durations."""
from __future__ import annotations

from ..timefmt import human_duration

__all__ = ["bytes_size", "human_duration", "human_size", "table", "truncate_id"]


def truncate_id(ident: str) -> str:
    return ident.split(":", 1)[-1][:12]


def table(rows: list[list[str]], minwidth: int = 10) -> str:
    """Go's tabwriter as docker sets it up (minwidth 10, or 20 for `top`; padding 3): each
    column as wide as its widest cell plus three spaces, and at least minwidth."""
    widths = [max(max(len(r[i]) for r in rows) + 3, minwidth) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(r[:-1])] + [r[-1]]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def human_size(size: float) -> str:
    """go-units HumanSizeWithPrecision(size, 3): decimal units, three significant digits."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size /= 1000.0
        i += 1
    return f"{size:.3g}{units[i]}"


def bytes_size(size: float) -> str:
    """go-units BytesSize: binary units, four significant digits (`docker stats` memory)."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size /= 1024.0
        i += 1
    return f"{size:.4g}{units[i]}"
