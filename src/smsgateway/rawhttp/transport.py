"""An httpx transport speaking HTTP/1.1 itself, on asyncio protocols and httptools' C parser.

Shared by the Sinch client (its sends) and the simulator (its callbacks): both need cheap
kept-alive POSTs of small JSON bodies, and nothing else of HTTP.

A send through httpx on aiohttp's pool costs its process 0.35-0.5 ms of CPU; the same
exchange written as bytes on a kept-alive asyncio connection and read by httptools (the parser
uvicorn uses) costs about 0.1 ms (bench/bench_sinch_client.py --pool raw). The Sinch client
needs little of HTTP: small JSON bodies, one host, keep-alive, TLS. This transport does that
and no more: no HTTP/2, no proxies, no redirects or cookies (httpx's client does those), and
it reads each answer whole before returning it.

Failures are raised as the httpx exception httpcore raises in the same situation, which is
what the Sinch client's "nothing sent" versus "outcome unknown" split reads
(``errors.error_from_transport``):

=========================================  ======================  ================
situation                                  httpx exception         for a send
=========================================  ======================  ================
no free slot within the pool timeout       PoolTimeout             nothing sent
not connected within the connect timeout   ConnectTimeout          nothing sent
connection refused, name not resolved      ConnectError            nothing sent
not an http or https URL                   UnsupportedProtocol     nothing sent
request not written within write timeout   WriteTimeout            outcome unknown
connection lost while writing              WriteError              outcome unknown
no data within the read timeout            ReadTimeout             outcome unknown
connection reset while waiting             ReadError               outcome unknown
closed before a whole answer; not HTTP     RemoteProtocolError     outcome unknown
=========================================  ======================  ================

A request is never repeated here: repeating is the Sinch client's decision.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterable, Mapping
from functools import lru_cache
from typing import cast

import httptools
import httpx

DEFAULT_KEEPALIVE_EXPIRY_S = 5.0

Origin = tuple[str, str, int]


async def take_slot(
    slots: asyncio.Semaphore, request: httpx.Request | None, pool_timeout: float | None
) -> None:
    """Waits for one of ``slots`` (a request at a time per connection), at most
    ``pool_timeout`` seconds: ``httpx.PoolTimeout`` after that, as httpcore raises it."""
    if not slots.locked():
        await slots.acquire()  # does not wait
        return
    try:
        async with asyncio.timeout(pool_timeout):
            await slots.acquire()
    except TimeoutError:
        raise httpx.PoolTimeout(
            f"no free connection within {pool_timeout} s", request=request
        ) from None


class RawTransport(httpx.AsyncBaseTransport):
    """Up to ``max_connections`` requests (each on its own connection) at a time; idle
    connections are kept ``keepalive_expiry`` seconds (``None``: until the server closes them).

    Use it from one event loop, and close it (``AsyncClient.aclose``) on that loop.
    """

    def __init__(
        self,
        max_connections: int = 100,
        *,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY_S,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._slots = asyncio.Semaphore(max_connections)
        self._in_flight = 0
        self._idle: dict[Origin, list[_Connection]] = {}

    @property
    def max_connections(self) -> int:
        """Requests (and so connections) at a time, at most."""
        return self._max_connections

    @property
    def in_flight(self) -> int:
        """Requests under way, for tests and metrics."""
        return self._in_flight

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, float | None] = request.extensions.get("timeout", {})
        answer = await self._round_trip(_origin(request), timeout, request, _HttpxRequest(request))
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(answer.body),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: dict[str, float | None],  # noqa: ASYNC109 (httpx's per-phase timeouts)
    ) -> RawAnswer:
        """POSTs ``body`` to ``url`` with ``headers`` (Host and Content-Length are added)."""
        origin, target, host = request_target(url)
        head = b"".join(
            (
                b"POST %s HTTP/1.1\r\nHost: %s\r\n" % (target, host),
                *(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items()),
                b"Content-Length: %d\r\n\r\n" % len(body),
            )
        )
        return await self.send(origin, head, body, timeout)

    async def send(
        self,
        origin: Origin,
        head: bytes,
        body: bytes,
        timeout: dict[str, float | None],  # noqa: ASYNC109 (httpx's per-phase timeouts)
    ) -> RawAnswer:
        """One exchange of a request already written as bytes (``head``: the request line and
        headers, Host and Content-Length included), for callers that skip httpx's models; the
        failures are the same httpx exceptions, without a request attached."""
        return await self._round_trip(origin, timeout, None, _BytesRequest(head + body))

    async def _round_trip(
        self,
        origin: Origin,
        timeout: dict[str, float | None],  # noqa: ASYNC109 (httpx's per-phase timeouts)
        request: httpx.Request | None,
        writer: _RequestWriter,
    ) -> RawAnswer:
        await self._take_slot(request, timeout.get("pool"))
        connection: _Connection | None = None
        try:
            connection = self._reusable(origin) or await self._connect(
                origin, request, timeout.get("connect")
            )
            answer = await connection.exchange(writer, request, timeout)
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        finally:
            self._in_flight -= 1
            self._slots.release()
        assert connection is not None
        if answer.keep_alive:
            connection.idle_since = time.monotonic()
            self._idle.setdefault(origin, []).append(connection)
        else:
            connection.close()
        return answer

    async def aclose(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()

    async def _take_slot(self, request: httpx.Request | None, pool_timeout: float | None) -> None:
        await take_slot(self._slots, request, pool_timeout)
        self._in_flight += 1

    def _reusable(self, origin: Origin) -> _Connection | None:
        """The most recently used idle connection that is still open and fresh."""
        idle = self._idle.get(origin)
        expiry = self._keepalive_expiry
        while idle:
            connection = idle.pop()
            fresh = expiry is None or time.monotonic() - connection.idle_since < expiry
            if connection.usable and fresh:
                return connection
            connection.close()
        return None

    async def _connect(
        self, origin: Origin, request: httpx.Request | None, connect_timeout: float | None
    ) -> _Connection:
        scheme, host, port = origin
        tls = None
        if scheme == "https":
            tls = self._ssl_context or _default_ssl_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await loop.create_connection(
                    _Connection, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"not connected to {host}:{port} within {connect_timeout} s", request=request
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}", request=request) from exc
        return connection


class RawAnswer:
    """An answer read whole: status, headers as sent, body (not decoded)."""

    __slots__ = ("body", "headers", "keep_alive", "status")

    def __init__(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes, keep_alive: bool
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive


class _Connection(asyncio.Protocol):
    """One connection: one exchange at a time, its answer parsed as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self._lost = False
        self._lost_error: BaseException | None = None
        self._eof = False
        self._writable = True
        self._progress: asyncio.Future[None] | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._parse_error: str | None = None
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._head_done = False
        self._complete = False
        self._keep_alive = False

    @property
    def usable(self) -> bool:
        return not self._lost and not self._eof and self.transport is not None

    def close(self) -> None:
        if self.transport is not None and not self._lost:
            self.transport.close()
        self._lost = True

    async def exchange(
        self,
        writer: _RequestWriter,
        request: httpx.Request | None,
        timeout: dict[str, float | None],  # noqa: ASYNC109 (httpx's per-phase timeouts)
    ) -> RawAnswer:
        self._parser = httptools.HttpResponseParser(self)
        self._headers, self._body = [], []
        self._status, self._head_done, self._complete, self._parse_error = 0, False, False, None
        self._keep_alive = False
        assert self.transport is not None
        await writer.write(self, request, timeout.get("write"))
        await self._read_answer(request, timeout.get("read"))
        keep_alive = self._keep_alive and self.usable
        return RawAnswer(self._status, self._headers, b"".join(self._body), keep_alive)

    async def drained(self, request: httpx.Request | None, write_timeout: float | None) -> None:
        """Waits while the socket's buffer is over its high-water mark."""
        while not self._writable and not self._lost:
            try:
                async with asyncio.timeout(write_timeout):
                    await self._next_progress()
            except TimeoutError:
                raise httpx.WriteTimeout(
                    f"request not written within {write_timeout} s", request=request
                ) from None
        # Closed without an error while we wrote: the reading side says how it ended.
        if self._lost and not self._head_done and isinstance(self._lost_error, OSError):
            raise httpx.WriteError(
                f"{type(self._lost_error).__name__}: {self._lost_error}", request=request
            ) from self._lost_error

    async def _read_answer(self, request: httpx.Request | None, read_timeout: float | None) -> None:
        while not self._complete:
            if self._parse_error is not None:
                raise httpx.RemoteProtocolError(self._parse_error, request=request)
            if self._lost or self._eof:
                if self._head_done and self._ends_at_close():
                    self._complete = True
                    break
                raise self._ended_early(request)
            try:
                async with asyncio.timeout(read_timeout):
                    await self._next_progress()
            except TimeoutError:
                raise httpx.ReadTimeout(
                    f"no data from the server within {read_timeout} s", request=request
                ) from None

    def _ends_at_close(self) -> bool:
        """An answer with neither a length nor chunks: its body is all that came before EOF."""
        names = {name.lower() for name, _ in self._headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _ended_early(self, request: httpx.Request | None) -> httpx.TransportError:
        if isinstance(self._lost_error, OSError):
            error = self._lost_error
            return httpx.ReadError(f"{type(error).__name__}: {error}", request=request)
        if not self._head_done:
            return httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        return httpx.RemoteProtocolError(
            "peer closed connection without sending complete message body", request=request
        )

    def _next_progress(self) -> asyncio.Future[None]:
        self._progress = asyncio.get_running_loop().create_future()
        return self._progress

    def _wake(self) -> None:
        progress, self._progress = self._progress, None
        if progress is not None and not progress.done():
            progress.set_result(None)

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without being subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._lost_error = exc
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close our side too

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        self._wake()

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        if parser is None or self._complete:
            # Nothing asked (an idle connection) or more than the answer: not reusable.
            self.close()
            return
        try:
            parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._parse_error = f"malformed answer: {exc}"
            self.close()
        self._wake()

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self._parser is not None
        self._status = self._parser.get_status_code()
        self._head_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._parser is not None
        # Asked now: the parser forgets once the callback returns.
        self._keep_alive = self._parser.should_keep_alive()
        self._complete = True


class _RequestWriter:
    """Writes one request on a connection, waiting while its buffer is full."""

    async def write(
        self, connection: _Connection, request: httpx.Request | None, write_timeout: float | None
    ) -> None:
        raise NotImplementedError


class _BytesRequest(_RequestWriter):
    def __init__(self, data: bytes) -> None:
        self._data = data

    async def write(
        self, connection: _Connection, request: httpx.Request | None, write_timeout: float | None
    ) -> None:
        assert connection.transport is not None
        connection.transport.write(self._data)
        await connection.drained(request, write_timeout)


class _HttpxRequest(_RequestWriter):
    """An httpx request: its headers as httpx built them, its body whole or streamed."""

    def __init__(self, request: httpx.Request) -> None:
        self._request = request

    async def write(
        self, connection: _Connection, request: httpx.Request | None, write_timeout: float | None
    ) -> None:
        transport = connection.transport
        assert transport is not None
        built = self._request
        lines = [b"%s %s HTTP/1.1\r\n" % (built.method.encode(), built.url.raw_path)]
        lines.extend(b"%s: %s\r\n" % (name, value) for name, value in built.headers.raw)
        lines.append(b"\r\n")
        try:
            content: bytes | None = built.content
        except httpx.RequestNotRead:
            content = None
        if content is not None:
            transport.write(b"".join(lines) + content)
            await connection.drained(request, write_timeout)
            return
        transport.write(b"".join(lines))
        chunked = built.headers.get("transfer-encoding", "").lower() == "chunked"
        assert isinstance(built.stream, AsyncIterable)
        async for chunk in built.stream:
            if not chunk:
                continue
            transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            await connection.drained(request, write_timeout)
        if chunked:
            transport.write(b"0\r\n\r\n")
        await connection.drained(request, write_timeout)


def origin_of(url: str) -> Origin:
    """``(scheme, host, port)`` of an http(s) URL, the key connections are pooled under."""
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)


@lru_cache(maxsize=256)
def request_target(url: str) -> tuple[Origin, bytes, bytes]:
    """The origin, request target (path and query) and Host header value of ``url``; cached,
    as a few URLs are requested often."""
    parsed = httpx.URL(url)
    scheme = parsed.scheme
    if scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")
    default_port = 443 if scheme == "https" else 80
    port = parsed.port or default_port
    name = f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    host = name if port == default_port else f"{name}:{port}"
    return (scheme, parsed.host, port), parsed.raw_path, host.encode()


def _origin(request: httpx.Request) -> Origin:
    url = request.url
    scheme = url.scheme
    if scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(
            f"Request URL has an unsupported protocol '{scheme}://'.", request=request
        )
    port = url.port or (443 if scheme == "https" else 80)
    return scheme, url.host, port


_SSL_CONTEXT: list[ssl.SSLContext] = []


def _default_ssl_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CA bundle), made once."""
    if not _SSL_CONTEXT:
        _SSL_CONTEXT.append(httpx.create_ssl_context())
    return _SSL_CONTEXT[0]
