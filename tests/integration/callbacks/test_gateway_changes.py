"""Status changes the gateway makes itself queue callbacks like delivery reports do: a cancel,
and recording the batch id (``submitted``), including when reports race it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.callbacks.harness import SE, US, event_rows, gateway, report
from tests.integration.webhooks.harness import post_report, recipient_report, record_batch

pytestmark = pytest.mark.asyncio

OPTED = "+12015550124"


def moves(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """(recipient, previous status, status, message status) of each event, in sequence."""
    fields = ("recipient", "previous_status", "status", "message_status")
    return [tuple(row["payload"][field] for field in fields) for row in rows]


async def test_a_cancel_queues_an_event_per_pending_recipient(
    database_url: str, api_key: str
) -> None:
    async with gateway(database_url, api_key) as client:
        assert (await client.post("/v1/opt-outs", json={"msisdn": OPTED})).status_code == 201
        send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        accepted = await client.post(
            "/v1/messages",
            json={
                "to": [SE, US, OPTED],
                "body": "Later",
                "send_at": send_at,
                "callback_url": "https://caller.example/hook",
            },
        )
        assert accepted.status_code == 202, accepted.text
        message_id = accepted.json()["id"]

        cancelled = await client.post(f"/v1/messages/{message_id}/cancel")

    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["status"] == "cancelled"
    # The number that had opted out keeps its final status.
    assert {r["to"]: r["status"] for r in body["recipients"]} == {
        SE: "cancelled",
        US: "cancelled",
        OPTED: "opted_out",
    }
    rows = await event_rows(database_url, message_id)
    assert moves(rows) == [
        (SE, "scheduled", "cancelled", "cancelled"),
        (US, "scheduled", "cancelled", "cancelled"),
    ]
    assert [row["sequence"] for row in rows] == [1, 2]


async def test_an_early_report_records_the_submission_once_and_first(
    database_url: str, api_key: str
) -> None:
    async with gateway(database_url, api_key) as client:
        response = await client.post(
            "/v1/messages",
            json={
                "to": [SE, US],
                "body": "Hi",
                "delivery_report": "per_recipient",
                "callback_url": "https://caller.example/hook",
            },
        )
        message_id = response.json()["id"]
        batch = f"BATCH{uuid.uuid4().hex[:20].upper()}"
        # Sinch's report outran the dispatcher's record of the batch id (client_reference).
        assert await report(client, batch, message_id, "Delivered", 0, "2026-11-26T10:02:42Z") == (
            "applied"
        )
        # Final by now for SE; the message already carries what the dispatcher would record.
        early = (await client.get(f"/v1/messages/{message_id}")).json()
        await record_batch(database_url, message_id, batch)
        late = (await client.get(f"/v1/messages/{message_id}")).json()

    assert early["sinch_batch_id"] == batch
    assert early["submitted_at"] is not None
    assert late["submitted_at"] == early["submitted_at"]
    kinds = [event["kind"] for event in late["events"]]
    assert kinds == ["accepted", "submitted", "delivery_report"]
    assert late["events"][1]["detail"]["source"] == "delivery_report"
    assert moves(await event_rows(database_url, message_id)) == [
        (SE, "queued", "submitted", "submitted"),
        (US, "queued", "submitted", "submitted"),
        (SE, "submitted", "delivered", "submitted"),
    ]


async def test_recording_the_batch_while_reports_arrive_keeps_one_sequence(
    database_url: str, api_key: str
) -> None:
    recipients = [f"+4670123{n:04d}" for n in range(12)]
    async with gateway(database_url, api_key) as client:
        response = await client.post(
            "/v1/messages",
            json={
                "to": recipients,
                "body": "Hi",
                "delivery_report": "per_recipient",
                "callback_url": "https://caller.example/hook",
            },
        )
        message_id = response.json()["id"]
        batch = f"BATCH{uuid.uuid4().hex[:20].upper()}"
        # Half match by client_reference (locking the message as record_batch does), half
        # only by batch id (kept until it is recorded).
        reports = [
            post_report(
                client,
                recipient_report(
                    batch,
                    msisdn,
                    "Delivered",
                    0,
                    "2026-11-26T10:02:42Z",
                    client_reference=message_id if index % 2 else None,
                ),
            )
            for index, msisdn in enumerate(recipients)
        ]
        answers = await asyncio.gather(record_batch(database_url, message_id, batch), *reports)
        states = (await client.get(f"/v1/messages/{message_id}")).json()["recipients"]

    assert all(answer.status_code == 200 for answer in answers[1:])
    assert {state["status"] for state in states} == {"delivered"}
    rows = await event_rows(database_url, message_id)
    assert [row["sequence"] for row in rows] == list(range(1, len(rows) + 1))
    for msisdn in recipients:
        # Whichever came first records the submission: each chain passes through it once.
        chain = [m[1:3] for m in moves(rows) if m[0] == msisdn]
        assert chain == [("queued", "submitted"), ("submitted", "delivered")]
