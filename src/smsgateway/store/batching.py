"""Group commit: many concurrent writers share one statement and one commit.

Each caller waits until its own row is committed, so nothing is acknowledged before it is
durable, yet under load one round trip and one WAL flush carry a whole batch. There is no
artificial delay: a batch is whatever arrived while the previous write was in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

import asyncpg

from smsgateway.store.errors import CONNECTION_ERRORS, UNAVAILABLE_ERRORS, DatabaseUnavailableError

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

Item = TypeVar("Item")


class BatchWriter(Generic[Item]):
    """Collects items from concurrent ``submit`` calls and writes them with ``write`` in batches.

    ``write`` receives one connection and the batch, and must write all of it in one
    transaction (or one statement): a batch succeeds or fails as a whole.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        write: Callable[[Connection, list[Item]], Awaitable[None]],
        *,
        max_batch: int = 256,
        max_concurrent_writes: int = 2,
        acquire_timeout: float = 1.0,
    ) -> None:
        self._pool = pool
        self._write = write
        self._max_batch = max_batch
        self._max_writers = max_concurrent_writes
        self._acquire_timeout = acquire_timeout
        self._pending: list[tuple[Item, asyncio.Future[None]]] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> None:
        """Returns once ``item`` is committed; raises what the write raised otherwise."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._writers) < self._max_writers:
            writer = asyncio.create_task(self._drain())
            self._writers.add(writer)
            writer.add_done_callback(self._writers.discard)
        # Shielded: a caller that goes away must not cancel a write that carries others.
        await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            try:
                await self._write_batch([item for item, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)

    async def _write_batch(self, items: list[Item]) -> None:
        try:
            connection = await self._pool.acquire(timeout=self._acquire_timeout)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        try:
            await self._write(connection, items)
        except CONNECTION_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        finally:
            await self._pool.release(connection)
