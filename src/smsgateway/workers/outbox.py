"""The outbox worker: claim due messages, dispatch them concurrently, stop gracefully.

Mechanics only; what a dispatch does is in :mod:`smsgateway.services.dispatch`. Any number of
workers, in any number of processes, can share one database: claims skip rows others hold, and
a claim whose worker died becomes due again when its lease ends.

A worker keeps at most ``concurrency`` dispatches running and at most ``batch_size`` more
claimed and waiting for a slot; claiming, stopping and giving claims back are the shared loop
of :mod:`smsgateway.workers.claiming`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from smsgateway.domain.backoff import BackoffPolicy
from smsgateway.observability import dispatch_metrics as metrics
from smsgateway.services.dispatch import Dispatcher, DispatchPolicy
from smsgateway.store import outbox
from smsgateway.store.dispatch import claim_and_load
from smsgateway.workers.claiming import ClaimingWorker

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.sinch.client import SinchClient
    from smsgateway.store.outbox import Claim
    from smsgateway.store.pool import Connection

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
    ``sender_required``: a message without a sender is rejected, never sent without ``from``.
    second's worth). ``dlr_callback_url`` is the gateway's Sinch webhook, or
    ``dlr_callback_url_source`` gives it (``DispatchPolicy``).
    """

    batch_size: int = 50
    concurrency: int = 10
    lease_seconds: float = 60.0
    poll_interval: float = 0.5
    max_age: float = 24 * 3600.0
    send_rate_per_second: float | None = None
    send_burst: float | None = None
    dlr_callback_url: str | None = None
    dlr_callback_url_source: Callable[[], Awaitable[str | None]] | None = None
    worker_id: str = field(default_factory=default_worker_id)
    retry_base_delay: float = 1.0
    retry_max_delay: float = 300.0
    max_retry_after: float = 600.0
    retry_unauthorized: bool = False
    sender_required: bool = False
    metrics_interval: float = 15.0
    reconcile_after_seconds: float | None = None
    unanswered_wait_seconds: float = 0.0
    record_linger_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        if self.poll_interval <= 0 or self.metrics_interval <= 0:
            raise ValueError("poll_interval and metrics_interval must be positive")

    def policy(self) -> DispatchPolicy:
        return DispatchPolicy(
            dlr_callback_url=self.dlr_callback_url,
            dlr_callback_url_source=self.dlr_callback_url_source,
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
            sender_required=self.sender_required,
            reconcile_after_seconds=self.reconcile_after_seconds,
            unanswered_wait_seconds=self.unanswered_wait_seconds,
            record_linger_seconds=self.record_linger_seconds,
        )


class OutboxWorker(ClaimingWorker["Claim"]):
    """``await run()`` until ``await stop(deadline)``; one per process is typical."""

    _label = "outbox"
    _work_noun = "dispatch(es)"
    _wake_on_free_slot = False

    def __init__(
        self,
        pool: asyncpg.Pool,
        sinch: SinchClient,
        config: DispatchConfig,
        *,
        dispatcher: Dispatcher | None = None,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(
            pool,
            worker_id=config.worker_id,
            batch_size=config.batch_size,
            concurrency=config.concurrency,
            poll_interval=config.poll_interval,
        )
        self._config = config
        self._dispatcher = dispatcher or Dispatcher(
            pool, sinch, config.policy(), random=random_source
        )
        self._next_metrics: float | None = None

    @property
    def config(self) -> DispatchConfig:
        return self._config

    async def _before_claiming(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._next_metrics is None or now >= self._next_metrics:
            self._next_metrics = now + self._config.metrics_interval
            await self._refresh_gauges()

    async def _claim_due(self, connection: Connection, limit: int) -> list[Claim]:
        # Each claim comes with its message, read in the claim's round trip.
        claimed = await claim_and_load(
            connection, limit, self._config.lease_seconds, self._config.worker_id
        )
        for item in claimed:
            self._dispatcher.hold(item)
        return [item.claim for item in claimed]

    def _finished(self, claim: Claim) -> None:
        self._dispatcher.forget(claim)

    async def _work(self, claim: Claim) -> None:
        await self._dispatcher.dispatch(claim)

    def _failed(self, claim: Claim) -> None:
        # The next try looks the send up at Sinch before sending again.
        metrics.DISPATCH_ERRORS.inc()
        logger.exception("dispatch of message %s failed", claim.message_id)

    def _claim_failed(self) -> None:
        metrics.DISPATCH_ERRORS.inc()

    async def _release_claims(self, connection: Connection, claims: list[Claim]) -> None:
        metrics.RELEASED.inc(await outbox.release(connection, claims))

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
