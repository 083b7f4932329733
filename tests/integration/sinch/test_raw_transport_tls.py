"""The raw transport over TLS, as it talks to Sinch: certificates verified, connections kept."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trustme

from smsgateway.sinch import RawTransport, SinchNotSent
from smsgateway.sinch.errors import error_from_transport

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANSWER = b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


@asynccontextmanager
async def tls_server(ca: trustme.CA) -> AsyncIterator[tuple[int, list[int]]]:
    """An HTTPS server for ``localhost`` answering every request; yields its port and a list
    counting its connections."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1], connections
    finally:
        server.close()


async def test_answers_come_over_verified_tls_on_one_kept_connection() -> None:
    ca = trustme.CA()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with (
        tls_server(ca) as (port, connections),
        httpx.AsyncClient(transport=RawTransport(4, ssl_context=trusting), timeout=2) as http,
    ):
        answers = [
            await http.post(f"https://localhost:{port}/xms/v1/plan/batches", json={"n": n})
            for n in range(3)
        ]
    assert [(a.status_code, a.json()) for a in answers] == [(201, {})] * 3
    assert len(connections) == 1


async def test_a_certificate_nobody_vouches_for_is_refused_before_sending() -> None:
    async with (
        tls_server(trustme.CA()) as (port, _),
        httpx.AsyncClient(transport=RawTransport(4), timeout=2) as http,
    ):
        with pytest.raises(httpx.ConnectError) as caught:
            await http.post(f"https://localhost:{port}/xms/v1/plan/batches", json={})
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert isinstance(error_from_transport(caught.value), SinchNotSent)
