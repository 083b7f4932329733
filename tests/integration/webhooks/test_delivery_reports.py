"""POST /webhooks/sinch/delivery-reports: every report type and mode, as Sinch sends them."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from prometheus_client import REGISTRY

from smsgateway.app import create_app
from tests.integration.webhooks.harness import (
    DLR_PATH,
    batch_report,
    fetch,
    message,
    post_report,
    recipient_report,
    recipient_states,
    record_batch,
    report_events,
    send_message,
)
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

SE = "+46701234567"
US = "+12015550123"
BATCH = "01FC66621XXXXX119Z8PMV1QPQ"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def sent(gateway: httpx.AsyncClient, database_url: str, *to: str, batch: str = BATCH) -> str:
    message_id = await send_message(gateway, to or (SE,), delivery_report="per_recipient")
    await record_batch(database_url, message_id, batch)
    return message_id


async def test_per_recipient_reports_walk_a_recipient_to_delivered(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await sent(gateway, database_url, SE)
    steps = [
        ("Queued", 400, "2026-11-26T10:02:40.100Z"),
        ("Dispatched", 401, "2026-11-26T10:02:41.100Z"),
        ("Delivered", 0, "2026-11-26T10:02:42.148Z"),
    ]
    outcomes = []
    for status, code, at in steps:
        response = await post_report(
            gateway, recipient_report(BATCH, SE, status, code, at, client_reference=message_id)
        )
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["outcome"])
    assert outcomes == ["applied", "applied", "applied"]
    document = await message(gateway, message_id)
    assert document["status"] == "delivered"
    [recipient] = document["recipients"]  # type: ignore[misc]
    assert recipient["status"] == "delivered"
    assert recipient["code"] == 0
    assert recipient["status_at"].startswith("2026-11-26T10:02:42.148")
    events = report_events(document)
    assert [e["status"] for e in events] == ["submitted", "dispatched", "delivered"]
    assert [e["code"] for e in events] == [400, 401, 0]
    rows = await fetch(
        database_url,
        "SELECT operator, operator_status_at FROM sms_recipient WHERE msisdn = $1",
        SE,
    )
    assert rows[0]["operator"] == "310260"
    assert rows[0]["operator_status_at"] is not None


async def test_a_recipient_without_its_plus_is_matched(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await sent(gateway, database_url, SE, US)
    report = recipient_report(BATCH, SE.removeprefix("+"), "Failed", 402, "2026-11-26T10:00:00Z")
    assert (await post_report(gateway, report)).json()["outcome"] == "applied"
    document = await message(gateway, message_id)
    assert recipient_states(document) == {SE: "failed", US: "submitted"}
    assert document["status"] == "submitted"


async def test_a_duplicate_report_changes_nothing(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await sent(gateway, database_url, SE)
    report = recipient_report(BATCH, SE, "Delivered", 0, "2026-11-26T10:02:42.148Z")
    first = await post_report(gateway, report)
    before = await message(gateway, message_id)
    again = await post_report(gateway, report)
    assert (first.json()["outcome"], again.json()["outcome"]) == ("applied", "duplicate")
    after = await message(gateway, message_id)
    assert after["recipients"] == before["recipients"]
    assert after["events"] == before["events"]
    assert after["updated_at"] == before["updated_at"]


async def test_an_intermediate_status_never_overwrites_a_final_one(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await sent(gateway, database_url, SE)
    refused = metric("smsgw_delivery_report_regressions_refused_total", reason="final_already")
    await post_report(gateway, recipient_report(BATCH, SE, "Delivered", 0, "2026-11-26T10:00:05Z"))
    late = await post_report(
        gateway, recipient_report(BATCH, SE, "Dispatched", 401, "2026-11-26T10:00:09Z")
    )
    assert late.status_code == 200
    assert late.json()["outcome"] == "unchanged"
    document = await message(gateway, message_id)
    assert document["status"] == "delivered"
    assert recipient_states(document) == {SE: "delivered"}
    # The refused report is kept as an event, saying why it changed nothing.
    assert report_events(document)[-1]["detail"]["refused"] == {SE: "final_already"}
    assert (
        metric("smsgw_delivery_report_regressions_refused_total", reason="final_already")
        == refused + 1
    )


@pytest.mark.parametrize("order", ["in_order", "reversed"])
async def test_finals_out_of_order_resolve_to_the_one_sinch_stamped_last(
    gateway: httpx.AsyncClient, database_url: str, order: str
) -> None:
    message_id = await sent(gateway, database_url, SE)
    earlier = recipient_report(BATCH, SE, "Unknown", 0, "2026-11-26T10:00:01Z")
    later = recipient_report(BATCH, SE, "Delivered", 0, "2026-11-26T10:00:07Z")
    reports = [earlier, later] if order == "in_order" else [later, earlier]
    for report in reports:
        assert (await post_report(gateway, report)).status_code == 200
    document = await message(gateway, message_id)
    assert recipient_states(document) == {SE: "delivered"}
    assert document["status"] == "delivered"


async def test_a_full_batch_report_sets_each_recipient(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await sent(gateway, database_url, SE, US)
    report = batch_report(
        BATCH,
        [("Delivered", 0, [SE]), ("Failed", 402, [US.removeprefix("+")])],
        full=True,
        client_reference=message_id,
    )
    response = await post_report(gateway, report)
    assert response.json() == {
        "kind": "delivery_report",
        "outcome": "applied",
        "message_id": message_id,
        "changed": 2,
    }
    document = await message(gateway, message_id)
    assert recipient_states(document) == {SE: "delivered", US: "failed"}
    assert document["status"] == "partially_delivered"
    [event] = report_events(document)
    assert event["recipient"] is None
    assert event["detail"]["report"] == report


async def test_a_summary_with_one_status_applies_it_to_every_recipient(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await sent(gateway, database_url, SE, US)
    report = batch_report(BATCH, [("Delivered", 0, [SE, US])], full=False)
    assert (await post_report(gateway, report)).json()["changed"] == 2
    document = await message(gateway, message_id)
    assert recipient_states(document) == {SE: "delivered", US: "delivered"}
    assert document["status"] == "delivered"


async def test_a_mixed_summary_derives_the_message_status_only(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await sent(gateway, database_url, SE, US)
    report = batch_report(BATCH, [("Delivered", 0, [SE]), ("Failed", 402, [US])], full=False)
    assert (await post_report(gateway, report)).json()["outcome"] == "applied"
    document = await message(gateway, message_id)
    # Nobody can tell which recipient failed: they keep their status, the message says it.
    assert recipient_states(document) == {SE: "submitted", US: "submitted"}
    assert document["status"] == "partially_delivered"
    assert report_events(document)[0]["detail"]["report"]["statuses"][1]["count"] == 1


@pytest.mark.parametrize(
    "kind", ["recipient_delivery_report_mms", "delivery_report_mms"], ids=["recipient", "batch"]
)
async def test_mms_reports_are_accepted(
    gateway: httpx.AsyncClient, database_url: str, kind: str
) -> None:
    message_id = await sent(gateway, database_url, SE)
    if kind.startswith("recipient"):
        report = recipient_report(BATCH, SE, "Delivered", 0, "2026-11-26T10:00:00Z", kind=kind)
    else:
        report = batch_report(BATCH, [("Delivered", 0, [SE])], full=True, kind=kind)
    response = await post_report(gateway, report)
    assert response.status_code == 200
    assert response.json()["outcome"] == "applied"
    assert (await message(gateway, message_id))["status"] == "delivered"


async def test_unknown_fields_are_kept_in_the_stored_event(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await sent(gateway, database_url, SE)
    report = recipient_report(
        BATCH, SE, "Delivered", 0, "2026-11-26T10:00:00Z", new_sinch_field={"x": [1, 2]}
    )
    assert (await post_report(gateway, report)).status_code == 200
    [event] = report_events(await message(gateway, message_id))
    assert event["detail"]["report"]["new_sinch_field"] == {"x": [1, 2]}


async def test_an_early_report_is_matched_by_client_reference(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await send_message(gateway, [SE])
    early = recipient_report(
        BATCH, SE, "Dispatched", 401, "2026-11-26T10:00:00Z", client_reference=message_id
    )
    assert (await post_report(gateway, early)).json()["outcome"] == "applied"
    await record_batch(database_url, message_id, BATCH)
    document = await message(gateway, message_id)
    assert recipient_states(document) == {SE: "dispatched"}
    assert document["status"] == "submitted"
    assert document["sinch_batch_id"] == BATCH


async def test_an_early_report_without_reference_is_applied_when_the_batch_id_lands(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    message_id = await send_message(gateway, [SE, US])
    early = [
        recipient_report(BATCH, SE, "Delivered", 0, "2026-11-26T10:00:03Z"),
        recipient_report(BATCH, US, "Dispatched", 401, "2026-11-26T10:00:01Z"),
    ]
    for report in early:
        assert (await post_report(gateway, report)).json()["outcome"] == "unknown_batch"
    assert recipient_states(await message(gateway, message_id)) == {SE: "queued", US: "queued"}
    await record_batch(database_url, message_id, BATCH)
    document = await message(gateway, message_id)
    assert recipient_states(document) == {SE: "delivered", US: "dispatched"}
    assert document["status"] == "submitted"
    events = report_events(document)
    assert len(events) == 2
    assert all(event["detail"]["applied_late"] for event in events)
    assert await fetch(database_url, "SELECT * FROM unmatched_report") == []


async def test_a_report_for_an_unknown_batch_is_kept_answered_200_and_counted(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    before = metric("smsgw_delivery_reports_unknown_batch_total")
    report = recipient_report(
        "01NOSUCHBATCH0000000000000", SE, "Delivered", 0, "2026-11-26T10:00:00Z"
    )
    response = await post_report(gateway, report)
    assert response.status_code == 200
    assert response.json()["outcome"] == "unknown_batch"
    assert (await post_report(gateway, report)).json()["outcome"] == "duplicate"
    [kept] = await fetch(database_url, "SELECT kind, batch_id, payload FROM unmatched_report")
    assert (kept["kind"], kept["batch_id"]) == ("unknown_batch", "01NOSUCHBATCH0000000000000")
    assert kept["payload"] == report
    assert metric("smsgw_delivery_reports_unknown_batch_total") == before + 1


async def test_an_unknown_type_is_kept_and_answered_200(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    payload = {"type": "delivery_report_rcs", "batch_id": BATCH, "whatever": 1}
    response = await post_report(gateway, payload)
    assert response.status_code == 200
    assert response.json()["outcome"] == "unprocessable"
    [kept] = await fetch(database_url, "SELECT kind, report_type, payload FROM unmatched_report")
    assert (kept["kind"], kept["report_type"], kept["payload"]) == (
        "unprocessable",
        "delivery_report_rcs",
        payload,
    )


@pytest.mark.parametrize("code", [2**31, -(2**31) - 1, 10**30])
async def test_a_code_beyond_any_sinch_code_is_kept_and_answered_200(
    gateway: httpx.AsyncClient, database_url: str, code: int
) -> None:
    message_id = await sent(gateway, database_url, SE)
    payload = recipient_report(BATCH, SE, "Delivered", code, "2026-11-27T10:00:00Z")
    response = await post_report(gateway, payload)
    assert response.status_code == 200
    assert response.json()["outcome"] == "unprocessable"
    [kept] = await fetch(database_url, "SELECT kind, payload FROM unmatched_report")
    assert (kept["kind"], kept["payload"]) == ("unprocessable", payload)
    assert recipient_states(await message(gateway, message_id)) == {SE: "submitted"}


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
async def test_a_body_that_is_not_a_json_object_is_a_400(
    gateway: httpx.AsyncClient, body: bytes
) -> None:
    response = await gateway.post(
        DLR_PATH, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unreadable_payload"


async def test_an_unavailable_database_is_a_503_so_that_sinch_retries() -> None:
    settings = make_settings(
        "postgresql://nobody@127.0.0.1:9/nowhere", db_connect_timeout_seconds=0.5
    )
    async with lifespan_client(create_app(settings)) as client:
        report = recipient_report(BATCH, SE, "Delivered", 0, "2026-11-26T10:00:00Z")
        response = await post_report(client, report)
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"


async def test_concurrent_reports_about_one_message_take_turns(
    gateway: httpx.AsyncClient, database_url: str
) -> None:
    recipients = [f"+4670123{n:04d}" for n in range(12)]
    message_id = await sent(gateway, database_url, *recipients)
    reports = [
        recipient_report(BATCH, to, status, code, at)
        for to in recipients
        for status, code, at in (
            ("Dispatched", 401, "2026-11-26T10:00:01Z"),
            ("Delivered", 0, "2026-11-26T10:00:02Z"),
        )
    ]
    responses = await asyncio.gather(*(post_report(gateway, report) for report in reports))
    assert {response.status_code for response in responses} == {200}
    document = await message(gateway, message_id)
    assert set(recipient_states(document).values()) == {"delivered"}
    # Derived from every recipient's committed state, whatever order the reports took.
    assert document["status"] == "delivered"


async def test_a_payload_with_characters_postgres_cannot_store_is_still_kept() -> None:
    from smsgateway.services.delivery_reports import read_json_object

    payload = read_json_object(
        b'{"type": "x\\u0000y", "note": "lone \\ud905 half", "ok": "\\ud83d\\ude00"}'
    )
    assert payload == {"type": "x\ufffdy", "note": "lone \ufffd half", "ok": "\U0001f600"}
