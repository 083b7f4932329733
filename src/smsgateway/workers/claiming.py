"""The claim-and-work loop the outbox and callback workers share.

A worker claims up to ``batch_size`` due rows at a time (the claim SQL is the subclass's),
runs each claim's work as a task, at most ``concurrency`` at once, and claims more as room
frees up. On ``stop`` it claims nothing more, gives the claims still waiting for a slot back
at once (untried), and lets running work finish until the deadline; what is still running
then is cancelled and its claims left to expire with their lease, since a send or a POST may
be under way.

Subclasses say what a claim is and what is done with it (``_claim_due``, ``_work``,
``_release_claims``), and may bound work further per claim (``_slot``).

An idle worker claims again after ``poll_interval``, or at once when :meth:`wake` is called
(a Postgres notification that new work committed, see :mod:`smsgateway.store.notifications`).
The wake-up flag is cleared just before each claim, not after it: a wake-up that arrives while
a claim is under way makes the worker claim once more instead of sleeping through it.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from smsgateway.observability.outage import DATABASE_OUTAGE
from smsgateway.store.errors import UNAVAILABLE_ERRORS

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection

logger = logging.getLogger(__name__)

C = TypeVar("C")


class ClaimingWorker(ABC, Generic[C]):
    """``await run()`` until ``await stop(deadline)``."""

    # "outbox" / "callback": in log lines.
    _label: ClassVar[str]
    # What the running work is called in the stop-deadline warning.
    _work_noun: ClassVar[str]
    # Whether an idle wait also ends when a slot frees up (not only after the poll interval).
    _wake_on_free_slot: ClassVar[bool]

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        worker_id: str,
        batch_size: int,
        concurrency: int,
        poll_interval: float,
    ) -> None:
        self._pool = pool
        self._worker_id = worker_id
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._slots = asyncio.Semaphore(concurrency)
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._changed = asyncio.Event()
        self._woken = asyncio.Event()
        self._grace = 0.0
        self._running = False
        # Claims not yet started (waiting for a slot) and those being worked on now.
        self._waiting: dict[asyncio.Task[None], C] = {}
        self._active: dict[asyncio.Task[None], C] = {}

    @property
    def in_flight(self) -> int:
        """Claims this worker holds: being worked on or waiting for a slot."""
        return len(self._waiting) + len(self._active)

    def wake(self) -> None:
        """New work may be due: an idle worker claims now instead of at the next poll."""
        self._woken.set()

    async def run(self) -> None:
        """Claims and works until :meth:`stop`; returns once stopped."""
        if self._running:
            raise RuntimeError("this worker is already running")
        self._running = True
        logger.info("%s worker %s started", self._label, self._worker_id)
        try:
            async with asyncio.TaskGroup() as group:
                while not self._stopping.is_set():
                    await self._before_claiming()
                    room = self._batch_size - len(self._waiting)
                    if room <= 0:
                        await self._pause(self._poll_interval, self._changed)
                        continue
                    self._woken.clear()
                    claims = await self._claim(room)
                    for claim in claims:
                        self._claimed(claim)
                        task = group.create_task(self._run_one(claim))
                        self._waiting[task] = claim
                    if len(claims) < room:
                        # Nothing more is due now: wait for a wake-up or the poll interval.
                        wakes = [self._woken]
                        if self._wake_on_free_slot:
                            wakes.append(self._changed)
                        await self._pause(self._poll_interval, *wakes)
                await self._drain()
        finally:
            self._stopped.set()
            logger.info("%s worker %s stopped", self._label, self._worker_id)

    async def stop(self, deadline: float) -> None:
        """Stops claiming; running work gets ``deadline`` seconds to finish.

        Returns when :meth:`run` has returned (at once if it never ran).
        """
        self._grace = max(0.0, deadline)
        self._stopping.set()
        if self._running:
            await self._stopped.wait()

    @abstractmethod
    async def _claim_due(self, connection: Connection, limit: int) -> list[C]: ...

    @abstractmethod
    async def _work(self, claim: C) -> None:
        """Does the claim's work; an exception is counted and logged, never raised on."""

    @abstractmethod
    async def _release_claims(self, connection: Connection, claims: list[C]) -> None: ...

    @abstractmethod
    def _failed(self, claim: C) -> None:
        """Counts and logs (with the traceback) a ``_work`` that raised."""

    @abstractmethod
    def _claim_failed(self) -> None:
        """Counts a claim query that raised (it is logged here)."""

    async def _before_claiming(self) -> None:
        """Runs before each claim attempt (e.g. to refresh gauges)."""

    def _claimed(self, claim: C) -> None:
        """Runs as each claim is taken on."""

    def _finished(self, claim: C) -> None:
        """Runs as each claim is done with, whatever became of it."""

    @asynccontextmanager
    async def _slot(self, _claim: C) -> AsyncIterator[None]:
        """Held while the claim's work runs: one of the ``concurrency`` slots."""
        async with self._slots:
            yield

    async def _claim(self, limit: int) -> list[C]:
        try:
            async with self._pool.acquire() as connection:
                claims = await self._claim_due(connection, limit)
        except UNAVAILABLE_ERRORS as exc:
            # The database may be away for a while: keep trying at the poll interval, and
            # say so once per outage rather than with a traceback per poll.
            DATABASE_OUTAGE.unavailable(str(exc) or type(exc).__name__)
            self._claim_failed()
            await self._pause(self._poll_interval)
            return []
        except Exception:
            logger.exception("%s claim failed; retrying", self._label)
            self._claim_failed()
            await self._pause(self._poll_interval)
            return []
        DATABASE_OUTAGE.available()
        return claims

    async def _run_one(self, claim: C) -> None:
        task = asyncio.current_task()
        assert task is not None
        try:
            async with self._slot(claim):
                self._waiting.pop(task, None)
                self._active[task] = claim
                self._changed.set()
                await self._work(claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The claim stays as it is and becomes due again when its lease ends.
            self._failed(claim)
        finally:
            self._waiting.pop(task, None)
            self._active.pop(task, None)
            self._finished(claim)
            self._changed.set()

    async def _drain(self) -> None:
        """Gives waiting claims back, then waits for running work until the deadline."""
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
                    "%s worker %s: %d %s cut at the stop deadline; their claims expire with "
                    "the lease",
                    self._label,
                    self._worker_id,
                    len(late),
                    self._work_noun,
                )
                await asyncio.wait(late)

    async def _release(self, claims: list[C]) -> None:
        try:
            async with self._pool.acquire() as connection:
                await self._release_claims(connection, claims)
        except Exception:
            logger.exception(
                "%s worker: could not release %d claim(s); they expire with the lease",
                self._label,
                len(claims),
            )

    async def _pause(self, seconds: float, *wakes: asyncio.Event) -> None:
        """Sleeps up to ``seconds``; returns early on stop, or when one of ``wakes`` is set
        (clears them)."""
        events = [self._stopping, *wakes]
        waiters = [asyncio.ensure_future(event.wait()) for event in events]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        for wake in wakes:
            wake.clear()
