"""The outbox worker: claim due messages, dispatch them concurrently, stop gracefully.

Mechanics only; what a dispatch does is in :mod:`smsgateway.services.dispatch`. Any number of
workers, in any number of processes, can share one database: claims skip rows others hold, and
a claim whose worker died becomes due again when its lease ends.

A worker keeps at most ``concurrency`` dispatches running and at most ``batch_size`` more
claimed and waiting for a slot. On ``stop``, it claims nothing more, gives the waiting claims
back at once (untried), and lets running dispatches finish until the deadline; those still
running then are cancelled and their claims left to expire, since a send may be under way.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from smsgateway.domain.backoff import BackoffPolicy
from smsgateway.observability import dispatch_metrics as metrics
from smsgateway.services.dispatch import Dispatcher, DispatchPolicy
from smsgateway.store import outbox

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.sinch.client import SinchClient
    from smsgateway.store.outbox import Claim

logger = logging.getLogger(__name__)


def default_worker_id() -> str:
    """host:pid:random, so that claims in the outbox say which process holds them."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """Everything an :class:`OutboxWorker` needs besides its pool and Sinch client.

    Times are in seconds. ``lease_seconds`` must exceed the longest send the Sinch client can
    make (its timeouts and retries). ``send_rate_per_second`` is the global cap across all
    workers on the database (``None``: no cap), ``send_burst`` its bucket size (default one
    second's worth). ``dlr_callback_url`` is the gateway's Sinch delivery-report webhook.
    """

    batch_size: int = 50
    concurrency: int = 10
    lease_seconds: float = 60.0
    poll_interval: float = 0.5
    max_age: float = 24 * 3600.0
    send_rate_per_second: float | None = None
    send_burst: float | None = None
    dlr_callback_url: str | None = None
    worker_id: str = field(default_factory=default_worker_id)
    retry_base_delay: float = 1.0
    retry_max_delay: float = 300.0
    max_retry_after: float = 600.0
    retry_unauthorized: bool = False
    metrics_interval: float = 15.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        if self.poll_interval <= 0 or self.metrics_interval <= 0:
            raise ValueError("poll_interval and metrics_interval must be positive")

    def policy(self) -> DispatchPolicy:
        return DispatchPolicy(
            dlr_callback_url=self.dlr_callback_url,
            lease_seconds=self.lease_seconds,
            backoff=BackoffPolicy(
                base_delay=self.retry_base_delay,
                max_delay=self.retry_max_delay,
                max_retry_after=self.max_retry_after,
                max_age=timedelta(seconds=self.max_age),
            ),
            send_rate_per_second=self.send_rate_per_second,
            send_burst=self.send_burst,
            retry_unauthorized=self.retry_unauthorized,
        )


class OutboxWorker:
    """``await run()`` until ``await stop(deadline)``; one per process is typical."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        sinch: SinchClient,
        config: DispatchConfig,
        *,
        dispatcher: Dispatcher | None = None,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        self._pool = pool
        self._config = config
        self._dispatcher = dispatcher or Dispatcher(
            pool, sinch, config.policy(), random=random_source
        )
        self._slots = asyncio.Semaphore(config.concurrency)
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._grace = 0.0
        self._running = False
        # Claims not yet started (waiting for a slot) and those dispatching now.
        self._waiting: dict[asyncio.Task[None], Claim] = {}
        self._active: dict[asyncio.Task[None], Claim] = {}
        self._changed = asyncio.Event()

    @property
    def config(self) -> DispatchConfig:
        return self._config

    @property
    def in_flight(self) -> int:
        """Claims this worker holds: dispatching or waiting for a slot."""
        return len(self._waiting) + len(self._active)

    async def run(self) -> None:
        """Claims and dispatches until :meth:`stop`; returns once stopped."""
        if self._running:
            raise RuntimeError("this worker is already running")
        self._running = True
        loop = asyncio.get_running_loop()
        next_metrics = loop.time()
        logger.info("outbox worker %s started", self._config.worker_id)
        try:
            async with asyncio.TaskGroup() as group:
                while not self._stopping.is_set():
                    if loop.time() >= next_metrics:
                        next_metrics = loop.time() + self._config.metrics_interval
                        await self._refresh_gauges()
                    room = self._config.batch_size - len(self._waiting)
                    if room <= 0:
                        await self._pause(self._config.poll_interval, self._changed)
                        continue
                    claims = await self._claim(room)
                    for claim in claims:
                        task = group.create_task(self._dispatch(claim))
                        self._waiting[task] = claim
                    if len(claims) < room:
                        # Nothing more is due now.
                        await self._pause(self._config.poll_interval)
                await self._drain()
        finally:
            self._stopped.set()
            logger.info("outbox worker %s stopped", self._config.worker_id)

    async def stop(self, deadline: float) -> None:
        """Stops claiming; running dispatches get ``deadline`` seconds to finish.

        Returns when :meth:`run` has returned (at once if it never ran).
        """
        self._grace = max(0.0, deadline)
        self._stopping.set()
        if self._running:
            await self._stopped.wait()

    async def _claim(self, limit: int) -> list[Claim]:
        try:
            async with self._pool.acquire() as connection:
                return await outbox.claim_due(
                    connection, limit, self._config.lease_seconds, self._config.worker_id
                )
        except Exception:
            # The database may be away for a while: keep trying at the poll interval.
            logger.exception("outbox claim failed; retrying")
            metrics.DISPATCH_ERRORS.inc()
            await self._pause(self._config.poll_interval)
            return []

    async def _dispatch(self, claim: Claim) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            async with self._slots:
                self._waiting.pop(task, None)
                self._active[task] = claim
                self._changed.set()
                await self._dispatcher.dispatch(claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim stays as it is and expires with its lease; the next try looks the send
            # up at Sinch before sending again.
            metrics.DISPATCH_ERRORS.inc()
            logger.exception("dispatch of message %s failed", claim.message_id)
        finally:
            self._waiting.pop(task, None)
            self._active.pop(task, None)
            self._changed.set()

    async def _drain(self) -> None:
        """Gives waiting claims back, then waits for running dispatches until the deadline."""
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
                    "outbox worker %s: %d dispatch(es) cut at the stop deadline; their claims "
                    "expire with the lease",
                    self._config.worker_id,
                    len(late),
                )
                await asyncio.wait(late)

    async def _release(self, claims: list[Claim]) -> None:
        try:
            async with self._pool.acquire() as connection:
                released = await outbox.release(connection, claims)
        except Exception:
            logger.exception(
                "could not release %d claim(s); they expire with the lease", len(claims)
            )
            return
        metrics.RELEASED.inc(released)

    async def _refresh_gauges(self) -> None:
        try:
            async with self._pool.acquire() as connection:
                stats = await outbox.outbox_stats(connection)
        except Exception:
            logger.warning("could not read outbox depth for metrics", exc_info=True)
            return
        metrics.OUTBOX_DEPTH.set(stats.depth)
        metrics.OUTBOX_DUE.set(stats.due)
        metrics.OUTBOX_OLDEST_DUE_AGE.set(stats.oldest_due_age_seconds)

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
