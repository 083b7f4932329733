"""Fixtures for the Sinch client's unit tests: a fake clock, a recording observer, clients on
``httpx.MockTransport``. Nothing here sleeps for real."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import pytest_asyncio

from smsgateway.sinch.auth import ApiTokenAuth
from smsgateway.sinch.client import SinchClient
from smsgateway.sinch.retry import RetryPolicy
from tests.unit.sinch.fakes import (
    API_TOKEN,
    BASE_URL,
    PLAN_ID,
    FakeTime,
    Handler,
    RecordingObserver,
)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def policy(fake_time: FakeTime) -> RetryPolicy:
    # random() == 0.5 makes full-jitter delays exactly half their ceiling: 0.25, 0.5, 1.0, ...
    return RetryPolicy(
        max_attempts=4,
        base_delay=0.5,
        max_delay=20.0,
        max_retry_after=30.0,
        deadline=60.0,
        random=lambda: 0.5,
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )


@pytest.fixture
def observer() -> RecordingObserver:
    return RecordingObserver()


MakeClient = Callable[..., SinchClient]


@pytest_asyncio.fixture
async def make_client(
    policy: RetryPolicy, observer: RecordingObserver
) -> AsyncIterator[MakeClient]:
    """``make_client(handler, **overrides)``: a SinchClient over a MockTransport."""
    opened: list[httpx.AsyncClient] = []

    def factory(handler: Handler, **overrides: Any) -> SinchClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        opened.append(http)
        options: dict[str, Any] = {
            "base_url": BASE_URL,
            "path_id": PLAN_ID,
            "auth": ApiTokenAuth(API_TOKEN),
            "retry_policy": policy,
            "observer": observer,
        }
        options.update(overrides)
        return SinchClient(http, **options)

    yield factory
    for http in opened:
        await http.aclose()
