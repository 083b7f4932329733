"""Helpers for the webhook tests: real Sinch payload shapes, and recording a batch id the way
the dispatcher does (fixtures are in conftest.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence

import asyncpg
import httpx

from smsgateway.store import outbox
from smsgateway.store.dispatch import load_outgoing, record_submitted
from smsgateway.store.reports import apply_unmatched

DLR_PATH = "/webhooks/sinch/delivery-reports"
INBOUND_PATH = "/webhooks/sinch/inbound"
OPERATOR = "310260"


def recipient_report(
    batch_id: str,
    recipient: str,
    status: str,
    code: int,
    at: str,
    *,
    client_reference: str | None = None,
    kind: str = "recipient_delivery_report_sms",
    **extra: object,
) -> dict[str, object]:
    """A per-recipient report as Sinch sends it (operator fields on operator statuses)."""
    payload: dict[str, object] = {
        "type": kind,
        "batch_id": batch_id,
        "recipient": recipient,
        "code": code,
        "status": status,
        "at": at,
    }
    if status != "Queued":
        payload["operator_status_at"] = at[:19] + "Z"
        payload["operator"] = OPERATOR
    if client_reference is not None:
        payload["client_reference"] = client_reference
    payload.update(
        {"applied_originator": "+15550009999", "number_of_message_parts": 1, "encoding": "GSM"}
    )
    payload.update(extra)
    return payload


def batch_report(
    batch_id: str,
    groups: Sequence[tuple[str, int, Sequence[str]]],
    *,
    full: bool,
    client_reference: str | None = None,
    kind: str = "delivery_report_sms",
    counts: Sequence[int] | None = None,
) -> dict[str, object]:
    """A batch report: (status, code, recipients) groups; ``full`` lists the recipients."""
    statuses = []
    for index, (status, code, recipients) in enumerate(groups):
        entry: dict[str, object] = {
            "code": code,
            "status": status,
            "count": counts[index] if counts is not None else len(recipients),
        }
        if full:
            entry["recipients"] = list(recipients)
        statuses.append(entry)
    payload: dict[str, object] = {
        "type": kind,
        "batch_id": batch_id,
        "total_message_count": sum(int(str(s["count"])) for s in statuses),
        "statuses": statuses,
    }
    if client_reference is not None:
        payload["client_reference"] = client_reference
    return payload


async def send_message(client: httpx.AsyncClient, to: Sequence[str], **fields: object) -> str:
    response = await client.post("/v1/messages", json={"to": list(to), "body": "Hi", **fields})
    assert response.status_code == 202, response.text
    message_id = response.json()["id"]
    assert isinstance(message_id, str)
    return message_id


async def record_batch(database_url: str, message_id: str, batch_id: str) -> None:
    """What the dispatcher does once Sinch accepted the batch: claim, load, record_submitted,
    then apply the reports that came before the batch id."""
    connection = await connect(database_url)
    try:
        claims = await outbox.claim_due(connection, 100, 30.0, "test-worker")
        claim = next(c for c in claims if c.message_id == uuid.UUID(message_id))
        loaded = await load_outgoing(connection, claim.message_id)
        assert loaded is not None
        await record_submitted(
            connection,
            claim,
            batch_id=batch_id,
            resolved_by_lookup=False,
            route=loaded.callback_route,
        )
        await apply_unmatched(connection, batch_id)
    finally:
        await connection.close()


async def post_report(client: httpx.AsyncClient, payload: dict[str, object]) -> httpx.Response:
    return await client.post(
        DLR_PATH,
        content=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )


async def message(client: httpx.AsyncClient, message_id: str) -> dict[str, object]:
    response = await client.get(f"/v1/messages/{message_id}")
    assert response.status_code == 200, response.text
    document = response.json()
    assert isinstance(document, dict)
    return document


def recipient_states(document: dict[str, object]) -> dict[str, str]:
    recipients = document["recipients"]
    assert isinstance(recipients, list)
    return {r["to"]: r["status"] for r in recipients}


def report_events(document: dict[str, object]) -> list[dict[str, object]]:
    events = document["events"]
    assert isinstance(events, list)
    return [e for e in events if e["kind"] == "delivery_report"]


async def fetch(database_url: str, query: str, *args: object) -> list[asyncpg.Record]:
    connection = await connect(database_url)
    try:
        return await connection.fetch(query, *args)
    finally:
        await connection.close()


async def connect(database_url: str) -> asyncpg.Connection:
    """A connection with the JSON codecs the gateway's pool sets."""
    connection = await asyncpg.connect(database_url)
    for name in ("json", "jsonb"):
        await connection.set_type_codec(
            name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
    return connection
