"""parameters in preview and accept: keys normalised like `to`, refused keys are 422 problems."""

from __future__ import annotations

import json
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

ANN = "+14155550157"
BOB = "+14155550158"


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    key = await issue_api_key(database_url, name="templater")
    settings = make_settings(database_url, dispatcher="off")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


def templated(**parameters: dict[str, str]) -> dict[str, object]:
    return {
        "to": ["(415) 555-0157", "415 555 0158"],
        "region": "US",
        "body": "Hi ${name}",
        "parameters": parameters,
    }


async def test_preview_shows_the_keys_as_they_would_be_sent(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/messages/preview",
        json=templated(name={"(415) 555-0157": "Ann", "default": "there"}),
    )
    assert response.status_code == 200, response.text
    assert response.json()["parameters"] == {"name": {ANN: "Ann", "default": "there"}}


async def test_accept_stores_the_keys_in_e164(client: httpx.AsyncClient, database_url: str) -> None:
    response = await client.post(
        "/v1/messages", json=templated(name={"(415) 555-0157": "Ann", "+1 415-555-0158": "Bob"})
    )
    assert response.status_code == 202, response.text
    connection = await asyncpg.connect(database_url)
    try:
        stored = await connection.fetchval(
            "SELECT parameters FROM sms_log WHERE id = $1::uuid", response.json()["id"]
        )
    finally:
        await connection.close()
    assert json.loads(stored) == {"name": {ANN: "Ann", BOB: "Bob"}}


@pytest.mark.parametrize("path", ["/v1/messages/preview", "/v1/messages"])
@pytest.mark.parametrize(
    ("parameters", "code", "fields"),
    [
        (
            {"name": {"+14155550199": "Eve"}},
            "parameter_recipient_unknown",
            ["body.parameters.name.+14155550199"],
        ),
        ({"name": {"Ann": "Ann"}}, "invalid_phone_number", ["body.parameters.name.Ann"]),
        (
            {"name": {ANN: "Ann", "(415) 555-0157": "Annie"}},
            "duplicate_parameter_recipient",
            ["body.parameters.name.(415) 555-0157"],
        ),
        (
            {"name": {"Ann": "Ann"}, "code": {"+14155550199": "1"}},
            "invalid_parameters",
            ["body.parameters.name.Ann", "body.parameters.code.+14155550199"],
        ),
    ],
)
async def test_a_refused_key_is_a_422_problem_naming_it(
    client: httpx.AsyncClient,
    database_url: str,
    path: str,
    parameters: dict[str, dict[str, str]],
    code: str,
    fields: list[str],
) -> None:
    response = await client.post(path, json=templated(**parameters))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert [error["field"] for error in problem["errors"]] == fields
    assert all(error["message"] for error in problem["errors"])
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM sms_log") == 0
    finally:
        await connection.close()


@pytest.mark.parametrize("path", ["/v1/messages/preview", "/v1/messages"])
async def test_a_placeholder_some_recipient_has_no_value_for_is_refused(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.post(path, json=templated(name={"(415) 555-0157": "Ann"}))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "parameter_value_missing"
    assert [error["field"] for error in problem["errors"]] == ["body.parameters.name"]


async def test_the_problem_codes_are_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    described = schema["components"]["schemas"]["MessageIn"]["properties"]["parameters"]
    for code in (
        "parameter_recipient_unknown",
        "invalid_phone_number",
        "duplicate_parameter_recipient",
        "parameter_value_missing",
    ):
        assert code in described["description"]
    assert "parameters" in schema["components"]["schemas"]["PreviewOut"]["properties"]
