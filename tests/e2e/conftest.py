from tests.helpers.engine_daemon import berthd, daemon  # noqa: F401 (fixtures)
