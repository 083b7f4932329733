"""Fakes and sample wire bodies shared by the Sinch client's unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

BASE_URL = "https://us.sms.api.sinch.com"
PLAN_ID = "plan123"
API_TOKEN = "tok_SECRET_api_token_0123456789"
BATCHES_PATH = f"/xms/v1/{PLAN_ID}/batches"
BATCH_ID = "01FC66621XXXXX119Z8PMV1QPQ"

Handler = Callable[[httpx.Request], httpx.Response]


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingObserver:
    """Keeps every observer call, in order."""

    def __init__(self) -> None:
        self.finished: list[tuple[str, str]] = []
        self.retries: list[tuple[str, str]] = []
        self.errors: list[tuple[str, str]] = []
        self.answers: list[tuple[str, int]] = []
        self.in_flight_now = 0
        self.in_flight_max = 0

    def request_finished(self, operation: str, outcome: str, seconds: float) -> None:
        assert seconds >= 0
        self.finished.append((operation, outcome))

    def answered(self, operation: str, status: int) -> None:
        self.answers.append((operation, status))

    def retried(self, operation: str, reason: str) -> None:
        self.retries.append((operation, reason))

    def error(self, operation: str, sinch_code: str) -> None:
        self.errors.append((operation, sinch_code))

    def in_flight(self, delta: int) -> None:
        self.in_flight_now += delta
        self.in_flight_max = max(self.in_flight_max, self.in_flight_now)


def batch_json(**overrides: Any) -> dict[str, Any]:
    """A batch as Sinch answers it, with an unknown field thrown in."""
    batch: dict[str, Any] = {
        "id": BATCH_ID,
        "to": ["+15551230001"],
        "from": "+15550009999",
        "body": "hello",
        "type": "mt_text",
        "canceled": False,
        "created_at": "2026-11-26T10:00:00.000Z",
        "modified_at": "2026-11-26T10:00:00.000Z",
        "delivery_report": "per_recipient",
        "client_reference": "msg_123",
        "some_future_field": {"nested": True},
    }
    batch.update(overrides)
    return batch


def page_json(*batches: dict[str, Any], page: int = 0, page_size: int = 100) -> dict[str, Any]:
    return {"count": len(batches), "page": page, "page_size": page_size, "batches": list(batches)}


Step = httpx.Response | type[httpx.TransportError] | Callable[[httpx.Request], httpx.Response]


def answering(status: int, **kwargs: Any) -> Handler:
    """A handler giving every request the same answer."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)

    return handler


class Routes:
    """A MockTransport handler that plays scripted steps per (method, path) and records requests.

    A step is a response, an httpx transport error class (raised for that request), or a
    callable taking the request. The last step of a route repeats once the others are used.
    """

    def __init__(self) -> None:
        self._steps: dict[tuple[str, str], list[Step]] = {}
        self.requests: list[httpx.Request] = []

    def add(self, method: str, path: str, *steps: Step) -> Routes:
        self._steps[(method, path)] = list(steps)
        return self

    def calls(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if (r.method, r.url.path) == (method, path)]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        steps = self._steps.get((request.method, request.url.path))
        if not steps:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, httpx.Response):
            return step
        if isinstance(step, type) and issubclass(step, httpx.TransportError):
            raise step("scripted failure", request=request)
        return step(request)
