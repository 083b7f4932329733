"""Inbound (MO) messages: stored once per Sinch id, with the opt-out change they carry.

Each belongs to the tenant that owns the receiving number (``sender_assignment``) when it
arrives, or to none; a tenant's inbound queues a ``message.inbound`` event in the transaction
that stores it, and the opt-out change it carries an ``opt_out.changed`` one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from smsgateway.domain.inbound import InboundType, inbound_type
from smsgateway.domain.tenancy import StopScope, stop_target
from smsgateway.store.opt_outs import UPSERT, OptChange, OptOutRecord, opt_out_record
from smsgateway.store.tenant_events import (
    enqueue_tenant_events,
    inbound_payload,
    opt_out_payload,
)

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection


@dataclass(frozen=True, slots=True)
class NewInbound:
    """An inbound callback as the gateway keeps it; ``payload`` is the body as received."""

    sinch_id: str
    type: str
    sender: str | None
    recipient: str | None
    body: str | None
    keyword: str | None
    client_reference: str | None
    operator_id: str | None
    received_at: datetime
    sent_at: datetime | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class InboundRecord:
    id: uuid.UUID
    tenant: str | None
    sinch_id: str
    type: InboundType
    """As callers see it: ``unknown`` for a type the gateway does not know (the column and
    the payload keep Sinch's own)."""
    sender: str | None
    recipient: str | None
    body: str | None
    keyword: str | None
    client_reference: str | None
    operator_id: str | None
    received_at: datetime
    sent_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredInbound:
    """``id`` of the stored row; ``duplicate`` when Sinch's id was stored before (nothing was
    done again); ``opt_out`` is the number's row when the message changed it."""

    id: uuid.UUID | None
    duplicate: bool
    opt_out: OptOutRecord | None = None


@dataclass(frozen=True, slots=True)
class InboundFilter:
    """``GET /v1/inbound-messages`` filters; ``before`` is the keyset cursor."""

    sender: str | None = None
    recipient: str | None = None
    keyword: str | None = None
    # Whose messages: one tenant's, or (None) every tenant's and unassigned numbers'.
    tenant: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    before: tuple[datetime, uuid.UUID] | None = None
    limit: int = 50


_COLUMNS = """
    id, tenant, sinch_id, type, sender, recipient, body, keyword, client_reference, operator_id,
    received_at, sent_at, created_at
"""

_INSERT = f"""
INSERT INTO inbound_message (sinch_id, type, sender, recipient, body, keyword,
    client_reference, operator_id, received_at, sent_at, payload, tenant)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
        (SELECT tenant FROM sender_assignment WHERE sender = $4))
ON CONFLICT (sinch_id) DO NOTHING
RETURNING {_COLUMNS}
"""


async def record_inbound(
    connection: Connection,
    inbound: NewInbound,
    change: OptChange | None,
    stop_scope: StopScope = StopScope.SENDER,
) -> StoredInbound:
    """Stores ``inbound`` and applies ``change`` in one transaction, unless Sinch's id is known;
    the change covers the receiving number, or its tenant's every sender (``stop_scope``)."""
    async with connection.transaction():
        stored = await connection.fetchrow(
            _INSERT,
            inbound.sinch_id,
            inbound.type,
            inbound.sender,
            inbound.recipient,
            inbound.body,
            inbound.keyword,
            inbound.client_reference,
            inbound.operator_id,
            inbound.received_at,
            inbound.sent_at,
            inbound.payload,
        )
        if stored is None:
            return StoredInbound(None, duplicate=True)
        record = _record(stored)
        await enqueue_tenant_events(connection, record.tenant, [inbound_payload(record)])
        if change is None:
            return StoredInbound(record.id, duplicate=False)
        target = stop_target(stop_scope, record.recipient, record.tenant)
        row = await connection.fetchrow(
            UPSERT,
            change.msisdn,
            change.opted_out,
            change.changed_at,
            change.source,
            change.keyword,
            record.id,
            change.note,
            target.tenant,
            target.sender,
        )
        if row is None:
            return StoredInbound(record.id, False)
        opt_out = opt_out_record(row)
        await enqueue_tenant_events(connection, opt_out.tenant, [opt_out_payload(opt_out)])
        return StoredInbound(record.id, False, opt_out)


async def list_inbound(connection: Connection, where: InboundFilter) -> list[InboundRecord]:
    """Inbound messages, newest first, after the cursor."""
    conditions = ["true"]
    values: list[Any] = []

    def bind(value: Any) -> str:
        values.append(value)
        return f"${len(values)}"

    if where.tenant is not None:
        conditions.append(f"tenant = {bind(where.tenant)}")
    if where.sender is not None:
        conditions.append(f"sender = {bind(where.sender)}")
    if where.recipient is not None:
        conditions.append(f"recipient = {bind(where.recipient)}")
    if where.keyword is not None:
        conditions.append(f"keyword = {bind(where.keyword)}")
    if where.received_from is not None:
        conditions.append(f"received_at >= {bind(where.received_from)}")
    if where.received_to is not None:
        conditions.append(f"received_at < {bind(where.received_to)}")
    if where.before is not None:
        received_at, inbound_id = where.before
        conditions.append(f"(received_at, id) < ({bind(received_at)}, {bind(inbound_id)})")
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM inbound_message WHERE {' AND '.join(conditions)}"
        f" ORDER BY received_at DESC, id DESC LIMIT {bind(where.limit)}",
        *values,
    )
    return [_record(row) for row in rows]


def _record(row: asyncpg.Record) -> InboundRecord:
    return InboundRecord(
        id=row["id"],
        tenant=row["tenant"],
        sinch_id=row["sinch_id"],
        type=inbound_type(row["type"]),
        sender=row["sender"],
        recipient=row["recipient"],
        body=row["body"],
        keyword=row["keyword"],
        client_reference=row["client_reference"],
        operator_id=row["operator_id"],
        received_at=row["received_at"],
        sent_at=row["sent_at"],
        created_at=row["created_at"],
    )
