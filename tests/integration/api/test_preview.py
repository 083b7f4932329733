"""POST /v1/messages/preview: the same checks as sending, nothing stored or sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

PRICES = Path(__file__).resolve().parents[3] / "src/smsgateway/domain/price_table.example.json"
SE_MOBILE = "+46701234567"
US_MOBILE = "+12015550123"


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    key = await issue_api_key(database_url, name="previewer")
    settings = make_settings(
        database_url,
        SINCH_NUMBER="+12025550123",
        allowed_senders=["ACME"],
        price_table_file=PRICES,
        max_segments=3,
    )
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = key
        yield client


async def preview(client: httpx.AsyncClient, **message: object) -> httpx.Response:
    return await client.post("/v1/messages/preview", json=message)


async def test_a_key_is_required(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/messages/preview", json={"to": SE_MOBILE, "body": "hi"}, headers={"X-API-Key": ""}
    )
    assert response.status_code == 401


async def test_recipients_are_normalised_deduplicated_and_refusals_explained(
    client: httpx.AsyncClient,
) -> None:
    response = await preview(
        client,
        to=["(201) 555-0123", SE_MOBILE, "+1 201 555 0123", "12345"],
        region="US",
        body="Hello there",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["index"], r["e164"], r["region"], r["type"]) for r in body["recipients"]] == [
        (0, US_MOBILE, "US", "fixed_line_or_mobile"),
        (1, SE_MOBILE, "SE", "mobile"),
    ]
    assert body["duplicates"] == [
        {"index": 2, "input": "+1 201 555 0123", "e164": US_MOBILE, "first_index": 0}
    ]
    assert body["duplicates_removed"] == 1
    [refused] = body["refused"]
    assert refused["index"] == 3
    assert refused["code"] in {"too_short", "invalid_number", "invalid_length"}
    assert body["sender"] == {"value": "+12025550123", "kind": "number"}
    assert body["encoding"] == "GSM-7"
    assert body["segments"] == 1
    assert body["total_segments"] == 2
    assert body["parts"] == ["Hello there"]


async def test_long_gsm_text_is_split_into_parts_of_153(client: httpx.AsyncClient) -> None:
    text = "x" * 161
    body = (await preview(client, to=SE_MOBILE, body=text)).json()
    assert (body["encoding"], body["segments"], body["units"]) == ("GSM-7", 2, 161)
    assert [len(part) for part in body["parts"]] == [153, 8]
    assert body["units_per_segment"] == 153


async def test_an_emoji_makes_the_message_ucs2_and_counts_two_units(
    client: httpx.AsyncClient,
) -> None:
    body = (await preview(client, to=SE_MOBILE, body="Hej 😀")).json()
    assert (body["encoding"], body["characters"], body["units"]) == ("UCS-2", 5, 6)


async def test_smart_encoding_reports_each_replacement(client: httpx.AsyncClient) -> None:
    plain = (await preview(client, to=SE_MOBILE, body="It’s “fine” — ok")).json()
    assert plain["encoding"] == "UCS-2"
    smart = (
        await preview(client, to=SE_MOBILE, body="It’s “fine” — ok", smart_encoding=True)
    ).json()
    assert smart["encoding"] == "GSM-7"
    assert smart["text"] == 'It\'s "fine" - ok'
    assert [(r["position"], r["original"]) for r in smart["replacements"]] == [
        (2, "’"),
        (5, "“"),
        (10, "”"),
        (12, "—"),
    ]


async def test_the_cost_is_estimated_per_country_with_unknown_ones_listed(
    client: httpx.AsyncClient,
) -> None:
    body = (
        await preview(client, to=[SE_MOBILE, US_MOBILE, "+5511987654321"], body="y" * 200)
    ).json()
    cost = body["cost"]
    assert cost["currency"] == "EUR"
    assert Decimal(cost["total"]) == 2 * (Decimal("0.0450") + Decimal("0.0075"))
    assert cost["complete"] is False
    assert cost["unknown_country_codes"] == [55]


@pytest.mark.parametrize(
    ("message", "status", "code", "field"),
    [
        ({"to": SE_MOBILE, "body": "   "}, 422, "empty_body", "body.body"),
        ({"to": SE_MOBILE, "body": "a\x07b"}, 422, "invalid_character", "body.body"),
        ({"to": SE_MOBILE, "body": "z" * 500}, 422, "too_many_segments", "body.body"),
        ({"to": [], "body": "hi"}, 422, "no_recipients", "body.to"),
        ({"to": [SE_MOBILE] * 1001, "body": "hi"}, 422, "too_many_recipients", "body.to"),
        (
            {"to": SE_MOBILE, "body": "hi", "from": "Stranger"},
            422,
            "sender_not_allowed",
            "body.from",
        ),
        (
            {"to": SE_MOBILE, "body": "hi", "from": "WAY TOO LONG NAME"},
            422,
            "sender_too_long",
            "body.from",
        ),
        ({"to": SE_MOBILE, "body": "hi", "region": "ZZ"}, 422, "invalid_region", "body.region"),
        ({"to": SE_MOBILE, "body": "hi", "colour": "red"}, 422, "validation_error", "body.colour"),
    ],
)
async def test_bad_input_is_a_422_problem_naming_the_field(
    client: httpx.AsyncClient, message: dict[str, object], status: int, code: str, field: str
) -> None:
    response = await client.post("/v1/messages/preview", json=message)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert [error["field"] for error in problem["errors"]] == [field]


async def test_too_many_segments_says_what_it_would_have_cost(client: httpx.AsyncClient) -> None:
    problem = (await preview(client, to=SE_MOBILE, body="z" * 500)).json()
    assert "4" in problem["detail"]
    assert "3" in problem["detail"]


async def test_an_allowed_alphanumeric_sender_is_accepted(client: httpx.AsyncClient) -> None:
    body = (await preview(client, to=SE_MOBILE, body="hi", **{"from": "ACME"})).json()
    assert body["sender"] == {"value": "ACME", "kind": "alphanumeric"}


async def test_preview_stores_nothing(client: httpx.AsyncClient, database_url: str) -> None:
    assert (await preview(client, to=SE_MOBILE, body="hi")).status_code == 200
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM sms_log") == 0
    finally:
        await connection.close()


async def test_a_templated_text_is_counted_and_priced_as_each_recipient_gets_it(
    client: httpx.AsyncClient,
) -> None:
    # Sinch fills in ${name} per recipient: the Swede's text takes 2 parts, the American's 1
    # (GSM-7), and a value outside GSM-7 would make that recipient's text UCS-2.
    body = (
        await preview(
            client,
            to=[SE_MOBILE, US_MOBILE],
            body="Hi ${name}",
            parameters={"name": {SE_MOBILE: "x" * 160, "default": "there"}},
        )
    ).json()
    assert (body["segments"], body["total_segments"]) == (2, 3)
    cost = body["cost"]
    assert Decimal(cost["total"]) == 2 * Decimal("0.0450") + Decimal("0.0075")
    assert {(line["country_code"], line["segments"]) for line in cost["countries"]} == {
        (46, 2),
        (1, 1),
    }


async def test_a_value_that_takes_the_text_past_max_segments_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await preview(
        client, to=[SE_MOBILE], body="Hi ${name}", parameters={"name": {"default": "Ł" * 300}}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "too_many_segments"
    assert "5 parts" in problem["detail"]
