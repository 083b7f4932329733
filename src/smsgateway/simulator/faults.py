"""Injected faults: latency, 5xx, 429, 400 refusals, unanswered requests, dropped connections, a
messages/s cap.

`FaultMiddleware` is pure ASGI and sits in front of the Sinch API routes only (`/xms/...`), so
admin calls and OAuth token requests are never faulted. The messages-per-second cap needs the
recipient count, so the send handler applies it through `MessageRateLimiter`.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Literal

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smsgateway.simulator.config import FaultSettings

FaultKind = Literal["timeout", "reset", "server_error", "rate_limit", "refusal"]


def is_send_path(method: str, path: str) -> bool:
    """`POST /xms/v1/{service_plan_id}/batches`, and nothing under it."""
    segments = path.rstrip("/").split("/")
    return method == "POST" and len(segments) == 5 and segments[4] == "batches"


class FaultInjector:
    """The fault settings in force, and the draws that apply them to requests."""

    def __init__(self, settings: FaultSettings, seed: int | None) -> None:
        self._initial = settings
        self._rng = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self.settings = settings
        self._remaining = settings.max_faults

    def replace(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._remaining = settings.max_faults

    def reset(self) -> None:
        self.replace(self._initial)
        self.injected.clear()

    def latency_s(self) -> float:
        settings = self.settings
        jitter = self._rng.uniform(0, settings.jitter_ms) if settings.jitter_ms else 0.0
        return (settings.latency_ms + jitter) / 1000

    def draw(self, method: str, path: str) -> FaultKind | None:
        """Which fault, if any, this request gets; counts it against `max_faults`."""
        settings = self.settings
        if settings.error_rate <= 0 or self._remaining == 0:
            return None
        if settings.scope == "send" and not is_send_path(method, path):
            return None
        threshold = self._rng.random()
        kind: FaultKind | None = None
        rates: tuple[tuple[FaultKind, float], ...] = (
            ("timeout", settings.timeout_rate),
            ("reset", settings.reset_rate),
            ("server_error", settings.server_error_rate),
            ("rate_limit", settings.rate_limit_rate),
            # Sinch refuses a batch it will not send, never a read of one it holds.
            ("refusal", settings.refusal_rate if is_send_path(method, path) else 0.0),
        )
        for candidate, rate in rates:
            if threshold < rate:
                kind = candidate
                break
            threshold -= rate
        if kind is not None:
            self.injected[kind] += 1
            if self._remaining is not None:
                self._remaining -= 1
        return kind


class MessageRateLimiter:
    """A token bucket per account holding one second of messages; a batch of N costs N.

    A batch larger than the cap passes when the bucket is full and leaves it in debt.
    """

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def acquire(self, account_id: str, count: int, rate: float, now: float) -> float | None:
        """None when `count` messages may go now, else the seconds to wait."""
        tokens, updated = self._buckets.get(account_id, (rate, now))
        tokens = min(rate, tokens + (now - updated) * rate)
        needed = min(float(count), rate)
        if tokens < needed:
            self._buckets[account_id] = (tokens, now)
            return (needed - tokens) / rate
        self._buckets[account_id] = (tokens - count, now)
        return None

    def reset(self) -> None:
        self._buckets.clear()


class FaultMiddleware:
    """Applies the injector's latency and faults to every Sinch API request."""

    def __init__(self, app: ASGIApp, injector: FaultInjector) -> None:
        self.app = app
        self.injector = injector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/xms/"):
            await self.app(scope, receive, send)
            return
        latency = self.injector.latency_s()
        if latency > 0:
            await asyncio.sleep(latency)
        kind = self.injector.draw(scope["method"], scope["path"])
        settings = self.injector.settings
        if kind is None:
            await self.app(scope, receive, send)
        elif kind == "timeout":
            await self._never_answer(scope, receive)
        elif kind == "reset":
            await self._drop_connection(scope, receive, send, settings.reset_after_processing)
        elif kind == "server_error":
            response = JSONResponse(
                {"code": "internal_error", "text": "Simulated server error."},
                status_code=settings.server_error_status,
            )
            await response(scope, receive, send)
        elif kind == "refusal":
            # As Sinch refuses a batch it will never send: final, nothing recorded.
            response = JSONResponse(
                {"code": "syntax_constraint_violation", "text": "Simulated refusal."},
                status_code=400,
            )
            await response(scope, receive, send)
        else:
            response = JSONResponse(
                {"code": "too_many_requests", "text": "Simulated rate limit."},
                status_code=429,
                headers={"Retry-After": str(settings.retry_after_s)},
            )
            await response(scope, receive, send)

    async def _never_answer(self, scope: Scope, receive: Receive) -> None:
        """Process the request (the batch is recorded), then hold the answer back.

        The handler returns once the client gives up and disconnects.
        """
        await self.app(scope, receive, _discard)
        while (await receive())["type"] != "http.disconnect":
            pass

    async def _drop_connection(
        self, scope: Scope, receive: Receive, send: Send, after_processing: bool
    ) -> None:
        """Send the status line and half a body, then return: the server closes the socket."""
        captured: list[Message] = []

        async def capture(message: Message) -> None:
            captured.append(message)

        if after_processing:
            await self.app(scope, receive, capture)
        start = next((m for m in captured if m["type"] == "http.response.start"), None)
        status = start["status"] if start is not None else 500
        body = b"".join(m.get("body", b"") for m in captured if m["type"] == "http.response.body")
        body = body or b'{"code":"internal_error","text":"Simulated connection reset."}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )


async def _discard(_message: Message) -> None:
    return None
