"""End to end: an MMS and a binary message through the gateway on a real socket, its
dispatcher, the simulator and the simulator's delivery reports, to ``delivered``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.test_delivery_reports import running, settled

pytestmark = pytest.mark.asyncio

US = "+12015550123"
MEDIA = {"url": "https://media.example.com/cat.jpg", "message": "Look!", "subject": "Cat"}
BINARY = {"body": "SGVsbG8gYmluYXJ5", "udh": "050003cc0101"}


def in_a_day() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).isoformat()


@pytest.mark.parametrize("mode", ["per_recipient", "summary"])
async def test_mms_is_delivered_and_reported_as_mms(database_url: str, mode: str) -> None:
    async with running(database_url) as setup:
        response = await setup.gateway.post(
            "/v1/messages",
            json={"to": [US], "media": MEDIA, "delivery_report": mode},
            headers={"Idempotency-Key": "mms-1"},
        )
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert (accepted["kind"], accepted["encoding"], accepted["body"]) == (
            "media",
            "MMS",
            "Look!",
        )
        assert accepted["media"] == {**MEDIA, "strict_validation": None}
        message = await settled(setup.gateway, accepted["id"], "delivered")
        replay = await setup.gateway.post(
            "/v1/messages",
            json={"to": [US], "media": MEDIA, "delivery_report": mode},
            headers={"Idempotency-Key": "mms-1"},
        )
        batch = (await setup.simulator.client.get(
            setup.simulator.batch_path(message["sinch_batch_id"])
        )).json()  # fmt: skip
        attempts = await setup.simulator.callback_attempts()
    assert message["kind"] == "media"
    assert [(r["to"], r["status"], r["code"]) for r in message["recipients"]] == [
        (US, "delivered", 0)
    ]
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json()["id"] == accepted["id"]
    assert (batch["type"], batch["body"]) == ("mt_media", MEDIA)
    assert attempts
    assert {attempt["type"] for attempt in attempts} <= {
        "recipient_delivery_report_mms",
        "delivery_report_mms",
    }


async def test_binary_message_is_delivered(database_url: str) -> None:
    async with running(database_url) as setup:
        response = await setup.gateway.post("/v1/messages", json={"to": [US], "binary": BINARY})
        assert response.status_code == 202, response.text
        accepted = response.json()
        message = await settled(setup.gateway, accepted["id"], "delivered")
        listed = await setup.gateway.get("/v1/messages", params={"client_reference": "none"})
        batch = (await setup.simulator.client.get(
            setup.simulator.batch_path(message["sinch_batch_id"])
        )).json()  # fmt: skip
    assert (accepted["kind"], accepted["encoding"], accepted["segments"]) == ("binary", "binary", 1)
    assert accepted["binary"] == BINARY
    assert message["body"] == BINARY["body"]
    assert [(r["to"], r["status"]) for r in message["recipients"]] == [(US, "delivered")]
    assert (batch["type"], batch["body"], batch["udh"]) == (
        "mt_binary",
        BINARY["body"],
        "050003cc0101",
    )
    assert listed.status_code == 200


async def test_scheduled_mms_can_be_cancelled(database_url: str) -> None:
    async with running(database_url) as setup:
        response = await setup.gateway.post(
            "/v1/messages",
            json={"to": [US], "media": MEDIA, "send_at": in_a_day()},
        )
        assert response.status_code == 202, response.text
        cancelled = await setup.gateway.post(f"/v1/messages/{response.json()['id']}/cancel")
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["kind"]) == ("cancelled", "media")
