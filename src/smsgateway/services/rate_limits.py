"""Per-API-key (else per-client-address) request limits.

Shared through Redis (RATE_LIMIT_STORAGE_URL), slowapi's Limiter holds the storage and the
moving-window strategy; its checks are synchronous, so they run in a worker thread and a
Redis round trip never stalls the event loop. Per process (the default), a moving window in memory
does the same job in a dictionary look-up: limits' own memory storage starts a timer thread
every few milliseconds under load, which cost more than the rest of a request.
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

from smsgateway.domain.rate_limit import MovingWindowLimiter


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
        self._local = (
            MovingWindowLimiter()
            if storage_url is None or storage_url.startswith("memory://")
            else None
        )
        self._shared = (
            None
            if self._local is not None
            else Limiter(
                key_func=get_remote_address,
                storage_uri=storage_url,
                strategy="moving-window",
                key_prefix="smsgw",
            )
        )

    async def check(self, identity: str, limit: str | None = None) -> RateDecision:
        """Counts one request for ``identity`` against ``limit`` (else the default)."""
        item = _parsed(limit) if limit else self._default
        if self._local is not None:
            verdict = self._local.hit(
                identity, item.amount, float(item.get_expiry()), time.monotonic()
            )
            return RateDecision(
                allowed=verdict.allowed,
                limit=verdict.limit,
                remaining=verdict.remaining,
                reset_seconds=math.ceil(
                    verdict.retry_after if not verdict.allowed else verdict.reset_seconds
                ),
            )
        return await anyio.to_thread.run_sync(self._hit_shared, item, identity)

    def _hit_shared(self, item: RateLimitItem, identity: str) -> RateDecision:
        assert self._shared is not None
        allowed = self._shared.limiter.hit(item, identity)
        stats = self._shared.limiter.get_window_stats(item, identity)
        return RateDecision(
            allowed=allowed,
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_seconds=max(0, math.ceil(stats.reset_time - time.time())),
        )


@lru_cache(maxsize=256)
def _parsed(limit: str) -> RateLimitItem:
    return parse(limit)
