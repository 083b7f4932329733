"""Where a message's velocity counters are taken: in the guarded write (Postgres), or in Redis.

One protocol, two implementations; the domain decides (``domain.counters``), the stores count.

- ``PostgresVelocityCounters`` takes nothing itself: it leaves the velocity draws in the
  message's guarded write (``store.protection.write_guarded``), which takes them with the
  spend draws in the statement that stores the message.
- ``RedisVelocityCounters`` takes all of a message's velocity draws in one atomic Lua script
  before the write (all or nothing), and the accept gives them back if the write then does not
  store the message (a spend cap refused it, or Postgres failed). Spend caps never move to
  Redis: they are money, and stay durable in Postgres, checked under row locks.

When Redis cannot be reached, the Redis implementation answers "not taken here" and the draws
go back into the guarded write: velocity limits keep holding, on the Postgres counters, rather
than every accept failing with a 503. Each message counted that way raises
``smsgw_protection_counter_fallbacks_total``; the outage is logged once when it starts and once
when it ends, and Redis is tried again at most every ``retry_seconds`` meanwhile, so an outage
costs each accept nothing more than a clock read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Protocol

from smsgateway.domain.counters import CounterState, Draw, Ledger, Verdict, decide
from smsgateway.observability.protection_metrics import COUNTER_FALLBACKS
from smsgateway.store.redis_counters import RedisCounterStore, RedisLevels

logger = logging.getLogger(__name__)


class VelocityCounters(Protocol):
    """Takes, gives back and reads a message's velocity draws (``Draw.is_velocity``)."""

    async def take(self, draws: Sequence[Draw]) -> Verdict | None:
        """The verdict on ``draws`` (taken exactly when it passed), or None: not taken here,
        leave them to the guarded write."""
        ...

    async def give_back(self, draws: Sequence[Draw]) -> None:
        """Returns what ``take`` took (the message was not stored after all)."""
        ...

    async def levels(self, draws: Sequence[Draw]) -> dict[str, Decimal] | None:
        """Each draw's counter level now, or None: read them from Postgres."""
        ...

    async def aclose(self) -> None: ...


class PostgresVelocityCounters:
    """The velocity counters are Postgres rows, taken by the guarded write itself."""

    async def take(self, draws: Sequence[Draw]) -> Verdict | None:  # noqa: ARG002
        return None

    async def give_back(self, draws: Sequence[Draw]) -> None:  # noqa: ARG002
        return None  # nothing was taken outside the write, whose rollback undoes its own

    async def levels(self, draws: Sequence[Draw]) -> dict[str, Decimal] | None:  # noqa: ARG002
        return None

    async def aclose(self) -> None:
        return None


def _redis_failures() -> tuple[type[BaseException], ...]:
    from redis.exceptions import RedisError  # the optional extra, only when configured

    return (RedisError, OSError, TimeoutError)


class RedisVelocityCounters:
    """Velocity counters shared by every gateway process through one Redis."""

    def __init__(
        self,
        store: RedisCounterStore,
        *,
        retry_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._retry_seconds = retry_seconds
        self._monotonic = monotonic
        self._failures = _redis_failures()
        self._down_since: float | None = None

    async def take(self, draws: Sequence[Draw]) -> Verdict | None:
        if not draws or self._skipping():
            self._fall_back(draws)
            return None
        try:
            seen = await self._store.take_one(draws)
        except self._failures as exc:
            # A timeout may come after the script ran: then the Postgres counters take the
            # message too, counting it twice until both drain. Failing strict, not lenient.
            self._went_down(exc)
            self._fall_back(draws)
            return None
        self._came_back()
        if seen.taken:
            return Verdict(passed=True)
        verdict = decide(_ledger(draws, seen), draws)
        if verdict.passed:
            # Redis (doubles) and the domain (decimals) disagree at the very edge of a
            # capacity: Redis took nothing, so refuse for the shortest wait.
            refused = {index: draw.label for draw in draws for index in draw.indexes}
            return Verdict(
                passed=False, velocity_refused=tuple(sorted(refused.items())), retry_after=1
            )
        return verdict

    async def give_back(self, draws: Sequence[Draw]) -> None:
        if not draws:
            return
        try:
            await self._store.give_back(draws)
        except self._failures as exc:
            # Failing safe: the counters stay high until they drain (at most one window).
            self._went_down(exc)

    async def levels(self, draws: Sequence[Draw]) -> dict[str, Decimal] | None:
        if not draws or self._skipping():
            return None
        try:
            seen = await self._store.read(draws)
        except self._failures as exc:
            self._went_down(exc)
            return None
        self._came_back()
        return {draw.key: level for draw, level in zip(draws, seen.levels, strict=True)}

    async def aclose(self) -> None:
        await self._store.aclose()

    def _skipping(self) -> bool:
        """Inside an outage, and not yet time to try Redis again."""
        down_since = self._down_since
        return down_since is not None and self._monotonic() - down_since < self._retry_seconds

    def _fall_back(self, draws: Sequence[Draw]) -> None:
        if draws:
            COUNTER_FALLBACKS.inc()

    def _went_down(self, exc: BaseException) -> None:
        if self._down_since is None:
            logger.warning(
                "Redis for the velocity counters is unreachable (%s); taking them in Postgres "
                "until it answers again",
                str(exc) or type(exc).__name__,
            )
        self._down_since = self._monotonic()

    def _came_back(self) -> None:
        if self._down_since is not None:
            self._down_since = None
            logger.warning("Redis for the velocity counters answers again; taking them there")


def _ledger(draws: Sequence[Draw], seen: RedisLevels) -> Ledger:
    now = datetime.fromtimestamp(seen.now_ms / 1000, UTC)
    return Ledger(
        now,
        {
            draw.key: CounterState(level, now)
            for draw, level in zip(draws, seen.levels, strict=True)
        },
    )
