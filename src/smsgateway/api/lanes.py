"""What the lanes share (api.send_lane, api.report_lane): ASGI middleware answering one hot
request without FastAPI's routing, through the same functions as its route, and refusing
through the app's own exception handlers so that both answer alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from starlette.types import Message, Receive, Scope, Send


async def answer(
    send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    """A JSON answer, written as ASGI messages."""
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if headers:
        raw_headers += [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def refuse(
    handlers: Mapping[Any, Callable[..., Any]],
    scope: Scope,
    receive: Receive,
    send: Send,
    exc: Exception,
) -> None:
    """Answers ``exc`` as the app's exception handlers answer it on the route, found as
    Starlette's ExceptionMiddleware finds them (the nearest class in its MRO); an exception
    they do not handle goes on up, to the request context's 500."""
    for kind in type(exc).__mro__:
        if kind in handlers:
            response = await handlers[kind](Request(scope), exc)
            await response(scope, receive, send)
            return
    raise exc


def is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.partition(";")[0].strip().lower()
    return media_type == "application/json"


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            # The caller went away; what the route would get, it gets: an empty body.
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the connection says next."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
