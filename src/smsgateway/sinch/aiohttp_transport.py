"""An httpx transport on aiohttp's pool: the same httpx exceptions as httpcore, less CPU.

A send through httpx and httpcore (sharded) costs 0.75-0.8 ms of CPU on a 2-core machine;
through aiohttp's C-accelerated parser and pool, 0.35-0.5 ms (bench/bench_sinch_client.py).
Converting requests and responses is httpx-aiohttp's work; :class:`AiohttpTransport` adds what
the Sinch client's "nothing sent" versus "outcome unknown" split depends on:

- Failures are raised as the httpx exception httpcore raises in the same situation (the table
  below). httpx-aiohttp 0.2's own mapping is unsafe for that split: it makes every
  ``ClientConnectionError``, including a server disconnecting or resetting after it read the
  request, a ``ConnectTimeout`` ("nothing sent"), and lets a malformed answer out as aiohttp's
  own ``ClientResponseError``, which no caller of httpx expects.
- aiohttp's silent second attempt of a GET, PUT or DELETE whose connection dropped is off:
  repeating is the Sinch client's decision (a repeated cancel can answer 409 for a batch the
  first one cancelled).
- ``max_connections`` requests at a time, each holding its slot until its response is closed;
  one that waits longer than the request's ``pool`` timeout raises ``httpx.PoolTimeout``.
- aiohttp keeps no cookies (the httpx client does).

Timeouts are each request's httpx ones: ``connect`` bounds resolving and connecting (aiohttp's
``connect`` and ``sock_connect``), ``read`` each wait for data once the request is written
(``sock_read``), ``pool`` the wait for a slot. aiohttp has no write timeout, so a request whose
answer has not begun ``connect + write + read`` seconds after it got its slot raises
``WriteTimeout`` (without it, a server that stops reading holds the request forever). Only a
stalled write, or an answer's head trickling in, gets there: the other phases time out sooner.
httpcore raises it after ``write`` seconds without progress; either way the outcome is unknown.

=============================  ======================  ================
aiohttp failure                httpx exception         for a send
=============================  ======================  ================
(no free slot in time)         PoolTimeout             nothing sent
(no answer begun in time)      WriteTimeout            outcome unknown
ConnectionTimeoutError         ConnectTimeout          nothing sent
ClientConnectorError           ConnectError            nothing sent
InvalidURL, NonHttpUrl...      UnsupportedProtocol     nothing sent
SocketTimeoutError             ReadTimeout             outcome unknown
ServerDisconnectedError        RemoteProtocolError     outcome unknown
ClientPayloadError             RemoteProtocolError     outcome unknown
ClientResponseError            RemoteProtocolError     outcome unknown
ClientConnectionResetError     WriteError              outcome unknown
ClientOSError, other           ReadError               outcome unknown
=============================  ======================  ================
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import httpx
import httpx_aiohttp

from smsgateway.rawhttp import take_slot

DEFAULT_KEEPALIVE_EXPIRY_S = 5.0

# Most specific first. Only failures before the request can have left may map to an exception
# that errors.error_from_transport counts as "nothing sent".
_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.NonHttpUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.RemoteProtocolError),
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),
    (aiohttp.ClientConnectionResetError, httpx.WriteError),
    (aiohttp.ClientError, httpx.ReadError),
    (TimeoutError, httpx.ReadTimeout),
    (OSError, httpx.ReadError),
)


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Up to ``max_connections`` connections in one aiohttp pool, idle ones kept
    ``keepalive_expiry`` seconds (``None``: until the server closes them).

    The aiohttp session is made on the first request, inside the running event loop; use the
    transport from that loop only, and close it (``AsyncClient.aclose``) on that loop.
    """

    def __init__(
        self,
        max_connections: int = 100,
        *,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY_S,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections)
        self._in_flight = 0
        self._inner = httpx_aiohttp.AiohttpTransport(client=self._new_session)

    @property
    def max_connections(self) -> int:
        """Requests (and so connections) at a time, at most."""
        return self._max_connections

    @property
    def in_flight(self) -> int:
        """Requests holding a slot (sent, or answered but not yet closed), for tests and metrics."""
        return self._in_flight

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            # Never reached while requests take a slot first; a second guard on the sockets.
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=self._keepalive_expiry,
            ssl=self._inner.ssl_context,
        )
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        # The only switch for aiohttp's silent retry of idempotent methods on a dropped
        # connection (not a constructor argument). Should aiohttp rename it, the dropped-GET
        # and -DELETE cases of tests/integration/sinch/test_sinch_live_transport_failures.py fail.
        session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout: dict[str, float | None] = request.extensions.get("timeout", {})
        await self._take_slot(request, pool_timeout=timeout.get("pool"))
        release = _Release(self)
        try:
            async with asyncio.timeout(_answer_timeout(timeout)) as answer:
                response = await self._inner.handle_async_request(_for_aiohttp(request, timeout))
        except Exception as exc:
            release()
            if answer.expired():
                raise httpx.WriteTimeout(
                    "no answer begun within the connect, write and read timeouts", request=request
                ) from exc
            error = _translated(exc, request)
            if error is None:
                raise
            raise error from _cause(exc)
        except BaseException:
            release()
            raise
        stream = response.stream
        if not isinstance(stream, httpx.AsyncByteStream):  # pragma: no cover (it always is)
            release()
            return response
        response.stream = _ReleasingStream(stream, request, release)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def _take_slot(self, request: httpx.Request, *, pool_timeout: float | None) -> None:
        await take_slot(self._slots, request, pool_timeout)
        self._in_flight += 1

    def _give_slot(self) -> None:
        self._in_flight -= 1
        self._slots.release()


def _for_aiohttp(request: httpx.Request, timeout: dict[str, float | None]) -> httpx.Request:
    """The request as handed to httpx-aiohttp, whose aiohttp ``connect`` timeout is the pool's.

    Requests wait for a slot here, never in aiohttp's pool, so aiohttp's ``connect`` (pool wait
    plus connecting) must get the connect timeout. The caller's request and its extensions stay
    as they were: the copy is shallow (built directly, as ``copy.copy`` costs ten times more).
    """
    if timeout.get("pool") == timeout.get("connect"):
        return request
    inner = object.__new__(httpx.Request)
    inner.__dict__.update(vars(request))
    inner.extensions = {
        **request.extensions,
        "timeout": {**timeout, "pool": timeout.get("connect")},
    }
    return inner


def _answer_timeout(timeout: dict[str, float | None]) -> float | None:
    """Seconds until an answer must have begun: connecting, writing and the first read."""
    phases = (timeout.get("connect"), timeout.get("write"), timeout.get("read"))
    return None if None in phases else sum(phase for phase in phases if phase is not None)


def _cause(exc: Exception) -> BaseException:
    """The aiohttp (or OS) failure behind ``exc``: httpx-aiohttp chains it with ``from``."""
    if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _translated(exc: Exception, request: httpx.Request) -> httpx.TransportError | None:
    """The httpx exception httpcore raises for the failure behind ``exc``; ``None`` for anything
    that is not a network failure (a bug), which is raised as it is."""
    cause = _cause(exc)
    for failure, error in _ERRORS:
        if isinstance(cause, failure):
            return error(f"{type(cause).__name__}: {cause}", request=request)
    return None


class _Release:
    """Gives the request's slot back, once however often it is called."""

    def __init__(self, transport: AiohttpTransport) -> None:
        self._transport: AiohttpTransport | None = transport

    def __call__(self) -> None:
        if self._transport is not None:
            self._transport._give_slot()
            self._transport = None


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body: failures translated, the slot given back when it is closed."""

    def __init__(
        self, stream: httpx.AsyncByteStream, request: httpx.Request, release: Callable[[], None]
    ) -> None:
        self._stream = stream
        self._request = request
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except Exception as exc:
            error = _translated(exc, self._request)
            if error is None:
                raise
            raise error from _cause(exc)

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        except Exception as exc:
            error = _translated(exc, self._request)
            if error is None:
                raise
            raise error from _cause(exc)
        finally:
            self._release()
