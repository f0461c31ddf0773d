"""What berthd reports about itself: its own version and the Docker API versions it serves."""

VERSION = "0.1.0"
API_VERSION = "1.50"        # the newest Docker Engine API version served (docker CLI 28)
MIN_API_VERSION = "1.24"    # the oldest, as dockerd's default minimum
GIT_COMMIT = "berth"
NAMESPACE = "berth"         # berthd's containerd namespace on berth-supervisor


def parse_api_version(text: str) -> tuple[int, int]:
    """'1.50' -> (1, 50); raises ValueError on anything else."""
    major, minor = text.split(".")
    return int(major), int(minor)


def api_at_least(version: str, wanted: str) -> bool:
    return parse_api_version(version) >= parse_api_version(wanted)
