"""Restart policies as dockerd's restart manager applies them: whether a container that exited is
started again, and after how long (100 ms, doubled on each restart up to a minute; back to
100 ms once a run lasted 10 s)."""
from __future__ import annotations

from dataclasses import dataclass

from lowrt.units import ascii_digits

POLICIES = ("no", "always", "unless-stopped", "on-failure")
FIRST_DELAY = 0.1
MAX_DELAY = 60.0
RESET_AFTER = 10.0          # a run this long (seconds) resets the backoff


@dataclass
class RestartManager:
    policy: str                     # one of POLICIES ("" is "no")
    max_retries: int = 0            # on-failure's limit; 0: none
    restart_count: int = 0          # restarts so far (the container's RestartCount)
    delay: float = 0.0
    canceled: bool = False          # the user stopped or killed it: no restart after this exit

    def should_restart(self, exit_code: int, manually_stopped: bool,
                       ran_for: float) -> float | None:
        """The delay before the restart, or None when the container stays stopped. A yes
        counts the restart."""
        if self.policy in ("", "no") or self.canceled:
            return None
        if ran_for >= RESET_AFTER:
            self.delay = 0.0
        self.delay = FIRST_DELAY if self.delay == 0 else min(self.delay * 2, MAX_DELAY)
        if self.policy == "always":
            restart = True
        elif self.policy == "unless-stopped":
            restart = not manually_stopped
        elif self.policy == "on-failure":
            restart = exit_code != 0 and (self.max_retries == 0
                                          or self.restart_count < self.max_retries)
        else:
            restart = False
        if not restart:
            return None
        self.restart_count += 1
        return self.delay

    def cancel(self) -> None:
        self.canceled = True


def parse(text: str) -> dict:
    """`--restart` as the docker CLI parses it ('on-failure:3' -> HostConfig.RestartPolicy);
    whether the policy makes sense is the daemon's to say (validate)."""
    name, colon, count = text.partition(":")
    if colon and not name:
        raise ValueError("invalid restart policy format: no policy provided before colon")
    if count and not ascii_digits(count.removeprefix("-")):
        raise ValueError("invalid restart policy format: maximum retry count must be an integer")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def validate(policy: dict) -> str | None:
    """dockerd's message for a RestartPolicy it refuses, or None."""
    name, count = policy.get("Name") or "", policy.get("MaximumRetryCount") or 0
    if name in ("always", "unless-stopped", "no"):
        if count:
            return ("invalid restart policy: maximum retry count can only be used with "
                    "'on-failure'" + (" and cannot be negative" if count < 0 else ""))
    elif name == "on-failure":
        if count < 0:
            return "invalid restart policy: maximum retry count cannot be negative"
    elif name:
        return (f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
                f"'on-failure', or 'unless-stopped'")
    return None
