"""The Express tutorial's GET / and POST /send-sms, kept for callers migrating from it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    key = await issue_api_key(database_url, name="legacy")
    settings = make_settings(database_url, legacy_wait_seconds=0.3, dispatcher="off")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


async def test_root_says_the_server_is_running(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.text == "Sinch SMS API Server is running!"


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({"message": "hi"}, "Missing or invalid `recipient` field (must be a string)."),
        (
            {"recipient": 46701234567, "message": "hi"},
            "Missing or invalid `recipient` field (must be a string).",
        ),
        ({"recipient": "+46701234567"}, "Missing or invalid `message` field (must be a string)."),
        (
            {"recipient": "0701234567", "message": "hi"},
            "Invalid recipient phone number format. Use E.164 format (e.g., +15551234567).",
        ),
        ({"recipient": "+46701234567", "message": "   "}, "Message body cannot be empty."),
        ([], "Missing or invalid `recipient` field (must be a string)."),
    ],
)
async def test_the_tutorials_validation_failures_keep_their_shape(
    client: httpx.AsyncClient, payload: object, error: str
) -> None:
    response = await client.post("/send-sms", json=payload, headers={"X-Request-ID": "corr-1"})
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == error
    assert body["correlationId"] == "corr-1"
    assert body["status"] == 400


async def test_a_number_the_regex_accepts_but_libphonenumber_refuses_is_a_400(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/send-sms", json={"recipient": "+99912345", "message": "hi"})
    assert response.status_code == 400
    assert response.json()["correlationId"]


async def test_a_message_sinch_does_not_take_in_time_is_a_500_but_stays_stored(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post(
        "/send-sms",
        json={"recipient": "+46701234567", "message": "hi"},
        headers={"X-Request-ID": "corr-2"},
    )
    assert response.status_code == 500
    body = response.json()
    # The tutorial's members, inside a problem document that the catalogue explains.
    assert (body["error"], body["correlationId"]) == ("Failed to send SMS.", "corr-2")
    assert (body["code"], body["type"]) == ("send_failed", "/problems/send_failed")
    assert response.headers["content-type"] == "application/problem+json"
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM outbox") == 1
    finally:
        await connection.close()


async def test_the_api_key_is_checked(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/send-sms",
        json={"recipient": "+46701234567", "message": "hi"},
        headers={"X-API-Key": "sgw_wrong_wrong_wrong_wrong"},
    )
    assert response.status_code == 401


async def test_a_body_the_tutorial_accepts_but_the_gateway_refuses_is_a_400_not_a_500(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/send-sms", json={"recipient": "+46701234567", "message": "bell\x07 here"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_character"


async def test_an_opted_out_recipient_is_refused_as_the_tutorial_refuses_never_a_500(
    client: httpx.AsyncClient,
) -> None:
    opted = await client.post("/v1/opt-outs", json={"msisdn": "+46701234567"})
    assert opted.status_code == 201
    response = await client.post(
        "/send-sms",
        json={"recipient": "+46701234567", "message": "hi"},
        headers={"X-Request-ID": "corr-3"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "opted_out"
    assert body["correlationId"] == "corr-3"
    assert "opted out" in body["error"]
    assert body["errors"] == [
        {"field": "body.recipient", "code": "opted_out", "message": body["error"]}
    ]
