"""lowrt's only door to privileged kernel calls: thin ctypes wrappers over libc and raw syscalls.

Every wrapper raises OSError carrying the errno and the path or value that failed, so callers
above never look at errno themselves.
"""
