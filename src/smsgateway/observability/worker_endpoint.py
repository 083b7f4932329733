"""``smsgateway worker``'s own small HTTP endpoint: ``/metrics``, ``/healthz``, ``/readyz``.

The worker serves no API, so this is all it answers, on ``SMSGW_WORKER_METRICS_PORT``. The
socket is bound before the worker starts (``bind_endpoint_socket``), so a port that is taken
stops the start with one line instead of a worker that runs unobserved. aiohttp's server (the
Sinch transport's library already) runs in the worker's event loop and touches no signal
handlers, which the worker keeps for its graceful stop.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from smsgateway.observability.metrics import render_latest


class EndpointPortInUseError(OSError):
    """The metrics port is taken (by anything, another smsgateway included)."""


def bind_endpoint_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``, without SO_REUSEPORT: a second process asking
    for the same port is refused rather than silently sharing it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR only lets a restart rebind past TIME_WAIT; it never shares a live port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise EndpointPortInUseError(
                exc.errno,
                f"SMSGW_WORKER_METRICS_PORT {port} on {host} is already in use; pick a free "
                "port (or leave it unset to serve no metrics)",
            ) from exc
        raise
    sock.setblocking(False)
    return sock


class WorkerEndpoint:
    """Serves the endpoints on ``sock`` until :meth:`stop`; ``ready`` says whether the worker
    can do its work now (e.g. its database answers)."""

    def __init__(self, sock: socket.socket, ready: Callable[[], Awaitable[str | None]]) -> None:
        self._sock = sock
        self._ready = ready
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _metrics(self, _: web.Request) -> web.Response:
        body, content_type = render_latest()
        response = web.Response(body=body)
        # Set as a header: aiohttp's content_type argument refuses the "; version=..." part.
        response.headers["Content-Type"] = content_type
        return response

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        problem = await self._ready()
        if problem is None:
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "unavailable", "detail": problem}, status=503)
