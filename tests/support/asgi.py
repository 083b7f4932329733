"""Drive a gateway app in-process: run its lifespan and talk to it through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send


@asynccontextmanager
async def lifespan_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Starts ``app``'s lifespan and yields a client whose requests see its state.

    httpx's ASGITransport runs no lifespan, so the state the lifespan yields is put into each
    request's scope here, as uvicorn would.
    """
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=_with_state(app, state or {}))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


def _with_state(app: FastAPI, state: Mapping[str, Any]) -> Any:
    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        scope = {**scope, "state": dict(state)}
        await app(scope, receive, send)

    return asgi
