"""`create_simulator_app(config)`: the fake Sinch as a FastAPI app; `serve_simulator` runs it.

The lifespan owns the callbacks' httpx client and cancels pending callbacks on shutdown. Run
it standalone with `asyncio.run(serve_simulator(SimulatorConfig(), "127.0.0.1", 9009))`, or
under any ASGI server as `create_simulator_app(config)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from smsgateway.simulator import admin, oauth, routes
from smsgateway.simulator.auth import OAuthError
from smsgateway.simulator.batch_lane import BatchLane
from smsgateway.simulator.config import SimulatorConfig
from smsgateway.simulator.engine import Simulator
from smsgateway.simulator.errors import (
    SimulatorError,
    Unauthorized,
    error_response,
    unauthorized_response,
)
from smsgateway.simulator.faults import FaultMiddleware


def create_simulator_app(config: SimulatorConfig) -> FastAPI:
    """A fresh simulator with its own state; nothing is shared between apps."""
    simulator = Simulator(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await simulator.start()
        try:
            yield
        finally:
            await simulator.aclose()

    app = FastAPI(
        title="Sinch SMS simulator",
        summary="A fake Sinch SMS REST API with faults, for smsgateway's tests and local runs.",
        lifespan=lifespan,
    )
    app.state.simulator = simulator
    # Added last, so outermost: faults apply to the lane's sends too.
    app.add_middleware(BatchLane, simulator=simulator)
    app.add_middleware(FaultMiddleware, injector=simulator.faults)
    app.include_router(routes.router)
    app.include_router(oauth.router)
    app.include_router(admin.router)
    app.add_exception_handler(SimulatorError, _simulator_error)
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(OAuthError, _oauth_error)
    app.add_exception_handler(HTTPException, _http_error)
    return app


async def serve_simulator(
    config: SimulatorConfig, host: str = "127.0.0.1", port: int = 9009, *, log_level: str = "info"
) -> None:
    """Serve the simulator under uvicorn until interrupted (for `smsgateway simulator`)."""
    server_config = uvicorn.Config(
        create_simulator_app(config),
        host=host,
        port=port,
        log_level=log_level,
        # A request held open by the timeout fault must not hold shutdown hostage.
        timeout_graceful_shutdown=5,
    )
    await uvicorn.Server(server_config).serve()


async def _simulator_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SimulatorError)
    return error_response(exc)


async def _unauthorized(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Unauthorized)
    return unauthorized_response(exc)


async def _oauth_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    headers = {"www-authenticate": "Basic"} if exc.status == 401 else None
    return JSONResponse({"error": exc.error}, status_code=exc.status, headers=headers)


# Sinch documents no body for these; they keep its `{"code", "text"}` shape rather than
# FastAPI's `{"detail": ...}`, so a client parsing Sinch errors parses them too.
_HTTP_ERROR_CODES = {
    404: ("not_found", "No such resource: {path}."),
    405: ("method_not_allowed", "{method} is not allowed on {path}."),
}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, text = _HTTP_ERROR_CODES.get(exc.status_code, ("http_error", "{detail}"))
    body = {
        "code": code,
        "text": text.format(path=request.url.path, method=request.method, detail=exc.detail),
    }
    headers = {name.lower(): value for name, value in (exc.headers or {}).items()}
    if exc.status_code == 405:
        # Starlette's Allow names only the first route on the path; list every method.
        headers["allow"] = ", ".join(_allowed_methods(request))
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers on this path (each route fully matched in turn)."""
    return [
        method
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH")
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
