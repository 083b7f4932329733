"""A connection pool for many concurrent Sinch calls: several small pools side by side.

httpcore 1.0's pool re-examines every connection each time a request starts or ends, and for
each idle one counts them all again, so its CPU per request grows with the square of the pool
size: on a 2-core machine one pool of 64 connections costs about 10 ms of CPU per request, one
of 8 about 1 ms (bench/bench_sinch_client.py). :class:`ShardedTransport` keeps every pool small
and hands each request to the pool with the fewest requests in flight.

    transport = ShardedTransport(max_connections=128)
    http = httpx.AsyncClient(transport=transport, timeout=...)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx

DEFAULT_PER_SHARD = 8
DEFAULT_KEEPALIVE_EXPIRY_S = 5.0

ShardFactory = Callable[[httpx.Limits], httpx.AsyncBaseTransport]


def _http_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(limits=limits)


class ShardedTransport(httpx.AsyncBaseTransport):
    """Up to ``max_connections`` connections, in pools of at most ``per_shard`` each.

    A request stays counted against its pool until its response is closed (httpx closes it
    once the body is read, or on error). ``shard_factory`` builds one pool from its limits; the
    default is ``httpx.AsyncHTTPTransport`` (pass your own for TLS or proxy options).
    """

    def __init__(
        self,
        max_connections: int = 100,
        *,
        per_shard: int = DEFAULT_PER_SHARD,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY_S,
        shard_factory: ShardFactory = _http_transport,
    ) -> None:
        if max_connections < 1 or per_shard < 1:
            raise ValueError("max_connections and per_shard must be at least 1")
        count = -(-max_connections // per_shard)
        size = -(-max_connections // count)  # spread evenly: 100 over 13 pools, not 12 + 4
        limits = httpx.Limits(
            max_connections=size,
            max_keepalive_connections=size,
            keepalive_expiry=keepalive_expiry,
        )
        self._shards = [shard_factory(limits) for _ in range(count)]
        self._in_flight = [0] * count

    @property
    def in_flight(self) -> tuple[int, ...]:
        """Requests in flight per pool, for tests and metrics."""
        return tuple(self._in_flight)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        index = min(range(len(self._shards)), key=self._in_flight.__getitem__)
        self._in_flight[index] += 1
        release = _Release(self._in_flight, index)
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        stream = response.stream
        if not isinstance(stream, httpx.AsyncByteStream):  # pragma: no cover (httpcore's are)
            release()
            return response
        response.stream = _ReleasingStream(stream, release)
        return response

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()


class _Release:
    """Decrements one pool's in-flight count, once however often it is called."""

    def __init__(self, counts: list[int], index: int) -> None:
        self._counts = counts
        self._index: int | None = index

    def __call__(self) -> None:
        if self._index is not None:
            self._counts[self._index] -= 1
            self._index = None


class _ReleasingStream(httpx.AsyncByteStream):
    """The pool's response body, releasing the request's slot when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, release: _Release) -> None:
        self._stream = stream
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            self._release()
