"""The send lane: ``POST /v1/messages`` answered without FastAPI's routing and dependency
machinery, for the one request that carries nearly all of a gateway's traffic.

Profiled under load (bench/bench_end_to_end.py --profile), a send spent more CPU in the
framework around the handler (exception and exit-stack middleware, route matching, resolving
dependencies, building a Response) than in the handler's own work. The lane does what the
route does, through the same functions (``auth.admit``, ``messages.send_answer``, the app's
own exception handlers for every refusal), so the two answer alike; a test sends the same
requests through both and compares the answers.

Whatever the lane is not sure to answer exactly as the route would goes to the route, with
the body already read handed on: a body that is not valid for ``MessageIn`` (the route's
validation errors name fields its own way), another content type, a chunked body, an
``Idempotency-Key`` the route's pattern refuses. It sits inside the request-context and
request-limits middleware, so ids, access logs, metrics and body limits are the same for both.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from smsgateway.api.auth import admit
from smsgateway.api.lanes import answer, is_json, read_body, refuse, replaying
from smsgateway.api.messages import send_answer
from smsgateway.api.schemas import MessageIn
from smsgateway.domain.api_keys import Scope as KeyScope

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from smsgateway.api.deps import AppState

SEND_PATH = "/v1/messages"
# The route's own rule for the header (api.messages.send_message).
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class SendLane:
    """ASGI middleware answering ``POST /v1/messages`` itself; everything else passes on.

    ``route`` is the route the lane stands in for: it is put in the scope, as routing would,
    so that metrics and logs name it. ``handlers`` are the app's exception handlers (by
    exception class), which answer the lane's refusals exactly as they answer the route's.
    """

    def __init__(
        self,
        app: ASGIApp,
        route: BaseRoute,
        handlers: Mapping[Any, Callable[..., Any]],
    ) -> None:
        self.app = app
        self.route = route
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != SEND_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        idempotency_key = headers.get("idempotency-key")
        if (
            not is_json(headers.get("content-type"))
            or headers.get("content-length") is None
            or (idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key))
        ):
            await self.app(scope, receive, send)
            return
        scope["route"] = self.route
        try:
            body = await read_body(receive)
        except Exception as exc:  # a body over the limit, mid-stream
            await self._refuse(scope, receive, send, exc)
            return
        try:
            message = MessageIn.model_validate_json(body)
        except ValidationError:
            await self.app(scope, replaying(body, receive), send)
            return
        state: AppState = scope["state"]["app_state"]
        client = scope.get("client")
        try:
            key, limit_headers = await admit(
                state, headers, client[0] if client else None, KeyScope.SEND
            )
            status, body_out, answer_headers = await send_answer(
                state, message, key, idempotency_key, limit_headers
            )
        except Exception as exc:
            await self._refuse(scope, receive, send, exc)
            return
        await answer(send, status, body_out, answer_headers)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        await refuse(self.handlers, scope, receive, send, exc)
