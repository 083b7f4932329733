"""POST/GET /v1/messages and cancel: durable accept, tenant isolation, idempotency, cursors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from smsgateway.services.api_keys import create_api_key
from smsgateway.simulator import SimulatorConfig
from smsgateway.store import outbox
from tests.support.asgi import lifespan_client
from tests.support.processes import free_port
from tests.support.settings import make_settings
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, running_simulator

pytestmark = pytest.mark.asyncio

SE_MOBILE = "+46701234567"
US_SENDER = "+12025550123"
US_MOBILE = "+12015550123"


@pytest_asyncio.fixture
async def keys(database_url: str) -> dict[str, str]:
    pool = await asyncpg.create_pool(database_url, min_size=0, max_size=1)
    try:
        return {
            "acme": (await create_api_key(pool, name="acme-1", tenant="acme")).key,
            "acme-2": (await create_api_key(pool, name="acme-2", tenant="acme")).key,
            "globex": (await create_api_key(pool, name="globex", tenant="globex")).key,
        }
    finally:
        await pool.close()


@pytest_asyncio.fixture
async def client(database_url: str, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, SINCH_NUMBER="+12025550123")
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = keys["acme"]
        yield client


async def rows(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def test_an_accepted_message_is_stored_with_recipients_and_outbox_entry(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post(
        "/v1/messages",
        json={"to": [SE_MOBILE, US_MOBILE], "body": "Hello", "client_reference": "order-1"},
    )
    assert response.status_code == 202, response.text
    message = response.json()
    assert response.headers["location"] == f"/v1/messages/{message['id']}"
    assert message["status"] == "queued"
    assert [r["to"] for r in message["recipients"]] == [SE_MOBILE, US_MOBILE]
    assert (message["encoding"], message["segments"], message["sender"]) == (
        "GSM-7",
        1,
        "+12025550123",
    )
    [log] = await rows(database_url, "SELECT * FROM sms_log")
    assert str(log["id"]) == message["id"]
    assert log["tenant"] == "acme"
    assert log["client_reference"] == "order-1"
    outbox = await rows(database_url, "SELECT message_id FROM outbox")
    assert [str(row["message_id"]) for row in outbox] == [message["id"]]
    recipients = await rows(database_url, "SELECT msisdn FROM sms_recipient ORDER BY position")
    assert [row["msisdn"] for row in recipients] == [SE_MOBILE, US_MOBILE]

    fetched = (await client.get(f"/v1/messages/{message['id']}")).json()
    assert fetched["id"] == message["id"]
    assert [event["kind"] for event in fetched["events"]] == ["accepted"]


async def test_any_refused_recipient_refuses_the_message_naming_each_index(
    client: httpx.AsyncClient, database_url: str
) -> None:
    response = await client.post(
        "/v1/messages", json={"to": [SE_MOBILE, "12345", "+999"], "body": "Hello"}
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "invalid_recipients"
    assert [error["field"] for error in problem["errors"]] == ["body.to.1", "body.to.2"]
    assert await rows(database_url, "SELECT id FROM sms_log") == []


async def test_concurrent_accepts_are_all_stored(
    client: httpx.AsyncClient, database_url: str
) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/messages", json={"to": SE_MOBILE, "body": f"n{i}"}) for i in range(60))
    )
    assert {response.status_code for response in responses} == {202}
    ids = {response.json()["id"] for response in responses}
    stored = await rows(database_url, "SELECT id FROM sms_log")
    assert {str(row["id"]) for row in stored} == ids
    assert len(await rows(database_url, "SELECT message_id FROM outbox")) == 60


async def test_another_tenant_sees_a_404(client: httpx.AsyncClient, keys: dict[str, str]) -> None:
    message = (await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "x"})).json()
    same_tenant = await client.get(
        f"/v1/messages/{message['id']}", headers={"X-API-Key": keys["acme-2"]}
    )
    other_tenant = await client.get(
        f"/v1/messages/{message['id']}", headers={"X-API-Key": keys["globex"]}
    )
    assert same_tenant.status_code == 200
    assert other_tenant.status_code == 404
    assert other_tenant.json()["code"] == "message_not_found"
    cancel = await client.post(
        f"/v1/messages/{message['id']}/cancel", headers={"X-API-Key": keys["globex"]}
    )
    assert cancel.status_code == 404


async def test_idempotency_key_replays_the_first_answer(
    client: httpx.AsyncClient, database_url: str
) -> None:
    body = {"to": SE_MOBILE, "body": "once"}
    headers = {"Idempotency-Key": "order-77"}
    first = await client.post("/v1/messages", json=body, headers=headers)
    second = await client.post("/v1/messages", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert len(await rows(database_url, "SELECT id FROM sms_log")) == 1

    reused = await client.post(
        "/v1/messages", json={"to": SE_MOBILE, "body": "different"}, headers=headers
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"


async def test_idempotency_keys_are_scoped_per_api_key(
    client: httpx.AsyncClient, keys: dict[str, str], database_url: str
) -> None:
    body = {"to": SE_MOBILE, "body": "same"}
    first = await client.post("/v1/messages", json=body, headers={"Idempotency-Key": "k"})
    other = await client.post(
        "/v1/messages", json=body, headers={"Idempotency-Key": "k", "X-API-Key": keys["acme-2"]}
    )
    assert first.json()["id"] != other.json()["id"]
    assert len(await rows(database_url, "SELECT id FROM sms_log")) == 2


async def test_concurrent_requests_with_one_key_make_one_message(
    client: httpx.AsyncClient, database_url: str
) -> None:
    responses = await asyncio.gather(
        *(
            client.post(
                "/v1/messages",
                json={"to": SE_MOBILE, "body": "race"},
                headers={"Idempotency-Key": "race-1"},
            )
            for _ in range(20)
        )
    )
    assert {response.status_code for response in responses} == {202}
    assert len({response.json()["id"] for response in responses}) == 1
    assert len(await rows(database_url, "SELECT id FROM sms_log")) == 1
    replays = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replays) == 19


async def test_scheduled_messages_wait_and_can_be_cancelled(
    client: httpx.AsyncClient, database_url: str
) -> None:
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    message = (
        await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "l8r", "send_at": send_at})
    ).json()
    assert message["status"] == "scheduled"
    [entry] = await rows(database_url, "SELECT due_at FROM outbox")
    assert entry["due_at"] == datetime.fromisoformat(send_at)

    cancelled = await client.post(f"/v1/messages/{message['id']}/cancel")
    assert cancelled.status_code == 200
    body = cancelled.json()
    assert body["status"] == "cancelled"
    assert {r["status"] for r in body["recipients"]} == {"cancelled"}
    assert [e["kind"] for e in body["events"]] == ["accepted", "cancelled"]
    assert await rows(database_url, "SELECT * FROM outbox") == []

    again = await client.post(f"/v1/messages/{message['id']}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "not_cancellable"


async def test_a_message_claimed_by_a_dispatcher_is_not_cancellable(
    client: httpx.AsyncClient, database_url: str
) -> None:
    message = (await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "go"})).json()
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "UPDATE outbox SET claim_token = gen_random_uuid(), claimed_by = 'w1',"
            " due_at = now() + interval '30 seconds'"
        )
    finally:
        await connection.close()
    response = await client.post(f"/v1/messages/{message['id']}/cancel")
    assert response.status_code == 409
    assert "sending" in response.json()["detail"]


def later(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ({"expire_at": "2020-01-01T00:00:00Z"}, "body.expire_at"),
        ({"send_at": later(days=2), "expire_at": later(days=1)}, "body.expire_at"),
        ({"send_at": later(days=1), "expire_at": later(days=5)}, "body.expire_at"),
        ({"send_at": later(days=400)}, "body.send_at"),
        ({"send_at": "2030-01-01T00:00:00"}, "body.send_at"),
    ],
)
async def test_impossible_schedules_are_refused(
    client: httpx.AsyncClient, schedule: dict[str, str], field: str
) -> None:
    response = await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "x", **schedule})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_listing_is_newest_first_filtered_and_paged_by_cursor(
    client: httpx.AsyncClient, keys: dict[str, str]
) -> None:
    ids = []
    for i in range(5):
        reference = "even" if i % 2 == 0 else "odd"
        response = await client.post(
            "/v1/messages", json={"to": SE_MOBILE, "body": f"m{i}", "client_reference": reference}
        )
        ids.append(response.json()["id"])
    await client.post(
        "/v1/messages",
        json={"to": US_MOBILE, "body": "theirs"},
        headers={"X-API-Key": keys["globex"]},
    )

    seen = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/v1/messages", params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))

    odd = (await client.get("/v1/messages", params={"client_reference": "odd"})).json()
    assert [item["id"] for item in odd["items"]] == [ids[3], ids[1]]
    by_recipient = (await client.get("/v1/messages", params={"recipient": US_MOBILE})).json()
    assert by_recipient["items"] == []
    bad = await client.get("/v1/messages", params={"cursor": "garbage!"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_cursor"


async def _lapse_first_try(database_url: str, *message_ids: str) -> None:
    """A worker claimed these and died: its Sinch call may or may not have gone through."""
    connection = await asyncpg.connect(database_url)
    try:
        await outbox.claim_due(connection, 100, 60.0, "test-worker")
        await connection.execute(
            "UPDATE outbox SET due_at = now() - interval '1 second'"
            " WHERE message_id = ANY($1::uuid[])",
            [UUID(message_id) for message_id in message_ids],
        )
    finally:
        await connection.close()


async def test_cancel_after_an_unknown_outcome_asks_sinch_first(
    database_url: str, keys: dict[str, str]
) -> None:
    config = SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    async with running_simulator(config) as sim:
        settings = make_settings(
            database_url,
            SINCH_BASE_URL=sim.base_url,
            SINCH_SERVICE_PLAN_ID=sim.plan_id,
            SINCH_API_TOKEN=sim.token,
            SINCH_NUMBER=US_SENDER,
            PUBLIC_BASE_URL="https://sms.example.com",
        )
        async with lifespan_client(create_app(settings)) as client:
            client.headers["X-API-Key"] = keys["acme"]
            reached = (
                await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "a"})
            ).json()
            lost = (await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "b"})).json()
            await _lapse_first_try(database_url, reached["id"], lost["id"])
            # The first try of one reached Sinch before the worker died; the other's did not.
            created = await sim.client.post(
                sim.batches_path,
                json={"to": [SE_MOBILE], "body": "a", "client_reference": reached["id"]},
            )
            batch_id = created.json()["id"]

            refused = await client.post(f"/v1/messages/{reached['id']}/cancel")
            cancelled = await client.post(f"/v1/messages/{lost['id']}/cancel")
        assert await sim.batch_count(lost["id"]) == 0

    assert refused.status_code == 409
    assert refused.json()["code"] == "not_cancellable"
    assert refused.json()["batch_id"] == batch_id
    # Handed straight back to the dispatcher, whose lookup records the batch.
    [entry] = await rows(
        database_url,
        "SELECT claim_token, due_at <= now() AS due, attempts FROM outbox WHERE message_id = $1",
        UUID(reached["id"]),
    )
    assert (entry["claim_token"], entry["due"], entry["attempts"]) == (None, True, 1)

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (
        await rows(database_url, "SELECT 1 FROM outbox WHERE message_id = $1", UUID(lost["id"]))
        == []
    )
    [event] = await rows(
        database_url,
        "SELECT detail FROM sms_event WHERE message_id = $1 AND kind = 'cancelled'",
        UUID(lost["id"]),
    )
    assert json.loads(event["detail"]) == {"looked_up_at_sinch": True}


async def test_cancel_changes_nothing_when_sinch_cannot_be_asked(
    database_url: str, keys: dict[str, str]
) -> None:
    settings = make_settings(
        database_url,
        SINCH_BASE_URL=f"http://127.0.0.1:{free_port()}",  # nobody listens
        SINCH_SERVICE_PLAN_ID="plan",
        SINCH_API_TOKEN="token",
        SINCH_NUMBER=US_SENDER,
        PUBLIC_BASE_URL="https://sms.example.com",
    )
    async with lifespan_client(create_app(settings)) as client:
        client.headers["X-API-Key"] = keys["acme"]
        accepted = await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "a"})
        assert accepted.status_code == 202, accepted.text
        message = accepted.json()
        await _lapse_first_try(database_url, message["id"])
        answer = await client.post(f"/v1/messages/{message['id']}/cancel")
        after = (await client.get(f"/v1/messages/{message['id']}")).json()

    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "sinch_unavailable"
    assert answer.headers["retry-after"] == "5"
    assert after["status"] == "queued"
    [entry] = await rows(
        database_url,
        "SELECT claim_token, due_at <= now() AS due FROM outbox WHERE message_id = $1",
        UUID(message["id"]),
    )
    assert (entry["claim_token"], entry["due"]) == (None, True)


async def test_a_message_given_back_untried_is_cancelled_without_asking_sinch(
    client: httpx.AsyncClient, database_url: str
) -> None:
    released = (await client.post("/v1/messages", json={"to": SE_MOBILE, "body": "b"})).json()
    connection = await asyncpg.connect(database_url)
    try:
        # A graceful stop gives claims back with their attempt uncounted.
        await outbox.release(connection, await outbox.claim_due(connection, 10, 60.0, "w"))
    finally:
        await connection.close()

    cancelled = await client.post(f"/v1/messages/{released['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("poison", "field", "code"),
    [
        ({"client_reference": "ref\x00"}, "body.client_reference", "invalid_character"),
        ({"client_reference": "ref\ud800"}, "body.client_reference", "invalid_character"),
        ({"from": "ACME\x00"}, "body.from", "invalid_character"),
        ({"send_at": "0001-01-01T00:00:00+01:00"}, "body.send_at", "date_out_of_range"),
        ({"expire_at": "9999-12-31T23:59:59-01:00"}, "body.expire_at", "date_out_of_range"),
    ],
)
async def test_one_unstorable_request_among_many_fails_alone_with_a_422(
    client: httpx.AsyncClient, poison: dict[str, str], field: str, code: str
) -> None:
    def send(n: int) -> Any:
        payload: dict[str, object] = {"to": SE_MOBILE, "body": f"n{n}", "client_reference": f"r{n}"}
        if n == 17:
            payload |= poison
        # Written by hand: a lone surrogate is valid in a JSON escape, not in UTF-8.
        return client.post(
            "/v1/messages",
            content=json.dumps(payload).encode(),
            headers={"content-type": "application/json"},
        )

    answers = await asyncio.gather(*(send(n) for n in range(60)))

    assert [n for n, answer in enumerate(answers) if answer.status_code != 202] == [17]
    problem = answers[17].json()
    assert answers[17].status_code == 422
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [(field, code)]
