"""The callback worker: claim due status-callback events, POST them concurrently, stop
gracefully.

Mechanics only; what one delivery does is in :mod:`smsgateway.services.callbacks`. Any number
of workers can share the database: claims skip rows others hold, only the first pending event
of a message is ever claimable (so a message's callbacks go out in order), and a dead worker's
claim becomes due again when its lease ends.

Slots: at most ``concurrency`` POSTs at once, and at most ``per_host`` of them to one host, so
a receiver that hangs until the timeout holds ``per_host`` slots, never all of them. A host
with ``per_host`` events already held is left out of the next claim, so a slow host cannot
fill the worker's queue either. On ``stop`` the worker claims nothing more, gives waiting
claims back untried and lets running POSTs finish until the deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smsgateway.observability import callback_metrics as metrics
from smsgateway.store import callbacks as store
from smsgateway.workers.outbox import default_worker_id

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.services.callbacks import CallbackDeliverer
    from smsgateway.store.callbacks import CallbackClaim

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

    def __post_init__(self) -> None:
        if min(self.concurrency, self.per_host, self.batch_size) < 1:
            raise ValueError("concurrency, per_host and batch_size must be at least 1")
        if self.poll_interval <= 0 or self.lease_seconds <= 0:
            raise ValueError("poll_interval and lease_seconds must be positive")


class CallbackWorker:
    """``await run()`` until ``await stop(deadline)``."""

    def __init__(
        self, pool: asyncpg.Pool, deliverer: CallbackDeliverer, config: CallbackWorkerConfig
    ) -> None:
        self._pool = pool
        self._deliverer = deliverer
        self._config = config
        self._slots = asyncio.Semaphore(config.concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._held: Counter[str] = Counter()
        self._waiting: dict[asyncio.Task[None], CallbackClaim] = {}
        self._active: dict[asyncio.Task[None], CallbackClaim] = {}
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._changed = asyncio.Event()
        self._grace = 0.0
        self._running = False

    @property
    def config(self) -> CallbackWorkerConfig:
        return self._config

    @property
    def in_flight(self) -> int:
        return len(self._waiting) + len(self._active)

    async def run(self) -> None:
        """Claims and delivers until :meth:`stop`; returns once stopped."""
        if self._running:
            raise RuntimeError("this worker is already running")
        self._running = True
        logger.info("callback worker %s started", self._config.worker_id)
        try:
            async with asyncio.TaskGroup() as group:
                while not self._stopping.is_set():
                    room = self._config.batch_size - len(self._waiting)
                    if room <= 0:
                        await self._pause(self._config.poll_interval, self._changed)
                        continue
                    claims = await self._claim(room)
                    for claim in claims:
                        self._held[claim.host] += 1
                        task = group.create_task(self._deliver(claim))
                        self._waiting[task] = claim
                    if len(claims) < room:
                        # Nothing more is due now (or only for hosts at their cap): wait for
                        # the poll interval, or for a slot to free up.
                        await self._pause(self._config.poll_interval, self._changed)
                await self._drain()
        finally:
            self._stopped.set()
            logger.info("callback worker %s stopped", self._config.worker_id)

    async def stop(self, deadline: float) -> None:
        """Stops claiming; running POSTs get ``deadline`` seconds. Returns once stopped."""
        self._grace = max(0.0, deadline)
        self._stopping.set()
        if self._running:
            await self._stopped.wait()

    async def _claim(self, limit: int) -> list[CallbackClaim]:
        full = [host for host, held in self._held.items() if held >= self._config.per_host]
        try:
            async with self._pool.acquire() as connection:
                return await store.claim_due(
                    connection,
                    limit,
                    self._config.lease_seconds,
                    self._config.worker_id,
                    full,
                )
        except Exception:
            # The database may be away for a while: keep trying at the poll interval.
            logger.exception("callback claim failed; retrying")
            metrics.CALLBACK_ERRORS.inc()
            await self._pause(self._config.poll_interval)
            return []

    async def _deliver(self, claim: CallbackClaim) -> None:
        task = asyncio.current_task()
        assert task is not None
        host_slots = self._host_slots.setdefault(
            claim.host, asyncio.Semaphore(self._config.per_host)
        )
        try:
            # The host's slot first: waiting for it must not hold one of the shared slots.
            async with host_slots, self._slots:
                self._waiting.pop(task, None)
                self._active[task] = claim
                self._changed.set()
                await self._deliverer.deliver(claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim stays as it is and becomes due again when its lease ends.
            metrics.CALLBACK_ERRORS.inc()
            logger.exception("callback event %s: delivery failed", claim.id)
        finally:
            self._waiting.pop(task, None)
            self._active.pop(task, None)
            self._held[claim.host] -= 1
            if self._held[claim.host] <= 0:
                del self._held[claim.host]
                if not host_slots.locked():
                    self._host_slots.pop(claim.host, None)
            self._changed.set()

    async def _drain(self) -> None:
        waiting = dict(self._waiting)
        for task in waiting:
            task.cancel()
        if waiting:
            await asyncio.wait(waiting)
            await self._release(list(waiting.values()))
        active = set(self._active)
        if active:
            _, late = await asyncio.wait(active, timeout=self._grace)
            for task in late:
                task.cancel()
            if late:
                logger.warning(
                    "callback worker %s: %d POST(s) cut at the stop deadline; their claims "
                    "expire with the lease",
                    self._config.worker_id,
                    len(late),
                )
                await asyncio.wait(late)

    async def _release(self, claims: list[CallbackClaim]) -> None:
        try:
            async with self._pool.acquire() as connection:
                await store.release(connection, claims)
        except Exception:
            logger.exception(
                "could not release %d callback claim(s); they expire with the lease", len(claims)
            )

    async def _pause(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Sleeps up to ``seconds``; returns early on stop, or when ``wake`` is set (clears it)."""
        events = [self._stopping] if wake is None else [self._stopping, wake]
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        if wake is not None:
            wake.clear()
