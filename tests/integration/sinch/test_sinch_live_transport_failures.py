"""Both transports raise the same httpx exception in the same socket situation.

The Sinch client tells "nothing sent" (safe to repeat) from "outcome unknown" (look the send up)
by the httpx exception alone (``errors.error_from_transport``), so aiohttp's failures must come
out exactly as httpcore's do. A deliberately misbehaving loopback server makes each situation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from smsgateway.sinch import AiohttpTransport, SinchNotSent, SinchOutcomeUnknown
from smsgateway.sinch.errors import error_from_transport
from tests.integration.sinch.raw_server import (
    Behaviour,
    Connection,
    answer_all,
    raw_server,
    unaccepting_port,
)
from tests.integration.sinch.sinch_live import TRANSPORTS, closed_port, pooled_transport
from tests.support.polling import wait_until

pytestmark = pytest.mark.asyncio(loop_scope="session")

TIMEOUT = httpx.Timeout(2.0, connect=0.3, read=0.3, pool=0.2)
PATH = "/xms/v1/plan/batches"


@pytest.fixture(params=TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def pooled(
    kind: str, *, max_connections: int = 10, timeout: httpx.Timeout = TIMEOUT
) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=pooled_transport(kind, max_connections), timeout=timeout)


async def call(http: httpx.AsyncClient, method: str, url: str) -> httpx.Response:
    body = {"to": ["+15551230001"], "body": "hi"} if method == "POST" else None
    return await http.request(method, url, json=body)


async def silent(connection: Connection) -> None:
    await connection.read_request()
    await connection.until_client_closes()


async def slow_body(connection: Connection) -> None:
    await connection.read_request()
    await connection.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123")
    await connection.until_client_closes()


async def close_unanswered(connection: Connection) -> None:
    await connection.read_request()
    connection.close()


async def reset_unanswered(connection: Connection) -> None:
    await connection.read_request()
    connection.reset()


async def half_body(connection: Connection) -> None:
    await connection.read_request()
    await connection.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
    connection.close()


async def not_http(connection: Connection) -> None:
    await connection.read_request()
    await connection.write(b"NOT HTTP AT ALL\r\n\r\n")
    await connection.until_client_closes()


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (silent, httpx.ReadTimeout),
        (slow_body, httpx.ReadTimeout),
        (close_unanswered, httpx.RemoteProtocolError),
        (reset_unanswered, httpx.ReadError),
        (half_body, httpx.RemoteProtocolError),
        (not_http, httpx.RemoteProtocolError),
    ],
    ids=["no-answer", "body-stalls", "closed", "reset", "half-body", "not-http"],
)
async def test_a_failure_after_the_request_left_is_an_unknown_outcome(
    kind: str, method: str, behaviour: Behaviour, expected: type[httpx.TransportError]
) -> None:
    async with raw_server(behaviour) as server, pooled(kind) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await call(http, method, server.base_url + PATH)

    assert type(caught.value) is expected
    assert isinstance(error_from_transport(caught.value), SinchOutcomeUnknown)
    # Sent once: neither transport repeats a request by itself (aiohttp would, for GET and
    # DELETE, had the transport not switched that off).
    assert len(server.requests) == 1


async def far_more_than_socket_buffers() -> AsyncIterator[bytes]:
    # Streamed: aiohttp warns about large bodies given as bytes.
    for _ in range(1000):
        yield b"x" * 65536


async def test_a_request_the_server_stops_reading_is_a_write_timeout(kind: str) -> None:
    async def reads_the_head_only(connection: Connection) -> None:
        await connection.reader.readuntil(b"\r\n\r\n")
        connection.server.requests.append(b"head")
        await asyncio.sleep(30)  # cancelled when the server stops

    timeout = httpx.Timeout(2.0, connect=0.2, write=0.2, read=0.2)
    async with raw_server(reads_the_head_only) as server, pooled(kind, timeout=timeout) as http:
        started = time.monotonic()
        with pytest.raises(httpx.TransportError) as caught:
            await http.post(server.base_url + PATH, content=far_more_than_socket_buffers())
        waited = time.monotonic() - started

    assert type(caught.value) is httpx.WriteTimeout
    assert isinstance(error_from_transport(caught.value), SinchOutcomeUnknown)
    # httpcore gives up after the write timeout; aiohttp, which has none, after connect + write
    # + read (0.6 s here).
    assert 0.15 <= waited < 2.0


async def test_a_refused_connection_is_not_sent(kind: str) -> None:
    async with pooled(kind) as http:
        with pytest.raises(httpx.TransportError) as caught:
            await call(http, "POST", f"http://127.0.0.1:{closed_port()}{PATH}")

    assert type(caught.value) is httpx.ConnectError
    assert isinstance(error_from_transport(caught.value), SinchNotSent)


async def test_a_connection_not_accepted_in_time_is_a_connect_timeout(kind: str) -> None:
    # A pool timeout shorter than the connect timeout must not cut connecting short.
    timeout = httpx.Timeout(2.0, connect=0.3, pool=0.05)
    async with unaccepting_port() as port, pooled(kind, timeout=timeout) as http:
        started = time.monotonic()
        with pytest.raises(httpx.TransportError) as caught:
            await call(http, "POST", f"http://127.0.0.1:{port}{PATH}")
        waited = time.monotonic() - started

    assert type(caught.value) is httpx.ConnectTimeout
    assert isinstance(error_from_transport(caught.value), SinchNotSent)
    assert waited >= 0.25


async def test_no_free_connection_in_time_is_a_pool_timeout(kind: str) -> None:
    async def slow(connection: Connection) -> None:
        await connection.read_request()
        await asyncio.sleep(0.5)
        await connection.answer()

    timeout = httpx.Timeout(2.0, pool=0.2)
    async with raw_server(slow) as server, pooled(kind, max_connections=1, timeout=timeout) as http:
        first = asyncio.create_task(call(http, "POST", server.base_url + PATH))
        await wait_until(lambda: bool(server.requests), message="first request received")

        with pytest.raises(httpx.TransportError) as caught:
            await call(http, "POST", server.base_url + PATH)

        assert (await first).status_code == 200
    assert type(caught.value) is httpx.PoolTimeout
    assert isinstance(error_from_transport(caught.value), SinchNotSent)
    assert len(server.requests) == 1


async def test_connections_are_capped_and_kept_alive(kind: str) -> None:
    async def delayed(connection: Connection) -> None:
        while True:
            await connection.read_request()
            await asyncio.sleep(0.02)
            await connection.answer()

    async with raw_server(delayed) as server, pooled(kind, max_connections=3) as http:
        answers = await asyncio.gather(*(call(http, "GET", server.base_url) for _ in range(12)))
        opened = server.connections
        for _ in range(5):
            await call(http, "POST", server.base_url + PATH)

    assert [answer.status_code for answer in answers] == [200] * 12
    assert opened <= 3
    assert server.peak_open <= 3
    assert server.connections == opened  # the later requests reused idle connections


async def test_a_connection_the_server_closed_while_idle_is_not_reused(kind: str) -> None:
    async def answer_once(connection: Connection) -> None:
        await connection.read_request()
        await connection.answer()  # keep-alive, as far as the headers go
        connection.close()

    async with raw_server(answer_once) as server, pooled(kind) as http:
        await call(http, "POST", server.base_url + PATH)
        await asyncio.sleep(0.05)  # the server's FIN arrives

        second = await call(http, "POST", server.base_url + PATH)

    assert second.status_code == 200
    assert server.connections == 2


async def test_the_request_goes_out_as_httpx_built_it(kind: str) -> None:
    params = {"client_reference": "msg 1&2", "start_date": "2026-01-02T03:04:05+00:00"}
    async with raw_server(answer_all) as server, pooled(kind) as http:
        response = await http.post(
            server.base_url + PATH,
            params=params,
            json={"to": ["+15551230001"], "body": "hi ✓"},
            headers={"Authorization": "Bearer t", "X-Request-ID": "rid-1"},
        )

    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode().split("\r\n")
    method, target, version = request_line.split(" ")
    headers = [line.split(": ", 1) for line in header_lines]
    named = {name.lower(): value for name, value in headers}
    assert (method, urlsplit(target).path, version) == ("POST", PATH, "HTTP/1.1")
    assert parse_qs(urlsplit(target).query) == {name: [value] for name, value in params.items()}
    assert body == response.request.content
    assert named["content-length"] == str(len(body))
    assert named["content-type"] == "application/json"
    assert (named["authorization"], named["x-request-id"]) == ("Bearer t", "rid-1")
    assert len(headers) == len(named)  # no header twice
    # The caller's request keeps its own timeouts (the transport adjusts a copy).
    assert response.request.extensions["timeout"] == TIMEOUT.as_dict()


async def test_cookies_are_kept_by_the_httpx_client_alone(kind: str) -> None:
    async def sets_a_cookie(connection: Connection) -> None:
        while True:
            await connection.read_request()
            await connection.answer(headers=b"set-cookie: session=abc; Path=/\r\n")

    async with raw_server(sets_a_cookie) as server, pooled(kind) as http:
        # A host name: aiohttp's own jar would refuse cookies from an IP address anyway.
        url = f"http://localhost:{server.port}/"
        await call(http, "GET", url)
        await call(http, "GET", url)
        http.cookies.clear()
        await call(http, "GET", url)

    second, third = server.requests[1].lower(), server.requests[2].lower()
    assert second.count(b"\r\ncookie:") == 1
    assert b"\r\ncookie: session=abc\r\n" in second
    assert b"\r\ncookie:" not in third  # no second cookie jar below httpx's


async def test_every_slot_is_given_back() -> None:
    transport = AiohttpTransport(2)

    async def answer_then_fail(connection: Connection) -> None:
        await connection.read_request()
        await connection.answer()
        await connection.read_request()
        connection.close()

    async with (
        raw_server(answer_then_fail) as server,
        httpx.AsyncClient(transport=transport, timeout=TIMEOUT) as http,
    ):
        await call(http, "GET", server.base_url)
        with pytest.raises(httpx.RemoteProtocolError):
            await call(http, "GET", server.base_url)
        async with raw_server(silent) as stalled:
            task = asyncio.create_task(call(http, "GET", stalled.base_url))
            await wait_until(lambda: bool(stalled.requests), message="request under way")
            assert transport.in_flight == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        async with http.stream("GET", server.base_url) as streamed:
            assert transport.in_flight == 1  # answered, body not yet read
            await streamed.aread()

        assert transport.in_flight == 0


async def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AiohttpTransport(0)
