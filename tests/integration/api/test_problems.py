"""Every error answer is problem+json with a stable code, the failing fields and the request id."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter
from pydantic import BaseModel, Field

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

PROBLEM = "application/problem+json"


class EchoIn(BaseModel):
    to: list[str] = Field(min_length=1)
    body: str


probe = APIRouter()


@probe.post("/test/echo")
async def echo(payload: EchoIn) -> EchoIn:
    return payload


@probe.get("/test/boom")
async def boom() -> None:
    raise RuntimeError("secret internals: token=abc123 for +15551234567")


@probe.get("/test/items/{item_id}")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, max_body_bytes=2048))
    app.include_router(probe)
    async with lifespan_client(app) as client:
        yield client


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"] == f"/problems/{code}"
    assert problem["title"]
    assert problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]
    return dict(problem)


async def test_validation_error_names_each_failing_field(client: httpx.AsyncClient) -> None:
    response = await client.post("/test/echo", json={"to": [], "body": 5})
    problem = assert_problem(response, 422, "validation_error")
    fields = {error["field"]: error for error in problem["errors"]}  # type: ignore[attr-defined]
    assert set(fields) == {"body.to", "body.body"}
    # Our codes, never Pydantic's (too_short, string_type): they are part of the contract.
    assert fields["body.to"]["code"] == "invalid_length"
    assert fields["body.body"]["code"] == "invalid_type"
    assert "body.to" in str(problem["detail"])


async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/test/echo", content=b'{"to": [', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed_json")


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/no/such/thing"), 404, "not_found")
    assert problem["instance"] == "/no/such/thing"


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.delete("/healthz"), 405, "method_not_allowed")


async def test_path_parameter_of_the_wrong_type_is_a_422(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.get("/test/items/abc"), 422, "validation_error")
    assert problem["errors"][0]["field"] == "path.item_id"  # type: ignore[index]


async def test_declared_oversized_body_is_refused_before_parsing(client: httpx.AsyncClient) -> None:
    body = json.dumps({"to": ["+46701234567"], "body": "x" * 4096})
    response = await client.post(
        "/test/echo", content=body, headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 413, "payload_too_large")
    assert "2048" in str(problem["detail"])


async def test_streamed_oversized_body_is_refused_while_reading(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"to": ["+46701234567"], "body": "'
        for _ in range(10):
            yield b"y" * 512
        yield b'"}'

    response = await client.post(
        "/test/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload_too_large")


async def test_body_under_the_limit_passes(client: httpx.AsyncClient) -> None:
    response = await client.post("/test/echo", json={"to": ["+46701234567"], "body": "hi"})
    assert response.status_code == 200
    assert response.json() == {"to": ["+46701234567"], "body": "hi"}


async def test_unexpected_error_is_a_bare_500_and_logged_with_its_traceback(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="smsgateway.access"):
        response = await client.get("/test/boom")
    problem = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert problem["errors"] == []
    logged = [record for record in caplog.records if record.exc_info]
    assert logged, "the traceback must be logged"
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[0] is RuntimeError


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/messages?recipient=%00", "query.recipient"),
        ("/v1/messages?client_reference=a%00b", "query.client_reference"),
        ("/v1/inbound-messages?from=%2B1%00", "query.from"),
        ("/v1/opt-outs?cursor=%00", "query.cursor"),
    ],
)
async def test_nul_in_a_query_parameter_is_a_422_naming_it(
    client: httpx.AsyncClient, database_url: str, path: str, field: str
) -> None:
    client.headers["X-API-Key"] = await issue_api_key(database_url, "nul-probe")

    response = await client.get(path)

    problem = assert_problem(response, 422, "invalid_character")
    assert [error["field"] for error in problem["errors"]] == [field]  # type: ignore[attr-defined]


async def test_request_headers_over_the_limit_are_a_431(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"x-padding": "a" * 20_000})

    assert_problem(response, 431, "request_headers_too_large")
    assert (await client.get("/healthz", headers={"x-padding": "a" * 8_000})).status_code == 200


async def test_nul_in_an_opt_out_note_is_a_422_naming_it(
    client: httpx.AsyncClient, database_url: str
) -> None:
    client.headers["X-API-Key"] = await issue_api_key(database_url, "note-probe")

    response = await client.post(
        "/v1/opt-outs", json={"msisdn": "+46701234567", "note": "asked by phone\x00"}
    )

    problem = assert_problem(response, 422, "invalid_character")
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [  # type: ignore[attr-defined]
        ("body.note", "invalid_character")
    ]
