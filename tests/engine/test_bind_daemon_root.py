"""Binds that hold berthd's data root, or lie in it, as dockerd treats them
(validateBindDaemonRoot): an explicit private or slave propagation is refused at create, and
none given becomes rslave where the source's mount is shared or slave (else rprivate, dockerd's
fallback), so that berthd's later unmounts under its root reach the container instead of
being pinned by it. Real mounts: the propagation read is /proc/self/mountinfo's."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from engine import spec
from engine.errors import InvalidParameter


@pytest.fixture
def roots():
    """A shared mount and a private one, each with a data root inside."""
    made = []
    try:
        for kind in ("--make-shared", "--make-private"):
            top = tempfile.mkdtemp(prefix="bt-droot-", dir="/tmp")
            made.append(top)
            subprocess.run(["mount", "--bind", top, top], check=True)
            subprocess.run(["mount", kind, top], check=True)
            os.mkdir(f"{top}/data")
        yield made
    finally:
        for top in made:
            subprocess.run(["umount", "-l", top], check=False)
            shutil.rmtree(top, ignore_errors=True)


def _propagation(hc: dict, root: str) -> list[str]:
    return [m["options"][-1] for m in spec._user_mounts(hc, root)]


def test_a_bind_holding_the_data_root_gets_rslave(roots):
    shared, private = roots
    assert _propagation({"Binds": [f"{shared}:/x"]}, f"{shared}/data") == ["rslave"]
    assert _propagation({"Mounts": [{"Type": "bind", "Source": f"{shared}/data",
                                     "Target": "/x"}]}, f"{shared}/data") == ["rslave"]
    # dockerd's fallback where rslave cannot be had; elsewhere the default stays rprivate
    assert _propagation({"Binds": [f"{private}:/x"]}, f"{private}/data") == ["rprivate"]
    assert _propagation({"Binds": [f"{shared}:/x"]}, f"{private}/data") == ["rprivate"]
    assert _propagation({"Binds": [f"{shared}:/x"]}, None) == ["rprivate"]


@pytest.mark.parametrize("hc", [
    {"Binds": ["{top}:/x:rprivate"]}, {"Binds": ["{top}/data/sub:/x:slave"]},
    {"Mounts": [{"Type": "bind", "Source": "{top}", "Target": "/x",
                 "BindOptions": {"Propagation": "private"}}]},
])
def test_a_private_bind_of_the_data_root_is_refused_naming_it(roots, hc):
    top = roots[0]
    hc = {k: [m.replace("{top}", top) if isinstance(m, str)
              else dict(m, Source=m["Source"].replace("{top}", top)) for m in v]
          for k, v in hc.items()}
    with pytest.raises(InvalidParameter) as e:
        spec.check_host_config(hc, f"{top}/data")
    assert (f'when mount source is within the daemon root, daemon root: "{top}/data", bind '
            f'mount source: "{top}') in str(e.value), str(e.value)


def test_rslave_rshared_or_none_are_what_it_may_have(roots):
    top = roots[0]
    for mode in ("", ":rslave", ":rshared", ":ro"):
        spec.check_host_config({"Binds": [f"{top}:/x{mode}"]}, f"{top}/data")
    spec.check_host_config({"Binds": [f"{top}/other:/x:rprivate"]}, f"{top}/data")
