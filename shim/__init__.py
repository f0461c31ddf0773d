"""berth-shim: one process per container that owns its stdio, reaps it and records its exit."""
