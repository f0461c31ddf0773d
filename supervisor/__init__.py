"""berth-supervisor: containerd's gRPC API over container and task records, and its client library.

`supervisor.Client` and `supervisor.AsyncClient` are the client library (supervisor/client.py),
imported on first use: the other modules of this package must not pay for grpc's import."""


def __getattr__(name: str):
    if name in ("Client", "AsyncClient"):
        from . import client
        return getattr(client, name)
    raise AttributeError(f"module 'supervisor' has no attribute {name!r}")
