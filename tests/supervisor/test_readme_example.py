"""The README's supervisor.Client example runs as written, against a private supervisor and a
busybox rootfs in place of the paths it names."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _example() -> str:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    found = [b for b in blocks if "from supervisor import Client" in b]
    assert len(found) == 1, "the README has one supervisor.Client example"
    return found[0]


def test_the_readme_s_client_example_runs(supervisor, rootfs, tmp_path):
    code = _example()
    assert "unix:///run/berth/supervisor.sock" in code and "/path/to/rootfs" in code
    code = (code.replace("unix:///run/berth/supervisor.sock", supervisor.address)
                .replace("/path/to/rootfs", str(rootfs)))
    env = dict(os.environ, TMPDIR=str(tmp_path))     # its bundle goes with the test
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=60, env=env)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].startswith("(0, ") and '"log":"hi\\n","stream":"stdout"' in lines[1], p.stdout
