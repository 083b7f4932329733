"""Per-API-key (else per-client-address) request limits, on slowapi's limiter.

slowapi's Limiter holds the storage (memory, or Redis so that several gateway processes
share one limit) and the moving-window strategy. Its checks are synchronous; against Redis
they run in a worker thread so that a Redis round trip never stalls the event loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import lru_cache

import anyio.to_thread
from limits import RateLimitItem, parse
from slowapi import Limiter
from slowapi.util import get_remote_address


@dataclass(frozen=True)
class RateDecision:
    """Whether the request may go on, and the figures for the RateLimit-* headers."""

    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    @property
    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class RateLimits:
    """One per process; ``storage_url`` None keeps the counters in this process's memory."""

    def __init__(self, default_limit: str, storage_url: str | None = None) -> None:
        self._default = _parsed(default_limit)
        self._in_memory = storage_url is None or storage_url.startswith("memory://")
        self._limiter = Limiter(
            key_func=get_remote_address,
            storage_uri=storage_url or "memory://",
            strategy="moving-window",
            key_prefix="smsgw",
        )

    async def check(self, identity: str, limit: str | None = None) -> RateDecision:
        """Counts one request for ``identity`` against ``limit`` (else the default)."""
        item = _parsed(limit) if limit else self._default
        if self._in_memory:
            return self._hit(item, identity)
        return await anyio.to_thread.run_sync(self._hit, item, identity)

    def _hit(self, item: RateLimitItem, identity: str) -> RateDecision:
        allowed = self._limiter.limiter.hit(item, identity)
        stats = self._limiter.limiter.get_window_stats(item, identity)
        return RateDecision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_seconds=max(0, math.ceil(stats.reset_time - time.time())),
        )


@lru_cache(maxsize=256)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)
