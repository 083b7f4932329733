"""Opt-outs: which numbers asked not to be sent to, by whom, since when, and on whose word.

One row per number and target (``domain.tenancy.OptOutTarget``: global, one sender, or every
message of one tenant) that ever opted out or back in; ``opted_out`` says which is in force.
A message from ``sender`` of ``tenant`` is blocked for a number by any row in force that is
global, is that sender's, or is that tenant's (``blocks``). A change applies only if it
happened no earlier than the one in force (``changed_at``), so a STOP and a START that reach
us out of order still end as the later one says. Every applied change of a tenant's row
queues an ``opt_out.changed`` event in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from smsgateway.store.tenant_events import enqueue_tenant_events, opt_out_payload

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection

OptOutSource = Literal["inbound", "api"]


@dataclass(frozen=True, slots=True)
class OptChange:
    """A number opting out (``opted_out``) or back in, at ``changed_at``."""

    msisdn: str
    opted_out: bool
    changed_at: datetime
    source: OptOutSource
    keyword: str | None = None
    inbound_id: uuid.UUID | None = None
    note: str | None = None
    tenant: str | None = None
    sender: str | None = None


@dataclass(frozen=True, slots=True)
class OptOutRecord:
    id: uuid.UUID
    msisdn: str
    tenant: str | None
    sender: str | None
    opted_out: bool
    changed_at: datetime
    source: str
    keyword: str | None
    inbound_id: uuid.UUID | None
    note: str | None
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    "id, msisdn, tenant, sender, opted_out, changed_at, source, keyword, inbound_id, note,"
    " created_at, updated_at"
)


def blocks(opt_out: str, msisdn: str, tenant: str, sender: str) -> str:
    """A condition: the ``opt_out`` row (an alias) blocks a message from ``sender`` of
    ``tenant`` to ``msisdn`` (SQL expressions).

    A message without a sender goes from the number Sinch's default originator picks, which
    the gateway cannot know: a STOP to any number of its tenant, or to a number of no tenant,
    blocks it, erring on the subscriber's side."""
    return (
        f"{opt_out}.msisdn = {msisdn} AND {opt_out}.opted_out"
        f" AND ({opt_out}.sender = {sender}"
        f" OR ({opt_out}.sender IS NULL AND {opt_out}.tenant IS NULL)"
        f" OR ({opt_out}.sender IS NULL AND {opt_out}.tenant = {tenant})"
        f" OR ({sender} IS NULL AND ({opt_out}.tenant IS NULL OR {opt_out}.tenant = {tenant})))"
    )


# The row keeps the newest change; an older one arriving late leaves it as it is.
UPSERT = f"""
INSERT INTO opt_out AS o
    (msisdn, opted_out, changed_at, source, keyword, inbound_id, note, tenant, sender)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT ON CONSTRAINT opt_out_scope_key DO UPDATE
SET opted_out = excluded.opted_out, changed_at = excluded.changed_at, source = excluded.source,
    keyword = excluded.keyword, inbound_id = excluded.inbound_id, note = excluded.note,
    updated_at = now()
WHERE o.changed_at <= excluded.changed_at
RETURNING {_COLUMNS}
"""


def upsert_arguments(change: OptChange) -> tuple[object, ...]:
    return (
        change.msisdn,
        change.opted_out,
        change.changed_at,
        change.source,
        change.keyword,
        change.inbound_id,
        change.note,
        change.tenant,
        change.sender,
    )


# A probe is (msisdn, tenant of the message, sender of the message or None).
OptOutProbe = tuple[str, str, str | None]

_OPTED_OUT_AMONG = f"""
SELECT p.msisdn, p.tenant, p.sender
FROM unnest($1::text[], $2::text[], $3::text[]) AS p(msisdn, tenant, sender)
WHERE EXISTS (SELECT 1 FROM opt_out AS o WHERE {blocks("o", "p.msisdn", "p.tenant", "p.sender")})
"""


async def opted_out_among(
    connection: Connection, probes: Sequence[OptOutProbe]
) -> frozenset[OptOutProbe]:
    """Those of ``probes`` whose message may not go to the number now."""
    rows = await connection.fetch(
        _OPTED_OUT_AMONG,
        [probe[0] for probe in probes],
        [probe[1] for probe in probes],
        [probe[2] for probe in probes],
    )
    return frozenset((row["msisdn"], row["tenant"], row["sender"]) for row in rows)


async def record_change(connection: Connection, change: OptChange) -> OptOutRecord | None:
    """Applies ``change`` and queues its event; None when a later change is already in force
    (nothing changed)."""
    async with connection.transaction():
        row = await connection.fetchrow(UPSERT, *upsert_arguments(change))
        if row is None:
            return None
        record = opt_out_record(row)
        await enqueue_tenant_events(connection, record.tenant, [opt_out_payload(record)])
        return record


async def get_opt_out(
    connection: Connection, msisdn: str, tenant: str | None, sender: str | None
) -> OptOutRecord | None:
    """The row of that number and target, opted out or not; None if there never was one."""
    row = await connection.fetchrow(
        f"SELECT {_COLUMNS} FROM opt_out"
        " WHERE msisdn = $1 AND tenant IS NOT DISTINCT FROM $2 AND sender IS NOT DISTINCT FROM $3",
        msisdn,
        tenant,
        sender,
    )
    return None if row is None else opt_out_record(row)


async def list_opt_outs(
    connection: Connection,
    *,
    tenant: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[OptOutRecord]:
    """Opt-outs in force, most recent first, after the keyset cursor ``before``: ``tenant``'s,
    or every row when ``tenant`` is None."""
    rows = await connection.fetch(
        f"SELECT {_COLUMNS} FROM opt_out"
        " WHERE opted_out AND ($1::text IS NULL OR tenant = $1)"
        "   AND ($2::timestamptz IS NULL OR (changed_at, id) < ($2, $3::uuid))"
        " ORDER BY changed_at DESC, id DESC LIMIT $4",
        tenant,
        None if before is None else before[0],
        None if before is None else before[1],
        limit,
    )
    return [opt_out_record(row) for row in rows]


def opt_out_record(row: asyncpg.Record) -> OptOutRecord:
    return OptOutRecord(
        id=row["id"],
        msisdn=row["msisdn"],
        tenant=row["tenant"],
        sender=row["sender"],
        opted_out=row["opted_out"],
        changed_at=row["changed_at"],
        source=row["source"],
        keyword=row["keyword"],
        inbound_id=row["inbound_id"],
        note=row["note"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
