"""When to try a Sinch call again, and how long to wait first.

Exponential backoff with full jitter (a delay drawn uniformly from ``[0, min(max_delay,
base_delay * 2**n)]``, so that many workers failing together do not retry together), except
that a Retry-After from Sinch is honoured up to ``max_retry_after``. Attempts are bounded, and no
new attempt starts once the overall deadline would be passed. The random source, the clock and
the sleep are fields, so tests drive the policy without waiting.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry; ``max_attempts`` counts the first try.

    ``deadline`` is in seconds from the first attempt: a retry whose wait would end past it is
    not made. ``random`` returns a float in ``[0, 1)``; ``clock`` is monotonic seconds.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_retry_after: float = 30.0
    deadline: float = 60.0
    random: Callable[[], float] = field(default=random.random, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    sleep: Callable[[float], Awaitable[None]] = field(default=asyncio.sleep, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if min(self.base_delay, self.max_delay, self.max_retry_after, self.deadline) < 0:
            raise ValueError("delays and deadline must not be negative")

    def backoff(self, retry: int) -> float:
        """The full-jitter wait before retry number ``retry`` (0 for the first retry)."""
        # Cap the exponent before it overflows a float; the cap applies long before anyway.
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(retry, 64))
        return self.random() * ceiling

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``retry``: Sinch's Retry-After (capped) if it gave one."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return self.backoff(retry)

    def next_delay(
        self, attempts_made: int, elapsed: float, retry_after: float | None = None
    ) -> float | None:
        """The wait before the next attempt; ``None`` once attempts or deadline are spent."""
        if attempts_made >= self.max_attempts:
            return None
        wait = self.delay(attempts_made - 1, retry_after)
        if elapsed + wait > self.deadline:
            return None
        return wait


NO_RETRY = RetryPolicy(max_attempts=1)
"""A policy that never retries: for callers that retry on their own schedule (an outbox)."""
