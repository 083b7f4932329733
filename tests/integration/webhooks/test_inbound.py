"""POST /webhooks/sinch/inbound, opt-out keywords, and the operators' endpoints."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from prometheus_client import REGISTRY

from smsgateway.store.dispatch import load_outgoing
from tests.integration.webhooks.harness import INBOUND_PATH, connect, fetch, send_message

pytestmark = pytest.mark.asyncio

SUBSCRIBER = "+12015550123"
OTHER = "+46701234567"
# The number the gateway sends from (SINCH_NUMBER in conftest): a STOP applies to it.
OUR_NUMBER = "+12025550123"


def mo_text(
    body: str,
    *,
    sender: str = SUBSCRIBER,
    at: str = "2026-11-26T10:05:00.000Z",
    inbound_id: str | None = None,
) -> dict[str, object]:
    return {
        "type": "mo_text",
        "id": inbound_id or uuid.uuid4().hex[:26].upper(),
        "from": sender,
        "to": OUR_NUMBER,
        "body": body,
        "received_at": at,
        "operator_id": "310260",
        "sent_at": at,
    }


async def inbound(gateway: httpx.AsyncClient, payload: dict[str, object]) -> dict[str, object]:
    response = await gateway.post(INBOUND_PATH, json=payload)
    assert response.status_code == 200, response.text
    document = response.json()
    assert isinstance(document, dict)
    return document


async def outgoing_recipients(database_url: str, message_id: str) -> tuple[str, ...]:
    connection = await connect(database_url)
    try:
        message = await load_outgoing(connection, uuid.UUID(message_id))
    finally:
        await connection.close()
    assert message is not None
    return message.recipients


async def test_stop_opts_the_sender_out_of_later_messages_from_that_number(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    counted = REGISTRY.get_sample_value("smsgw_recipients_opted_out_total") or 0.0
    receipt = await inbound(gateway, mo_text(" stop \n", sender=SUBSCRIBER.removeprefix("+")))
    assert (receipt["keyword"], receipt["opted_out"]) == ("opt_out", True)
    response = await gateway.post("/v1/messages", json={"to": [SUBSCRIBER, OTHER], "body": "Hi"})
    assert response.status_code == 202
    assert {r["to"]: r["status"] for r in response.json()["recipients"]} == {
        SUBSCRIBER: "opted_out",
        OTHER: "queued",
    }
    message_id = response.json()["id"]
    stored = (await gateway.get(f"/v1/messages/{message_id}")).json()
    assert {r["to"]: r["status"] for r in stored["recipients"]} == {
        SUBSCRIBER: "opted_out",
        OTHER: "queued",
    }
    # What the dispatcher would hand to Sinch.
    assert await outgoing_recipients(database_url, message_id) == (OTHER,)
    assert REGISTRY.get_sample_value("smsgw_recipients_opted_out_total") == counted + 1


async def test_an_idempotent_accept_marks_the_opted_out_recipient_and_replays_it(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    await inbound(gateway, mo_text("STOP"))
    body = {"to": [OTHER, SUBSCRIBER], "body": "Hi"}
    headers = {"Idempotency-Key": "opt-out-once"}
    first = await gateway.post("/v1/messages", json=body, headers=headers)
    again = await gateway.post("/v1/messages", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    for answer in (first, again):
        assert {r["to"]: r["status"] for r in answer.json()["recipients"]} == {
            SUBSCRIBER: "opted_out",
            OTHER: "queued",
        }
    assert len(await fetch(database_url, "SELECT * FROM sms_log")) == 1
    assert await outgoing_recipients(database_url, first.json()["id"]) == (OTHER,)


async def test_concurrent_accepts_share_writes_and_only_the_opted_out_are_marked(
    gateway: httpx.AsyncClient,
) -> None:
    """One write carries many accepts; the one with an opted-out recipient is written again
    with it marked, and the others are stored as they were."""
    await inbound(gateway, mo_text("STOP"))
    targets = [[OTHER], [SUBSCRIBER, OTHER], [OTHER], [SUBSCRIBER]] * 5
    answers = await asyncio.gather(
        *(gateway.post("/v1/messages", json={"to": to, "body": "Hi"}) for to in targets)
    )
    for to, answer in zip(targets, answers, strict=True):
        assert answer.status_code == 202, answer.text
        expected = {n: "opted_out" if n == SUBSCRIBER else "queued" for n in to}
        assert {r["to"]: r["status"] for r in answer.json()["recipients"]} == expected
        stored = (await gateway.get(f"/v1/messages/{answer.json()['id']}")).json()
        assert stored["status"] == ("rejected" if to == [SUBSCRIBER] else "queued")


async def test_a_message_only_to_opted_out_numbers_is_rejected_and_never_queued(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    await inbound(gateway, mo_text("UNSUBSCRIBE"))
    message_id = await send_message(gateway, [SUBSCRIBER])
    stored = (await gateway.get(f"/v1/messages/{message_id}")).json()
    assert stored["status"] == "rejected"
    assert [r["status"] for r in stored["recipients"]] == ["opted_out"]
    assert await fetch(database_url, "SELECT * FROM outbox") == []


async def test_start_opts_back_in(gateway: httpx.AsyncClient, database_url: str) -> None:
    await inbound(gateway, mo_text("STOP", at="2026-11-26T10:05:00Z"))
    receipt = await inbound(gateway, mo_text("Start", at="2026-11-26T10:06:00Z"))
    assert (receipt["keyword"], receipt["opted_out"]) == ("opt_in", False)
    message_id = await send_message(gateway, [SUBSCRIBER])
    assert await outgoing_recipients(database_url, message_id) == (SUBSCRIBER,)
    assert (await gateway.get(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404


async def test_a_stop_older_than_the_start_in_force_changes_nothing(
    gateway: httpx.AsyncClient,
) -> None:
    await inbound(gateway, mo_text("START", at="2026-11-26T10:06:00Z"))
    late = await inbound(gateway, mo_text("STOP", at="2026-11-26T10:05:00Z"))
    assert late["opted_out"] is None
    assert (await gateway.get(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404


@pytest.mark.parametrize("body", ["please stop", "STOP.", "stop it", "HELP"])
async def test_only_a_whole_body_keyword_opts_out(gateway: httpx.AsyncClient, body: str) -> None:
    await inbound(gateway, mo_text(body))
    assert (await gateway.get(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404


async def test_help_is_recorded(gateway: httpx.AsyncClient) -> None:
    assert (await inbound(gateway, mo_text(" help ")))["keyword"] == "help"
    page = (await gateway.get("/v1/inbound-messages", params={"keyword": "help"})).json()
    assert [item["body"] for item in page["items"]] == [" help "]


async def test_the_same_sinch_id_is_stored_and_acted_on_once(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    payload = mo_text("STOP", inbound_id="01FC66621VHDBN119Z8PMV1QPU")
    first = await inbound(gateway, payload)
    again = await inbound(gateway, payload)
    assert first["duplicate"] is False
    assert again == {
        "kind": "inbound",
        "id": None,
        "duplicate": True,
        "keyword": None,
        "opted_out": None,
    }
    assert len(await fetch(database_url, "SELECT * FROM inbound_message")) == 1


async def test_binary_media_and_unknown_inbounds_are_stored(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    binary = {**mo_text("U1RPUA=="), "type": "mo_binary", "udh": "050003010201"}
    media = {
        "type": "mo_media",
        "id": "01MEDIA0000000000000000000",
        "from": SUBSCRIBER,
        "to": OUR_NUMBER,
        "body": {"subject": "hi", "media": [{"url": "https://example.com/a.jpg"}]},
        "received_at": "2026-11-26T10:05:00Z",
    }
    strange = {"type": "mo_hologram", "from": SUBSCRIBER}
    for payload in (binary, media, strange):
        assert (await inbound(gateway, payload))["duplicate"] is False
    rows = await fetch(database_url, "SELECT type, body, payload FROM inbound_message")
    assert sorted(row["type"] for row in rows) == ["mo_binary", "mo_hologram", "mo_media"]
    # A binary "STOP" is not a keyword: only text bodies are read.
    assert (await gateway.get(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404
    assert {row["type"]: row["payload"] for row in rows}["mo_media"] == media
    # Callers see a closed set: a type the gateway does not know is `unknown`.
    listed = (await gateway.get("/v1/inbound-messages")).json()["items"]
    assert sorted(item["type"] for item in listed) == ["mo_binary", "mo_media", "unknown"]


async def test_inbound_messages_are_listed_newest_first_with_filters_and_a_cursor(
    gateway: httpx.AsyncClient,
) -> None:
    for minute in range(5):
        await inbound(gateway, mo_text(f"hello {minute}", at=f"2026-11-26T10:0{minute}:00Z"))
    await inbound(gateway, mo_text("other", sender=OTHER, at="2026-11-26T11:00:00Z"))
    bodies: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"from": SUBSCRIBER, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await gateway.get("/v1/inbound-messages", params=params)).json()
        bodies += [item["body"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert bodies == [f"hello {minute}" for minute in reversed(range(5))]
    ranged = await gateway.get(
        "/v1/inbound-messages",
        params={"received_from": "2026-11-26T10:59:00Z", "received_to": "2026-11-26T12:00:00Z"},
    )
    assert [item["sender"] for item in ranged.json()["items"]] == [OTHER]
    bad = await gateway.get("/v1/inbound-messages", params={"cursor": "nonsense"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"


async def test_operators_add_list_read_and_remove_opt_outs(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    created = await gateway.post("/v1/opt-outs", json={"msisdn": OTHER, "note": "asked by phone"})
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/opt-outs/{OTHER}"
    assert created.json()["source"] == "api"
    await inbound(gateway, mo_text("QUIT"))
    listed = (await gateway.get("/v1/opt-outs")).json()
    assert {item["msisdn"] for item in listed["items"]} == {OTHER, SUBSCRIBER}
    first = (await gateway.get("/v1/opt-outs", params={"limit": 1})).json()
    second = (await gateway.get("/v1/opt-outs", params={"cursor": first["next"]})).json()
    assert len(first["items"]) == len(second["items"]) == 1
    assert first["items"][0]["msisdn"] != second["items"][0]["msisdn"]
    # A STOP is kept against the number it was sent to.
    assert (await gateway.get(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404
    one = (await gateway.get(f"/v1/opt-outs/{SUBSCRIBER}", params={"sender": OUR_NUMBER})).json()
    assert (one["source"], one["keyword"], one["sender"]) == ("inbound", "QUIT", OUR_NUMBER)
    assert one["inbound_id"] is not None
    message_id = await send_message(gateway, [OTHER, SUBSCRIBER])
    assert await outgoing_recipients(database_url, message_id) == ()
    assert (await gateway.delete(f"/v1/opt-outs/{OTHER}")).status_code == 204
    assert (await gateway.delete(f"/v1/opt-outs/{OTHER}")).status_code == 404
    assert [i["msisdn"] for i in (await gateway.get("/v1/opt-outs")).json()["items"]] == [
        SUBSCRIBER
    ]


async def test_opt_out_numbers_must_be_valid(gateway: httpx.AsyncClient) -> None:
    assert (await gateway.post("/v1/opt-outs", json={"msisdn": "12"})).status_code == 422
    response = await gateway.get("/v1/opt-outs/not-a-number")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_phone_number"


async def test_the_operator_endpoints_need_an_api_key(gateway: httpx.AsyncClient) -> None:
    for path in ("/v1/inbound-messages", "/v1/opt-outs", f"/v1/opt-outs/{SUBSCRIBER}"):
        response = await gateway.get(path, headers={"X-API-Key": ""})
        assert response.status_code == 401, path
