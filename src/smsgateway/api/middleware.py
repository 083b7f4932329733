"""Pure ASGI middleware: request ids, access logs, metrics, the catch-all 500 and the request
limits (header size, NUL in the query, body size)."""

from __future__ import annotations

import logging
import random
import re
import time
from urllib.parse import parse_qsl

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsgateway.api.problems import ProblemField, RequestTooLargeError, send_problem
from smsgateway.observability.access_log import ACCESS_LOGGER, log_request
from smsgateway.observability.logging import request_id_var
from smsgateway.observability.metrics import HTTP_REQUESTS_IN_PROGRESS, record_http_request

logger = logging.getLogger(ACCESS_LOGGER)

REQUEST_ID_HEADER = "x-request-id"
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# Probes and scrapes would drown the access log; they are still counted in metrics.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics", "/health"})


class RequestContextMiddleware:
    """Gives each request an id, and answers for it: header, log line, metrics, and 500s.

    It is the outermost of our middleware, so an unexpected exception anywhere below is logged
    with its traceback here and answered with a problem document that says nothing of internals.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_request_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        HTTP_REQUESTS_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_with_request_id)
        except Exception:
            logger.exception("unhandled error", extra={"route": _route_template(scope)})
            if not response_started:
                await send_problem(
                    send_with_request_id,
                    500,
                    "internal_error",
                    "The gateway failed to handle this request; it has been logged.",
                )
        finally:
            HTTP_REQUESTS_IN_PROGRESS.dec()
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            method = scope["method"]
            record_http_request(method, route, status, elapsed)
            log_request(
                logging.DEBUG if route in _QUIET_ROUTES else logging.INFO,
                request_id,
                method,
                route,
                status,
                round(elapsed * 1000, 2),
            )
            request_id_var.reset(token)


class RequestLimitsMiddleware:
    """What every request must meet before it is routed, checked in one pass: headers over
    ``max_header_bytes`` (all together) get 431; a query string holding U+0000 gets 422
    naming the parameter (Postgres cannot store or compare text with NUL, and a filter must
    not turn that into a 500); a body over ``max_bytes`` gets 413 before any parsing.

    A declared ``Content-Length`` over the limit is refused before reading a byte; a chunked
    body is counted as it streams and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, max_header_bytes: int = 16 * 1024) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, header_bytes = _content_length_and_header_bytes(scope)
        if header_bytes > self.max_header_bytes:
            await send_problem(
                send,
                431,
                "request_headers_too_large",
                f"The request headers are larger than the limit of {self.max_header_bytes} bytes.",
            )
            return
        query: bytes = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            await _refuse_nul_in_query(send, query)
            return
        if declared is not None and declared > self.max_bytes:
            await send_problem(send, 413, "payload_too_large", self._detail())
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLargeError(self.max_bytes)
            return message

        await self.app(scope, counting_receive, send)

    def _detail(self) -> str:
        return f"The request body is larger than the limit of {self.max_bytes} bytes."


async def _refuse_nul_in_query(send: Send, query: bytes) -> None:
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    names = sorted({name for name, value in pairs if "\x00" in name or "\x00" in value})
    await send_problem(
        send,
        422,
        "invalid_character",
        "A query parameter holds U+0000 (NUL), which the gateway cannot search for.",
        [
            ProblemField(
                field=f"query.{name.replace(chr(0), '')}",
                code="invalid_character",
                message="U+0000 (NUL) is not allowed.",
            )
            for name in names
        ],
    )


def _request_id_from(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _ACCEPTABLE_REQUEST_ID.match(candidate):
                return candidate
            break
    # Unique, not secret: the random module's generator, since uuid4's read of os.urandom
    # (a system call) was 3 % of a delivery report's CPU.
    return f"{random.getrandbits(128):032x}"


def _content_length_and_header_bytes(scope: Scope) -> tuple[int | None, int]:
    """The declared body length, and the size of all headers (names, values, ': ', CRLF)."""
    declared: int | None = None
    seen_length = False
    total = 0
    for name, value in scope["headers"]:
        total += len(name) + len(value) + 4
        if name == b"content-length" and not seen_length:
            seen_length = True
            try:
                declared = int(value)
            except ValueError:
                declared = None
    return declared, total


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path: object = getattr(route, "path", None)
        if isinstance(path, str):
            return path
    # Unmatched paths share one label so that scanners cannot explode the metric's cardinality.
    return "<unmatched>"
