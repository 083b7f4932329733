"""Group commit, and its read-side twin: many concurrent callers share one round trip.

Each caller waits for its own result, so nothing is acknowledged before it is durable, yet
under load one statement (and one commit) carries a whole batch. By default there is no
artificial delay: a batch is whatever arrived while the previous round trip was in flight.
Work off a caller's critical path (delivery reports, recording a send) may ``linger``: when
fewer than ``LINGER_BELOW`` items wait, wait that long for more before the round trip, so that
a moderate load makes a few large batches rather than many of three or four, each a round trip
(and a commit) of its own. Under a heavy load batches are large anyway, and do not wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

import asyncpg

from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

LINGER_BELOW = 16
"""A lingering batch waits only while fewer items than this are pending (a batch that large
already shares its round trip well; waiting more cost throughput at 1,800 sends/s)."""

Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key", bound=Hashable)


class _Coalescer(Generic[Item, Result]):
    """Queues items from concurrent callers and hands them to ``_run`` in batches."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_batch: int,
        max_concurrent_batches: int,
        acquire_timeout: float,
        linger: float = 0.0,
    ) -> None:
        self._pool = pool
        self._linger = linger
        self._max_batch = max_batch
        self._max_runners = max_concurrent_batches
        self._acquire_timeout = acquire_timeout
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runners: set[asyncio.Task[None]] = set()

    async def _submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._runners) < self._max_runners:
            runner = asyncio.create_task(self._drain())
            self._runners.add(runner)
        # Shielded: a caller that goes away must not cancel a round trip that carries others.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            await self._drain_pending()
        finally:
            # Leaves the set in the same step that found nothing pending. Left to a done
            # callback, it would stay counted until that ran, and an item submitted meanwhile
            # would find the runners full and wait for ever.
            current = asyncio.current_task()
            assert current is not None
            self._runners.discard(current)

    async def _drain_pending(self) -> None:
        while self._pending:
            if self._linger > 0 and len(self._pending) < min(LINGER_BELOW, self._max_batch):
                await asyncio.sleep(self._linger)
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            await self._settle(batch)

    async def _settle(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        """Runs ``batch`` and gives each caller its result. A batch the database refuses for
        something other than being away is run again item by item: one caller's bad item
        (text or a date Postgres cannot store) must fail that caller alone, not everyone who
        shared its round trip."""
        try:
            results = await self._with_connection([item for item, _ in batch])
        except DatabaseUnavailableError as exc:
            _fail(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            for single in batch:
                await self._settle([single])
        except BaseException as exc:
            _fail(batch, exc)
            raise
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _with_connection(self, items: list[Item]) -> list[Result]:
        try:
            connection = await self._pool.acquire(timeout=self._acquire_timeout)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        try:
            return await self._run(connection, items)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        finally:
            await self._pool.release(connection)

    async def _run(self, connection: Connection, items: list[Item]) -> list[Result]:
        raise NotImplementedError


def _fail(batch: list[tuple[Item, asyncio.Future[Result]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


class BatchWriter(_Coalescer[Item, None]):
    """Writes items from concurrent ``submit`` calls with ``write``, a batch at a time.

    ``write`` receives one connection and the batch, and must write all of it in one
    transaction (or one statement): a batch succeeds or fails as a whole, and one that fails
    is written again an item at a time, so only the faulty items' callers see the error.
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
        super().__init__(
            pool,
            max_batch=max_batch,
            max_concurrent_batches=max_concurrent_writes,
            acquire_timeout=acquire_timeout,
        )
        self._write = write

    async def submit(self, item: Item) -> None:
        """Returns once ``item`` is committed; raises what the write raised otherwise."""
        await self._submit(item)

    async def _run(self, connection: Connection, items: list[Item]) -> list[None]:
        await self._write(connection, items)
        return [None] * len(items)


class BatchCall(_Coalescer[Item, Result]):
    """Hands items from concurrent ``call`` calls to ``run``, a batch at a time.

    ``run`` receives one connection and the batch and returns one result per item, in order;
    each caller gets its own item's result, or what ``run`` raised.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        run: Callable[[Connection, list[Item]], Awaitable[Sequence[Result]]],
        *,
        max_batch: int = 256,
        max_concurrent_batches: int = 2,
        acquire_timeout: float = 1.0,
        linger: float = 0.0,
    ) -> None:
        super().__init__(
            pool,
            max_batch=max_batch,
            max_concurrent_batches=max_concurrent_batches,
            acquire_timeout=acquire_timeout,
            linger=linger,
        )
        self._run_batch = run

    async def call(self, item: Item) -> Result:
        return await self._submit(item)

    async def _run(self, connection: Connection, items: list[Item]) -> list[Result]:
        return list(await self._run_batch(connection, items))


class BatchLookup(_Coalescer[frozenset[Key], frozenset[Key]]):
    """Answers "which of these keys does the table hold?" for concurrent callers at once.

    ``find`` gets the union of the batch's keys and returns those found; each caller gets back
    the found ones among its own.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        find: Callable[[Connection, Sequence[Key]], Awaitable[frozenset[Key]]],
        *,
        max_batch: int = 256,
        max_concurrent_lookups: int = 2,
        acquire_timeout: float = 1.0,
        linger: float = 0.0,
    ) -> None:
        super().__init__(
            pool,
            max_batch=max_batch,
            max_concurrent_batches=max_concurrent_lookups,
            acquire_timeout=acquire_timeout,
            linger=linger,
        )
        self._find = find

    async def lookup(self, keys: Sequence[Key]) -> frozenset[Key]:
        return await self._submit(frozenset(keys))

    async def _run(
        self, connection: Connection, items: list[frozenset[Key]]
    ) -> list[frozenset[Key]]:
        found = await self._find(connection, list(frozenset().union(*items)))
        return [keys & found for keys in items]
