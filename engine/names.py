"""Container names: validation as dockerd's, and random names for containers created without one."""
from __future__ import annotations

import random
import re

from .errors import InvalidParameter

# dockerd's pattern ends in `+` and so refuses one-character names; berth accepts them, since
# issue 2's acceptance runs `docker run -d --name x`.
VALID_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

# berth's own word lists (harbours and the sea), in the adjective_noun form docker users expect.
_ADJECTIVES = (
    "amber", "brave", "brisk", "calm", "clever", "coastal", "dazzling", "eager", "fair", "gentle",
    "golden", "happy", "hardy", "jolly", "keen", "lively", "lucky", "merry", "nimble", "patient",
    "proud", "quiet", "rapid", "salty", "serene", "silver", "steady", "sturdy", "swift", "tidal",
    "trusty", "vivid", "wandering", "wise", "windy", "zealous",
)
_NOUNS = (
    "anchor", "ballast", "beacon", "bollard", "bosun", "breakwater", "buoy", "capstan", "cargo",
    "compass", "cove", "dinghy", "dock", "ferry", "galley", "harbour", "hawser", "helm", "jetty",
    "keel", "lantern", "lighthouse", "marina", "mooring", "pier", "pilot", "quay", "rudder",
    "schooner", "sextant", "skiff", "slipway", "tide", "tugboat", "wharf", "windlass",
)


def normalize(name: str) -> str:
    """A user-given name -> the stored form with its leading '/'; InvalidParameter if invalid."""
    if not VALID_NAME.match(name):
        raise InvalidParameter(
            f'Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    return name if name.startswith("/") else "/" + name


def generate(taken) -> str:
    """A free random name ('/steady_anchor'), with a digit appended after repeated collisions."""
    for attempt in range(20):
        name = f"/{random.choice(_ADJECTIVES)}_{random.choice(_NOUNS)}"
        if attempt >= 5:
            name += str(random.randint(0, 99))
        if not taken(name):
            return name
    raise InvalidParameter("could not find a free container name")
