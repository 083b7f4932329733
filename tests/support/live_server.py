"""Run an ASGI app under uvicorn on a loopback ephemeral port, inside the current event loop.

    async with live_server(app) as base_url:
        async with httpx.AsyncClient(base_url=base_url) as client:
            ...

The port comes from binding a socket to port 0 and handing it to uvicorn, so there is no race
for a free port. Startup is awaited by polling `server.started` against a deadline; a failed
startup (an app whose lifespan raises) becomes a RuntimeError instead of a SystemExit.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.types import ASGIApp

POLL_INTERVAL_S = 0.005


@asynccontextmanager
async def live_server(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    startup_timeout_s: float = 10.0,
    graceful_shutdown_s: int = 5,
    log_level: str = "warning",
) -> AsyncIterator[str]:
    """Serve `app` until the block exits; yields its base URL (`http://127.0.0.1:<port>`).

    `graceful_shutdown_s` bounds how long shutdown waits for requests still open (such as a
    request the app deliberately never answers) before uvicorn cancels them.
    """
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says it is TCP; without it, Nagle's algorithm and delayed ACKs add
    # about 40 ms to every response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="on",
            log_level=log_level,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=graceful_shutdown_s,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(_serve(server, sock), name=f"live_server:{port}")
        try:
            await _wait_started(server, task, startup_timeout_s)
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            if not server.started:
                task.cancel()
            await asyncio.wait({task})
            if not task.cancelled():
                task.result()
    finally:
        sock.close()


async def _serve(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:
        # uvicorn exits the process when the app's lifespan startup fails.
        raise RuntimeError(f"uvicorn failed to start (exit code {exc.code})") from exc


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started serving")
        if loop.time() >= deadline:
            server.should_exit = True
            raise TimeoutError(f"uvicorn did not start within {timeout_s} s")
        await asyncio.sleep(POLL_INTERVAL_S)
