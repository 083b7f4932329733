"""Wake-ups from Postgres: ``LISTEN`` on one dedicated connection per process.

Triggers send ``NOTIFY`` when a statement adds work that is due now (see the migration
``20261203_dispatch_wakeup``): one notification per committed statement, so a group commit of
many accepts wakes the workers once. Postgres delivers it at commit, to every listening
process on every machine, so a worker woken by it always sees the new rows.

Notifications are a shortcut, not the queue: one sent while the connection was down is lost.
So every (re)connection wakes every subscriber once, and the workers keep polling as the
safety net. The connection is checked with a cheap query when it has been quiet for a while,
because a connection cut by the network (not closed by Postgres) would otherwise look idle
for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

logger = logging.getLogger(__name__)

# The channels the triggers notify; the names are also in the migration.
OUTBOX_CHANNEL = "smsgw_outbox_due"
CALLBACK_CHANNEL = "smsgw_callback_due"


class NotificationListener:
    """``await run()`` until ``await stop()``; calls each channel's subscribers on a notify."""

    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout: float,
        retry_seconds: float = 1.0,
        check_seconds: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout
        self._retry_seconds = retry_seconds
        self._check_seconds = check_seconds
        self._subscribers: dict[str, list[Callable[[], None]]] = {}
        self._stopping = asyncio.Event()
        self._listening = asyncio.Event()
        self._connection: asyncpg.Connection | None = None

    def subscribe(self, channel: str, wake: Callable[[], None]) -> None:
        """``wake`` is called (in the event loop, never awaited) on each notification of
        ``channel``, and once after each (re)connection. Subscribe before ``run``."""
        self._subscribers.setdefault(channel, []).append(wake)

    @property
    def listening(self) -> bool:
        """Whether a connection is up and listening now."""
        return self._listening.is_set()

    async def wait_listening(self) -> None:
        """Returns once the listener is connected and listening (for start-up and tests)."""
        await self._listening.wait()

    async def run(self) -> None:
        """Listens, reconnecting whenever the connection is lost, until :meth:`stop`."""
        if not self._subscribers:
            return
        unavailable = False
        while not self._stopping.is_set():
            try:
                await self._listen_once()
                unavailable = False
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                # Said once per outage; the claim loops report the outage itself.
                if not unavailable:
                    logger.warning(
                        "not listening for wake-ups (%s); polling until Postgres is back",
                        str(exc) or type(exc).__name__,
                    )
                unavailable = True
            except Exception:
                # Never let a surprise end the wake-ups for good: the polls cover meanwhile.
                logger.exception("the wake-up listener failed; reconnecting")
            if not self._stopping.is_set():
                await self._wait_stopping(self._retry_seconds)

    async def stop(self) -> None:
        """Stops listening; :meth:`run` returns soon after."""
        self._stopping.set()
        connection = self._connection
        if connection is not None:
            connection.terminate()

    async def _listen_once(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=self._connect_timeout,
            server_settings={"application_name": "smsgateway-listener"},
        )
        self._connection = connection
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        try:
            for channel in self._subscribers:
                await connection.add_listener(channel, self._notified)
            self._listening.set()
            logger.debug("listening for wake-ups on %s", ", ".join(self._subscribers))
            # Whatever was committed while nobody listened is picked up now, not at the poll.
            for channel in self._subscribers:
                self._wake(channel)
            while not self._stopping.is_set() and not lost.is_set():
                if await self._wait_either(lost, self._check_seconds):
                    continue
                # Quiet for a while: make sure the connection is still there.
                await connection.fetchval("SELECT 1", timeout=self._check_seconds)
        finally:
            self._listening.clear()
            self._connection = None
            if not connection.is_closed():
                connection.terminate()
        if lost.is_set() and not self._stopping.is_set():
            raise ConnectionResetError("the listening connection was closed")

    def _notified(
        self,
        _connection: asyncpg.Connection | PoolConnectionProxy[Any],
        _pid: int,
        channel: str,
        _payload: object,
    ) -> None:
        self._wake(channel)

    def _wake(self, channel: str) -> None:
        for wake in self._subscribers.get(channel, ()):
            try:
                wake()
            except Exception:
                logger.exception("a wake-up subscriber of %s failed", channel)

    async def _wait_either(self, event: asyncio.Event, seconds: float) -> bool:
        """Waits up to ``seconds`` for ``event`` or stop; whether either happened."""
        waiters = [asyncio.ensure_future(e.wait()) for e in (event, self._stopping)]
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        return bool(done)

    async def _wait_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
