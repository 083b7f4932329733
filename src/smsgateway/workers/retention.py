"""The retention worker: run a retention sweep now and then, stop promptly.

Mechanics only; what a sweep does is in :mod:`smsgateway.services.retention`. It runs wherever
the outbox dispatcher runs (``serve`` with the dispatcher on, and ``smsgateway worker``), so a
deployment with several such processes runs several; their sweeps may overlap safely, and the
first one waits a random part of the interval so that processes started together spread out.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from smsgateway.workers.stopping import finish_or_cancel, stopped_within

if TYPE_CHECKING:
    from smsgateway.services.retention import RetentionSweeper

logger = logging.getLogger(__name__)


class RetentionWorker:
    """``await run()`` until ``await stop(deadline)``; a sweep every ``interval_seconds``."""

    def __init__(
        self,
        sweeper: RetentionSweeper,
        interval_seconds: float,
        *,
        random_source: Callable[[], float] = random.random,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._sweeper = sweeper
        self._interval = interval_seconds
        self._random = random_source
        self._stopping = asyncio.Event()
        self._sweeping: asyncio.Task[object] | None = None

    async def run(self) -> None:
        """Sweeps until :meth:`stop`; a sweep that fails is logged and the next one comes."""
        delay = self._interval * self._random()
        while not await stopped_within(self._stopping, delay):
            self._sweeping = asyncio.create_task(self._sweeper.sweep())
            try:
                await self._sweeping
            except asyncio.CancelledError:
                # The sweep was cut at the stop deadline; a cancel of run() itself goes on up.
                current = asyncio.current_task()
                if self._stopping.is_set() and (current is None or not current.cancelling()):
                    return
                raise
            except Exception:
                logger.exception("retention sweep failed")
            finally:
                self._sweeping = None
            delay = self._interval

    async def stop(self, deadline: float) -> None:
        """Stops sweeping; a sweep under way gets ``deadline`` seconds, then is cancelled (it
        commits in small transactions, so a cut sweep leaves nothing half done)."""
        self._stopping.set()
        await finish_or_cancel(self._sweeping, deadline)
