"""The callback worker: claim due status-callback events, POST them concurrently, stop
gracefully.

Mechanics only; what one delivery does is in :mod:`smsgateway.services.callbacks`. Any number
of workers can share the database: claims skip rows others hold, only the first pending event
of a message is ever claimable (so a message's callbacks go out in order), and a dead worker's
claim becomes due again when its lease ends.

Slots: at most ``concurrency`` POSTs at once, and at most ``per_host`` of them to one host, so
a receiver that hangs until the timeout holds ``per_host`` slots, never all of them. A host
with ``per_host`` events already held is left out of the next claim, so a slow host cannot
fill the worker's queue either. Claiming and stopping are the shared loop of
:mod:`smsgateway.workers.claiming`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smsgateway.observability import callback_metrics as metrics
from smsgateway.store import callbacks as store
from smsgateway.workers.claiming import ClaimingWorker
from smsgateway.workers.outbox import default_worker_id

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.services.callbacks import CallbackDeliverer
    from smsgateway.store.callbacks import CallbackClaim
    from smsgateway.store.pool import Connection

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallbackWorkerConfig:
    """Times in seconds; ``lease_seconds`` must exceed the POST timeout."""

    concurrency: int = 32
    per_host: int = 4
    batch_size: int = 100
    lease_seconds: float = 60.0
    poll_interval: float = 0.2
    worker_id: str = field(default_factory=default_worker_id)
    # How often the backlog gauges are read from the database.
    metrics_interval: float = 15.0

    def __post_init__(self) -> None:
        if min(self.concurrency, self.per_host, self.batch_size) < 1:
            raise ValueError("concurrency, per_host and batch_size must be at least 1")
        if min(self.poll_interval, self.lease_seconds, self.metrics_interval) <= 0:
            raise ValueError("poll_interval, lease_seconds and metrics_interval must be positive")


class CallbackWorker(ClaimingWorker["CallbackClaim"]):
    """``await run()`` until ``await stop(deadline)``."""

    _label = "callback"
    _work_noun = "POST(s)"
    # Nothing due now may mean only hosts at their cap: a freed slot is worth a new claim.
    _wake_on_free_slot = True

    def __init__(
        self, pool: asyncpg.Pool, deliverer: CallbackDeliverer, config: CallbackWorkerConfig
    ) -> None:
        super().__init__(
            pool,
            worker_id=config.worker_id,
            batch_size=config.batch_size,
            concurrency=config.concurrency,
            poll_interval=config.poll_interval,
        )
        self._deliverer = deliverer
        self._config = config
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._held: Counter[str] = Counter()
        self._next_metrics: float | None = None

    @property
    def config(self) -> CallbackWorkerConfig:
        return self._config

    async def _before_claiming(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._next_metrics is None or now >= self._next_metrics:
            self._next_metrics = now + self._config.metrics_interval
            await self._refresh_gauges()

    async def _refresh_gauges(self) -> None:
        try:
            async with self._pool.acquire() as connection:
                backlog = await store.callback_backlog(connection)
        except Exception:
            logger.warning("could not read the callback backlog for metrics", exc_info=True)
            return
        metrics.CALLBACK_BACKLOG.labels("pending").set(backlog.pending)
        metrics.CALLBACK_BACKLOG.labels("due").set(backlog.due)
        metrics.CALLBACK_OLDEST_PENDING_AGE.set(backlog.oldest_pending_age_seconds)

    async def _claim_due(self, connection: Connection, limit: int) -> list[CallbackClaim]:
        full = [host for host, held in self._held.items() if held >= self._config.per_host]
        return await store.claim_due(
            connection, limit, self._config.lease_seconds, self._config.worker_id, full
        )

    def _claimed(self, claim: CallbackClaim) -> None:
        self._held[claim.host] += 1

    @asynccontextmanager
    async def _slot(self, claim: CallbackClaim) -> AsyncIterator[None]:
        host_slots = self._host_slots.setdefault(
            claim.host, asyncio.Semaphore(self._config.per_host)
        )
        # The host's slot first: waiting for it must not hold one of the shared slots.
        async with host_slots, self._slots:
            yield

    async def _work(self, claim: CallbackClaim) -> None:
        await self._deliverer.deliver(claim)

    def _failed(self, claim: CallbackClaim) -> None:
        metrics.CALLBACK_ERRORS.inc()
        logger.exception("callback event %s: delivery failed", claim.id)

    def _claim_failed(self) -> None:
        metrics.CALLBACK_ERRORS.inc()

    def _finished(self, claim: CallbackClaim) -> None:
        self._held[claim.host] -= 1
        if self._held[claim.host] <= 0:
            del self._held[claim.host]
            host_slots = self._host_slots.get(claim.host)
            if host_slots is not None and not host_slots.locked():
                self._host_slots.pop(claim.host, None)

    async def _release_claims(self, connection: Connection, claims: list[CallbackClaim]) -> None:
        await store.release(connection, claims)
