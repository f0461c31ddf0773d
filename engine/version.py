"""What berthd reports about itself: its own version and the Docker API versions it serves, and
the versions of the programs it runs (the runtime, the init), as they report them."""
from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

VERSION = "0.1.0"
API_VERSION = "1.50"        # the newest Docker Engine API version served (docker CLI 28)
MIN_API_VERSION = "1.24"    # the oldest, as dockerd's default minimum
NAMESPACE = "berth"         # berthd's containerd namespace on berth-supervisor


def _git_commit(root: Path = Path(__file__).resolve().parent.parent) -> str:
    """The commit berthd runs from, short as dockerd shows its own, where it runs from a git
    checkout (read from .git, no git needed); "" where it does not (an installed copy)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head[len("ref: "):]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()[:7]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:7]
    except OSError:
        pass
    return ""


GIT_COMMIT = _git_commit()


def parse_api_version(text: str) -> tuple[int, int]:
    """'1.50' -> (1, 50); raises ValueError on anything else."""
    major, minor = text.split(".")
    return int(major), int(minor)


def api_at_least(version: str, wanted: str) -> bool:
    return parse_api_version(version) >= parse_api_version(wanted)


# -- the versions of the programs berthd runs (docker version's components) ----------------


@dataclass(frozen=True)
class ProgramVersion:
    name: str       # as the program names itself ("runc", "lowrt", "tini")
    version: str
    commit: str     # "" where the program reports none


def parse_runtime_version(text: str) -> ProgramVersion:
    """`runc --version` and alike: "NAME version X" and an optional "commit: C" line, read
    as dockerd reads them."""
    name = version = commit = ""
    for line in text.strip().splitlines():
        if "version" in line and not name:
            before, _, after = line.rpartition("version")
            name, version = before.strip(), after.strip()
        elif line.startswith("commit:"):
            commit = line[len("commit:"):].strip()
    return ProgramVersion(name, version, commit)


def parse_init_version(text: str) -> ProgramVersion:
    """`tini --version`: "tini version 0.19.0 - git.de40ad0" (the commit part is optional)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    head, _, commit = line.partition(" - ")
    name, _, version = head.partition(" version ")
    return ProgramVersion(name.strip(), version.strip(), commit.strip().removeprefix("git."))


@functools.lru_cache(maxsize=16)
def _run_version(path: str, mtime_ns: int, init: bool) -> ProgramVersion | None:
    try:
        out = subprocess.run([path, "--version"], capture_output=True, timeout=10,
                             stdin=subprocess.DEVNULL, check=True).stdout.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None
    parsed = parse_init_version(out) if init else parse_runtime_version(out)
    return parsed if parsed.version else None


def program_version(path: str, *, init: bool = False) -> ProgramVersion | None:
    """What the program at path says of itself with --version, asked once per binary (again
    after it is replaced); None when it cannot be run or says nothing readable. Blocks: call
    it in a thread."""
    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return _run_version(path, mtime, init)
