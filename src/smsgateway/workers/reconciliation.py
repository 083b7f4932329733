"""The reconciliation worker: rounds of claim, ask Sinch, apply; stop promptly.

Mechanics only; what a round does is in :mod:`smsgateway.services.reconciliation`. It runs
wherever the outbox dispatcher runs (``serve`` with the dispatcher on, and every ``smsgateway
worker``); several at once never ask about the same message in the same round (claims are
``FOR UPDATE SKIP LOCKED`` under a lease). A round claims up to ``batch_size`` due messages and
works on them, ``concurrency`` at a time; when fewer were due, the next round waits
``poll_interval``. On stop, a round under way gets the deadline, then is cancelled: its claims
expire with their lease and are taken up again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smsgateway.observability import reconcile_metrics as metrics
from smsgateway.services.reconciliation import Round
from smsgateway.workers.stopping import finish_or_cancel, stopped_within

if TYPE_CHECKING:
    from smsgateway.services.reconciliation import Reconciler
    from smsgateway.store.reconciliation import AwaitingClaim

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReconcileConfig:
    """Per-worker mechanics, in seconds where a time."""

    batch_size: int = 100
    concurrency: int = 8
    poll_interval: float = 1.0
    metrics_interval: float = 15.0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.concurrency < 1:
            raise ValueError("batch_size and concurrency must be at least 1")
        if self.poll_interval <= 0 or self.metrics_interval <= 0:
            raise ValueError("poll_interval and metrics_interval must be positive")


class ReconcileWorker:
    """``await run()`` until ``await stop(deadline)``."""

    def __init__(self, reconciler: Reconciler, config: ReconcileConfig) -> None:
        self._reconciler = reconciler
        self._config = config
        self._stopping = asyncio.Event()
        self._round: asyncio.Task[int] | None = None
        self._metrics_due = 0.0

    @property
    def config(self) -> ReconcileConfig:
        return self._config

    async def run(self) -> None:
        """Runs rounds until :meth:`stop`; a failing round is logged and the next one comes."""
        logger.info("reconciliation worker started")
        try:
            while not self._stopping.is_set():
                await self._refresh_metrics()
                self._round = asyncio.create_task(self._one_round())
                try:
                    claimed = await self._round
                except asyncio.CancelledError:
                    current = asyncio.current_task()
                    if self._stopping.is_set() and (current is None or not current.cancelling()):
                        return
                    raise
                except Exception:
                    logger.exception("reconciliation round failed; retrying")
                    claimed = 0
                finally:
                    self._round = None
                if claimed < self._config.batch_size:
                    await stopped_within(self._stopping, self._config.poll_interval)
        finally:
            logger.info("reconciliation worker stopped")

    async def stop(self, deadline: float) -> None:
        """Stops claiming; a round under way gets ``deadline`` seconds, then is cancelled."""
        self._stopping.set()
        await finish_or_cancel(self._round, deadline)

    async def _one_round(self) -> int:
        """Claims and works one round; returns how many messages it claimed."""
        claimed = await self._reconciler.claim(self._config.batch_size)
        if not claimed.claims:
            return 0
        round_ = Round()
        slots = asyncio.Semaphore(self._config.concurrency)

        async def work(claim: AwaitingClaim) -> None:
            async with slots:
                try:
                    await self._reconciler.reconcile(claim, round_)
                except Exception:
                    # The claim stays as it is and becomes due again when its lease ends.
                    metrics.ERRORS.labels("database").inc()
                    logger.exception(
                        "reconciliation of message %s failed; retried after the lease",
                        claim.message_id,
                    )

        async with asyncio.TaskGroup() as group:
            for claim in claimed.claims:
                group.create_task(work(claim))
        return len(claimed.claims)

    async def _refresh_metrics(self) -> None:
        now = time.monotonic()
        if now < self._metrics_due:
            return
        self._metrics_due = now + self._config.metrics_interval
        try:
            await self._reconciler.refresh_backlog()
        except Exception:
            logger.warning("reconciliation backlog not read", exc_info=True)
