"""Accepted messages: insert (many at once), read one, list a tenant's (cancelling one is
``store.cancellation``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from smsgateway.domain.message_events import EventStatus, MessageEventKind, event_status
from smsgateway.store.opt_outs import blocks

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection


@dataclass(frozen=True)
class NewMessage:
    """A message the caller is about to be told was accepted, with its recipients."""

    id: uuid.UUID
    tenant: str
    api_key_id: uuid.UUID | None
    sender: str | None
    body: str
    encoding: str
    segment_count: int
    character_count: int
    recipients: tuple[str, ...]
    client_reference: str | None
    status: str
    delivery_report: str
    send_at: datetime | None
    expire_at: datetime | None
    callback_url: str | None
    parameters: dict[str, dict[str, str]] | None
    max_segments: int | None
    created_at: datetime
    due_at: datetime
    # Recipients who opted out: stored as ``opted_out``, never handed to Sinch. A message
    # whose every recipient opted out is stored ``rejected``, with no outbox entry.
    opted_out: frozenset[str] = frozenset()
    # text, media (MMS) or binary; ``content`` holds what a non-text batch needs besides body.
    kind: str = "text"
    content: dict[str, Any] | None = None

    def as_stored(self) -> MessageRecord:
        """The record ``insert_accepted`` writes for this message, without reading it back."""
        return MessageRecord(
            id=self.id,
            tenant=self.tenant,
            sender=self.sender,
            body=self.body,
            encoding=self.encoding,
            segment_count=self.segment_count,
            character_count=self.character_count,
            recipient_count=len(self.recipients),
            client_reference=self.client_reference,
            sinch_batch_id=None,
            status=self.status,
            status_code=None,
            status_detail=None,
            delivery_report=self.delivery_report,
            send_at=self.send_at,
            expire_at=self.expire_at,
            callback_url=self.callback_url,
            created_at=self.created_at,
            updated_at=self.created_at,
            submitted_at=None,
            recipients=tuple(
                RecipientRecord(
                    msisdn=msisdn,
                    status="opted_out" if msisdn in self.opted_out else self.status,
                    sinch_code=None,
                    status_at=None,
                    operator_status_at=None,
                    operator=None,
                    updated_at=self.created_at,
                )
                for msisdn in self.recipients
            ),
            kind=self.kind,
            content=self.content,
        )


@dataclass(frozen=True)
class RecipientRecord:
    msisdn: str
    status: str
    sinch_code: int | None
    status_at: datetime | None
    operator_status_at: datetime | None
    operator: str | None
    updated_at: datetime


@dataclass(frozen=True)
class EventRecord:
    id: int
    recipient: str | None
    kind: MessageEventKind
    status: EventStatus | None
    sinch_code: int | None
    detail: dict[str, Any]
    occurred_at: datetime


@dataclass(frozen=True)
class MessageRecord:
    id: uuid.UUID
    tenant: str
    sender: str | None
    body: str
    encoding: str
    segment_count: int
    character_count: int
    recipient_count: int
    client_reference: str | None
    sinch_batch_id: str | None
    status: str
    status_code: str | None
    status_detail: str | None
    delivery_report: str
    send_at: datetime | None
    expire_at: datetime | None
    callback_url: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    recipients: tuple[RecipientRecord, ...]
    events: tuple[EventRecord, ...] = ()
    kind: str = "text"
    content: dict[str, Any] | None = None
    # When the retention job blanked its body and masked its numbers; None while kept whole.
    redacted_at: datetime | None = None


@dataclass(frozen=True)
class MessageFilter:
    """``GET /v1/messages`` filters; ``before`` is the keyset cursor (created_at, id)."""

    tenant: str
    status: str | None = None
    recipient: str | None = None
    client_reference: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    before: tuple[datetime, uuid.UUID] | None = None
    limit: int = 50


class OptOutsFoundError(Exception):
    """The write found recipients who opted out and stored nothing: ``found`` maps each
    message's id to them. The caller marks them ``opted_out`` and writes the message again."""

    def __init__(self, found: Mapping[uuid.UUID, frozenset[str]]) -> None:
        super().__init__("recipients opted out")
        self.found = found


# The opt-out check rides in the write itself, so an accept costs one round trip, not a
# look-up and then a write: ``opted`` holds the recipients not yet marked ``opted_out`` whom
# an opt-out blocks, and while it holds any, every data-modifying CTE (those put before the
# messages' included) writes nothing and the statement returns them. Opt-outs are rare; the
# batch is then written again with them marked.
_OPT_OUT_GUARD = f"""
opted AS MATERIALIZED (
    SELECT DISTINCT r.message_id, r.msisdn
    FROM unnest($19::uuid[], $21::text[], $22::text[]) AS r(message_id, msisdn, status)
    JOIN unnest($1::uuid[], $2::text[], $4::text[]) AS m(id, tenant, sender)
        ON m.id = r.message_id
    WHERE r.status <> 'opted_out'
      AND EXISTS (SELECT 1 FROM opt_out AS o
                  WHERE {blocks("o", "r.msisdn", "m.tenant", "m.sender")})
),"""

NOTHING_OPTED_OUT = "NOT EXISTS (SELECT 1 FROM opted)"
"""The condition every data-modifying CTE of ``insert_accepted_statement`` writes under."""

# One statement, so one round trip and one commit for a whole batch of accepted messages:
# every data-modifying CTE runs, and foreign keys are checked at the end of the statement.
_ACCEPTED_CTES = f"""
message AS (
    INSERT INTO sms_log (
        id, tenant, api_key_id, sender, body, encoding, segment_count, character_count,
        recipient_count, client_reference, status, delivery_report, send_at, expire_at,
        callback_url, parameters, max_segments, created_at, updated_at, kind, content,
        spend_charge)
    SELECT m.id, m.tenant, m.api_key_id, m.sender, m.body, m.encoding, m.segment_count,
           m.character_count, m.recipient_count, m.client_reference, m.status,
           m.delivery_report, m.send_at, m.expire_at, m.callback_url, m.parameters,
           m.max_segments, m.created_at, m.created_at, m.kind, m.content,
           m.spend_charge::jsonb
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                $7::int[], $8::int[], $9::int[], $10::text[], $11::text[], $12::text[],
                $13::timestamptz[], $14::timestamptz[], $15::text[], $16::jsonb[], $17::int[],
                $18::timestamptz[], $25::text[], $26::jsonb[], $27::text[])
        AS m(id, tenant, api_key_id, sender, body, encoding, segment_count, character_count,
             recipient_count, client_reference, status, delivery_report, send_at, expire_at,
             callback_url, parameters, max_segments, created_at, kind, content, spend_charge)
    WHERE {NOTHING_OPTED_OUT}
    RETURNING id
), recipient AS (
    INSERT INTO sms_recipient (message_id, position, msisdn, status, updated_at)
    SELECT r.message_id, r.position, r.msisdn, r.status, r.updated_at
    FROM unnest($19::uuid[], $20::int[], $21::text[], $22::text[], $23::timestamptz[])
        AS r(message_id, position, msisdn, status, updated_at)
    WHERE {NOTHING_OPTED_OUT}
), outbox_entry AS (
    INSERT INTO outbox (message_id, due_at, created_at)
    SELECT o.message_id, o.due_at, o.created_at
    FROM unnest($1::uuid[], $24::timestamptz[], $18::timestamptz[], $11::text[])
        AS o(message_id, due_at, created_at, status)
    WHERE o.status IN ('queued', 'scheduled') AND {NOTHING_OPTED_OUT}
), accepted_event AS (
    INSERT INTO sms_event (message_id, kind, status, occurred_at)
    SELECT e.message_id, '{MessageEventKind.ACCEPTED}', e.status, e.occurred_at
    FROM unnest($1::uuid[], $11::text[], $18::timestamptz[])
        AS e(message_id, status, occurred_at)
    WHERE {NOTHING_OPTED_OUT}
)
SELECT message_id, msisdn FROM opted
"""


ACCEPTED_PARAMETERS = 27
"""``insert_accepted_statement`` takes $1 to $27; CTEs put before it number theirs after."""


def insert_accepted_statement(before: str = "") -> str:
    """The statement ``insert_accepted`` runs, with the CTEs ``before`` (comma-ended) run in
    the same statement: one round trip and one commit for them and the batch. Each CTE in
    ``before`` that writes must write only under ``NOTHING_OPTED_OUT``; the statement returns
    the opted-out recipients found (``raise_if_opted_out``)."""
    return f"WITH {_OPT_OUT_GUARD}{before}{_ACCEPTED_CTES}"


_INSERT_ACCEPTED = insert_accepted_statement()


SpendCharge = Mapping[str, str]
"""What a message took from its tenant's spend counters: counter key → amount (decimal text);
given back if it ends without costing anything (``store.protection.release_charge``)."""


async def insert_accepted(
    connection: Connection,
    messages: Sequence[NewMessage],
    spend_charges: Sequence[SpendCharge | None] | None = None,
) -> None:
    """Stores messages, their recipients, their outbox entries and 'accepted' events at once;
    ``spend_charges``, when given, holds each message's charge (None: it took none). Raises
    ``OptOutsFoundError``, having stored nothing, if a recipient not marked ``opted_out``
    opted out."""
    raise_if_opted_out(
        await connection.fetch(_INSERT_ACCEPTED, *accepted_arguments(messages, spend_charges))
    )


def raise_if_opted_out(rows: Sequence[asyncpg.Record]) -> None:
    """Raises ``OptOutsFoundError`` for the rows ``insert_accepted_statement`` returned."""
    if not rows:
        return
    found: dict[uuid.UUID, set[str]] = {}
    for row in rows:
        found.setdefault(row["message_id"], set()).add(row["msisdn"])
    raise OptOutsFoundError({message_id: frozenset(found[message_id]) for message_id in found})


def accepted_arguments(
    messages: Sequence[NewMessage], spend_charges: Sequence[SpendCharge | None] | None = None
) -> list[Any]:
    """The values of $1 to $27 for ``insert_accepted_statement``, a column per parameter."""
    recipient_columns: tuple[list[Any], ...] = ([], [], [], [], [])
    for message in messages:
        for position, msisdn in enumerate(message.recipients):
            for column, value in zip(
                recipient_columns,
                (
                    message.id,
                    position,
                    msisdn,
                    "opted_out" if msisdn in message.opted_out else message.status,
                    message.created_at,
                ),
                strict=True,
            ):
                column.append(value)
    return [
        [m.id for m in messages],
        [m.tenant for m in messages],
        [m.api_key_id for m in messages],
        [m.sender for m in messages],
        [m.body for m in messages],
        [m.encoding for m in messages],
        [m.segment_count for m in messages],
        [m.character_count for m in messages],
        [len(m.recipients) for m in messages],
        [m.client_reference for m in messages],
        [m.status for m in messages],
        [m.delivery_report for m in messages],
        [m.send_at for m in messages],
        [m.expire_at for m in messages],
        [m.callback_url for m in messages],
        [m.parameters for m in messages],
        [m.max_segments for m in messages],
        [m.created_at for m in messages],
        *recipient_columns,
        [m.due_at for m in messages],
        [m.kind for m in messages],
        [m.content for m in messages],
        # As JSON text: the statement must not depend on the connection's jsonb codec.
        [None] * len(messages)
        if spend_charges is None
        else [None if charge is None else json.dumps(charge) for charge in spend_charges],
    ]


_MESSAGE_COLUMNS = """
    id, tenant, sender, body, encoding, segment_count, character_count, recipient_count,
    client_reference, sinch_batch_id, status, status_code, status_detail, delivery_report,
    send_at, expire_at, callback_url, created_at, updated_at, submitted_at, kind, content,
    redacted_at
"""


async def get_message(
    connection: Connection, tenant: str, message_id: uuid.UUID, *, with_events: bool = True
) -> MessageRecord | None:
    """One of ``tenant``'s messages with its recipients (and its event history), or None."""
    row = await connection.fetchrow(
        f"SELECT {_MESSAGE_COLUMNS} FROM sms_log WHERE id = $1 AND tenant = $2",
        message_id,
        tenant,
    )
    if row is None:
        return None
    recipients = await _recipients_of(connection, [message_id])
    events = await _events_of(connection, message_id) if with_events else ()
    return _message(row, recipients.get(message_id, ()), events)


async def list_messages(connection: Connection, where: MessageFilter) -> list[MessageRecord]:
    """The tenant's messages, newest first, after the cursor; recipients included."""
    conditions = ["tenant = $1"]
    values: list[Any] = [where.tenant]

    def bind(value: Any) -> str:
        values.append(value)
        return f"${len(values)}"

    if where.status is not None:
        conditions.append(f"status = {bind(where.status)}")
    if where.client_reference is not None:
        conditions.append(f"client_reference = {bind(where.client_reference)}")
    if where.recipient is not None:
        conditions.append(
            f"id IN (SELECT message_id FROM sms_recipient WHERE msisdn = {bind(where.recipient)})"
        )
    if where.created_from is not None:
        conditions.append(f"created_at >= {bind(where.created_from)}")
    if where.created_to is not None:
        conditions.append(f"created_at < {bind(where.created_to)}")
    if where.before is not None:
        created_at, message_id = where.before
        conditions.append(f"(created_at, id) < ({bind(created_at)}, {bind(message_id)})")
    rows = await connection.fetch(
        f"SELECT {_MESSAGE_COLUMNS} FROM sms_log WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at DESC, id DESC LIMIT {bind(where.limit)}",
        *values,
    )
    recipients = await _recipients_of(connection, [row["id"] for row in rows])
    return [_message(row, recipients.get(row["id"], ()), ()) for row in rows]


async def _recipients_of(
    connection: Connection, message_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[RecipientRecord, ...]]:
    if not message_ids:
        return {}
    rows = await connection.fetch(
        "SELECT message_id, msisdn, status, sinch_code, status_at, operator_status_at,"
        " operator, updated_at FROM sms_recipient WHERE message_id = ANY($1::uuid[])"
        " ORDER BY message_id, position",
        list(message_ids),
    )
    grouped: dict[uuid.UUID, list[RecipientRecord]] = {}
    for row in rows:
        grouped.setdefault(row["message_id"], []).append(
            RecipientRecord(
                msisdn=row["msisdn"],
                status=row["status"],
                sinch_code=row["sinch_code"],
                status_at=row["status_at"],
                operator_status_at=row["operator_status_at"],
                operator=row["operator"],
                updated_at=row["updated_at"],
            )
        )
    return {message_id: tuple(records) for message_id, records in grouped.items()}


async def _events_of(connection: Connection, message_id: uuid.UUID) -> tuple[EventRecord, ...]:
    rows = await connection.fetch(
        "SELECT id, recipient, kind, status, sinch_code, detail, occurred_at"
        " FROM sms_event WHERE message_id = $1 ORDER BY id",
        message_id,
    )
    return tuple(
        EventRecord(
            id=row["id"],
            recipient=row["recipient"],
            kind=MessageEventKind(row["kind"]),
            status=None if row["status"] is None else event_status(row["status"]),
            sinch_code=row["sinch_code"],
            detail=row["detail"],
            occurred_at=row["occurred_at"],
        )
        for row in rows
    )


def _message(
    row: asyncpg.Record,
    recipients: tuple[RecipientRecord, ...],
    events: tuple[EventRecord, ...],
) -> MessageRecord:
    return MessageRecord(
        id=row["id"],
        tenant=row["tenant"],
        sender=row["sender"],
        body=row["body"],
        encoding=row["encoding"],
        segment_count=row["segment_count"],
        character_count=row["character_count"],
        recipient_count=row["recipient_count"],
        client_reference=row["client_reference"],
        sinch_batch_id=row["sinch_batch_id"],
        status=row["status"],
        status_code=row["status_code"],
        status_detail=row["status_detail"],
        delivery_report=row["delivery_report"],
        send_at=row["send_at"],
        expire_at=row["expire_at"],
        callback_url=row["callback_url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        submitted_at=row["submitted_at"],
        recipients=recipients,
        events=events,
        kind=row["kind"],
        content=row["content"],
        redacted_at=row["redacted_at"],
    )
