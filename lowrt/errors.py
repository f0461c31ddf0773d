"""The one exception lowrt's verbs raise: its message is what the user reads, its code the exit status."""
from __future__ import annotations


class LowrtError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
