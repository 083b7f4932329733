"""Helpers shared by the live Sinch client tests (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from smsgateway.sinch import AiohttpTransport, RawTransport, ShardedTransport, SinchClient
from tests.support.sinch_simulator import RunningSimulator

OAUTH_PROJECT = "project-1"
OAUTH_KEY_ID = "key-id-1"
OAUTH_KEY_SECRET = "key-secret-1"
# Short enough to keep the unknown-outcome tests fast, long enough for loopback answers
# on a busy two-core machine.
READ_TIMEOUT_S = 0.3

# SMSGW_SINCH_TRANSPORT's values, the default first.
TRANSPORTS = ("raw", "aiohttp", "httpx")


def pooled_transport(kind: str, max_connections: int) -> httpx.AsyncBaseTransport:
    """The transport the gateway builds for ``kind`` (components.build_http_client)."""
    if kind == "raw":
        return RawTransport(max_connections)
    if kind == "aiohttp":
        return AiohttpTransport(max_connections)
    return ShardedTransport(max_connections)


@dataclass
class RecordedSleep:
    """A retry sleep that records each wait and only yields to the loop."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


@dataclass
class RequestLog:
    """Every request the test's httpx client sent, as ``(method, path)``."""

    requests: list[tuple[str, str]] = field(default_factory=list)

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append((request.method, request.url.path))

    def count(self, method: str, path_suffix: str) -> int:
        return sum(1 for m, p in self.requests if m == method and p.endswith(path_suffix))


MakeClient = Callable[..., SinchClient]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_reference() -> str:
    return f"msg_{uuid.uuid4().hex}"


async def set_faults(sim: RunningSimulator, **settings: object) -> None:
    """Replace the simulator's faults (fields left out: no fault)."""
    response = await sim.client.put("/_admin/faults", json=settings)
    assert response.status_code == 200, response.text


async def faults_injected(sim: RunningSimulator) -> dict[str, int]:
    response = await sim.client.get("/_admin/stats")
    response.raise_for_status()
    injected: dict[str, int] = response.json()["faults_injected"]
    return injected
