"""A moving-window request limit per identity: at most ``amount`` in any ``period`` seconds.

The same rule as the shared (Redis) limiter's moving window, kept in memory for one process.
The clock is passed in, so it is exact and testable; it does no I/O.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: float
    """Seconds until the oldest counted request leaves the window."""
    retry_after: float
    """Seconds until one more request would be allowed (0 when allowed now)."""


class MovingWindowLimiter:
    """A log of recent request times per (identity, limit); at most ``amount`` entries each."""

    def __init__(self, *, max_identities: int = 20_000) -> None:
        self._logs: dict[tuple[str, int, float], deque[float]] = {}
        self._max_identities = max_identities

    def hit(self, identity: str, amount: int, period: float, now: float) -> Verdict:
        if amount < 1 or period <= 0:
            raise ValueError("a limit needs at least one request per positive period")
        key = (identity, amount, period)
        log = self._logs.get(key)
        if log is None:
            if len(self._logs) >= self._max_identities:
                self._forget_idle(now)
            log = self._logs[key] = deque(maxlen=amount)
        while log and log[0] <= now - period:
            log.popleft()
        if len(log) >= amount:
            wait = log[0] + period - now
            return Verdict(False, amount, 0, wait, wait)
        log.append(now)
        return Verdict(True, amount, amount - len(log), log[0] + period - now, 0.0)

    def _forget_idle(self, now: float) -> None:
        idle = [key for key, log in self._logs.items() if not log or log[-1] <= now - key[2]]
        for key in idle:
            del self._logs[key]
        if len(self._logs) >= self._max_identities:
            # Everyone is active: forget the oldest half rather than grow without bound.
            for key in list(self._logs)[: self._max_identities // 2]:
                del self._logs[key]
