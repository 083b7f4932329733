"""The report lane: ``POST /webhooks/sinch`` (and its path-secret form) answered without
FastAPI's routing.

Sinch posts a report per recipient and status change, two or three per message sent: at
1,000 messages/s, more requests than the sends themselves. Profiled under load
(bench/bench_latency.py), the router, exception and exit-stack middleware and response classes
around each of them cost more CPU than authenticating and storing it. The lane does what the
route does, through the same functions (``webhooks.authenticate``, ``webhooks.callback_answer``)
and the app's exception handlers for refusals, so the two answer alike (a test posts the same
calls through both). The older aliases (``/delivery-reports``, ``/inbound``) go to the routes.
It sits inside the request-context and request-limits middleware, as the send lane does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.datastructures import Headers

from smsgateway.api.lanes import answer, read_body, refuse
from smsgateway.api.webhooks import SINCH_WEBHOOK_PATH, authenticate, callback_answer
from smsgateway.services.sinch_callbacks import CallbackKind

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from starlette.routing import BaseRoute
    from starlette.types import ASGIApp, Receive, Scope, Send

    from smsgateway.api.deps import AppState

# Path segments the routes own under /webhooks/sinch/: never a path secret.
_ALIASES = frozenset({"delivery-reports", "inbound"})
_PREFIX = SINCH_WEBHOOK_PATH + "/"


class ReportLane:
    """ASGI middleware answering ``POST /webhooks/sinch[/<secret>]`` itself; everything else
    passes on. ``route`` and ``secret_route`` are the routes it stands in for (put in the
    scope, as routing would, so that metrics and logs name them); ``handlers`` are the app's
    exception handlers."""

    def __init__(
        self,
        app: ASGIApp,
        route: BaseRoute,
        secret_route: BaseRoute,
        handlers: Mapping[Any, Callable[..., Any]],
    ) -> None:
        self.app = app
        self.route = route
        self.secret_route = secret_route
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == SINCH_WEBHOOK_PATH:
            path_secret, route = None, self.route
        elif path.startswith(_PREFIX) and _is_secret(secret := path[len(_PREFIX) :]):
            path_secret, route = secret, self.secret_route
        else:
            await self.app(scope, receive, send)
            return
        scope["route"] = route
        if path_secret is not None:
            scope["path_params"] = {"path_secret": path_secret}
        state: AppState = scope["state"]["app_state"]
        try:
            body = await read_body(receive)
            await authenticate(state, Headers(scope=scope), body, path_secret, "sinch")
            answer_body = await callback_answer(state, body, CallbackKind.DELIVERY_REPORT)
        except Exception as exc:
            await refuse(self.handlers, scope, receive, send, exc)
            return
        await answer(send, 200, answer_body)


def _is_secret(segment: str) -> bool:
    return bool(segment) and "/" not in segment and segment not in _ALIASES
