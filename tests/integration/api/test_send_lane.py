"""The send lane answers POST /v1/messages exactly as the general route does.

Each request below goes once through an app with the lane and once through an app without it
(``send_lane="off"``), both on one database; the two answers must match in status, headers
(names, and values where they are not per-request) and body (ids and instants aside).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from smsgateway.domain.api_keys import Scope
from smsgateway.services.api_keys import create_api_key
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

US_SENDER = "+12025550123"
US_MOBILE = "+12015550123"
SEND = {"to": [US_MOBILE], "body": "Your code is 123456"}

# Values that differ between any two answers, whichever path gave them.
_PER_REQUEST_HEADERS = frozenset({"location", "x-request-id", "content-length", "date"})
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)")


@pytest_asyncio.fixture
async def keys(database_url: str) -> dict[str, str]:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        return {
            "send": (await create_api_key(pool, name="sender", tenant="acme")).key,
            "read": (
                await create_api_key(
                    pool, name="reader", tenant="acme", scopes=frozenset({Scope.READ})
                )
            ).key,
            "slow": (
                await create_api_key(pool, name="slow", tenant="acme", rate_limit="2/minute")
            ).key,
        }
    finally:
        await pool.close()


@pytest_asyncio.fixture
async def clients(database_url: str) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    lane = create_app(make_settings(database_url, SINCH_NUMBER=US_SENDER))
    route = create_app(make_settings(database_url, SINCH_NUMBER=US_SENDER, send_lane="off"))
    async with lifespan_client(lane) as with_lane, lifespan_client(route) as without_lane:
        yield {"lane": with_lane, "route": without_lane}


def _comparable(response: httpx.Response) -> dict[str, Any]:
    headers = {
        name: "<varies>" if name in _PER_REQUEST_HEADERS else value
        for name, value in response.headers.items()
    }
    text = _INSTANT.sub("<instant>", _UUID.sub("<uuid>", response.text))
    body = json.loads(text)
    if "request_id" in body:
        body["request_id"] = "<varies>"
    return {"status": response.status_code, "headers": headers, "body": body}


async def _both(
    clients: dict[str, httpx.AsyncClient], **request: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    lane = await clients["lane"].post("/v1/messages", **request)
    route = await clients["route"].post("/v1/messages", **request)
    return _comparable(lane), _comparable(route)


def _headers(key: str | None, **more: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **more}
    if key is not None:
        headers["X-API-Key"] = key
    return headers


@pytest.mark.parametrize(
    ("case", "key", "body", "extra_headers", "status"),
    [
        ("accepted", "send", SEND, {}, 202),
        ("bearer", None, SEND, {"Authorization": "Bearer {send}"}, 202),
        ("no key", None, SEND, {}, 401),
        ("unknown key", "unknown", SEND, {}, 401),
        ("unreadable authorization", None, SEND, {"Authorization": "Basic eDp5"}, 401),
        ("read-only key", "read", SEND, {}, 403),
        ("refused recipient", "send", {"to": ["+1555"], "body": "hi"}, {}, 422),
        ("no recipients", "send", {"to": [], "body": "hi"}, {}, 422),
        ("missing body", "send", {"to": [US_MOBILE]}, {}, 422),
        ("unknown field", "send", {**SEND, "colour": "red"}, {}, 422),
        (
            "private callback url",
            "send",
            {**SEND, "callback_url": "http://127.0.0.1/hook"},
            {},
            422,
        ),
        ("unknown sender", "send", {**SEND, "from": "+12025550999"}, {}, 422),
        ("bad idempotency key", "send", SEND, {"Idempotency-Key": "has space"}, 422),
    ],
)
async def test_the_lane_answers_as_the_route_does(
    clients: dict[str, httpx.AsyncClient],
    keys: dict[str, str],
    case: str,
    key: str | None,
    body: dict[str, Any],
    extra_headers: dict[str, str],
    status: int,
) -> None:
    presented = None if key is None else keys.get(key, "sk_unknown_0000")
    headers = _headers(
        presented, **{name: value.format(**keys) for name, value in extra_headers.items()}
    )
    lane, route = await _both(clients, content=json.dumps(body), headers=headers)
    assert lane["status"] == status, (case, lane)
    assert lane == route, (case, lane, route)


async def test_malformed_json_and_other_content_types_answer_alike(
    clients: dict[str, httpx.AsyncClient], keys: dict[str, str]
) -> None:
    lane, route = await _both(clients, content=b'{"to": [', headers=_headers(keys["send"]))
    assert lane["status"] == 400
    assert lane == route
    lane, route = await _both(
        clients,
        content=json.dumps(SEND),
        headers={"X-API-Key": keys["send"], "Content-Type": "text/plain"},
    )
    assert lane == route


async def test_an_idempotent_replay_answers_alike(
    clients: dict[str, httpx.AsyncClient], keys: dict[str, str]
) -> None:
    for path in ("lane", "route"):
        headers = _headers(keys["send"], **{"Idempotency-Key": f"order-{path}"})
        first = await clients[path].post("/v1/messages", json=SEND, headers=headers)
        again = await clients[path].post("/v1/messages", json=SEND, headers=headers)
        assert first.status_code == again.status_code == 202
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert again.headers["location"] == f"/v1/messages/{first.json()['id']}"


async def test_past_the_rate_limit_both_answer_429_alike(
    clients: dict[str, httpx.AsyncClient], keys: dict[str, str]
) -> None:
    answers = [await _both(clients, json=SEND, headers=_headers(keys["slow"])) for _ in range(3)]
    assert [lane["status"] for lane, _ in answers] == [202, 202, 429]
    for lane, route in answers:
        # The reset countdown may tick between the two answers.
        for answer in (lane, route):
            answer["headers"].pop("ratelimit-reset", None)
            answer["headers"].pop("retry-after", None)
            answer["body"].pop("detail", None)
        assert lane == route
    assert "ratelimit-remaining" in answers[0][0]["headers"]


async def test_the_lane_keeps_the_route_name_in_metrics_and_stores_the_message(
    clients: dict[str, httpx.AsyncClient], keys: dict[str, str], database_url: str
) -> None:
    answer = await clients["lane"].post("/v1/messages", json=SEND, headers=_headers(keys["send"]))
    assert answer.status_code == 202
    connection = await asyncpg.connect(database_url)
    try:
        stored = await connection.fetchval(
            "SELECT count(*) FROM outbox WHERE message_id = $1", answer.json()["id"]
        )
    finally:
        await connection.close()
    assert stored == 1
    metrics = (await clients["lane"].get("/metrics")).text
    assert re.search(
        r'smsgw_http_requests_total\{[^}]*method="POST"[^}]*route="/v1/messages"'
        r'[^}]*status_class="2xx"[^}]*\} [1-9]',
        metrics,
    ), metrics
