"""lowrt: a runc-compatible OCI runtime."""
