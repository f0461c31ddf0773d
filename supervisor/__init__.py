"""berth-supervisor: containerd's gRPC API over container and task records, and its client library."""
