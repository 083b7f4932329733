"""Opt-outs: which numbers asked not to be sent to, since when, and on whose word.

One row per number that ever opted out or back in; ``opted_out`` says which is in force.
A change applies only if it happened no earlier than the one in force (``changed_at``), so a
STOP and a START that reach us out of order still end as the later one says.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

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


@dataclass(frozen=True, slots=True)
class OptOutRecord:
    msisdn: str
    opted_out: bool
    changed_at: datetime
    source: str
    keyword: str | None
    inbound_id: uuid.UUID | None
    note: str | None
    created_at: datetime
    updated_at: datetime


_COLUMNS = (
    "msisdn, opted_out, changed_at, source, keyword, inbound_id, note, created_at, updated_at"
)

# The row keeps the newest change; an older one arriving late leaves it as it is.
UPSERT = f"""
INSERT INTO opt_out AS o (msisdn, opted_out, changed_at, source, keyword, inbound_id, note)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (msisdn) DO UPDATE
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
    )


async def opted_out_among(connection: Connection, msisdns: Sequence[str]) -> frozenset[str]:
    """Those of ``msisdns`` (E.164) that are opted out now."""
    rows = await connection.fetch(
        "SELECT msisdn FROM opt_out WHERE msisdn = ANY($1::text[]) AND opted_out",
        list(msisdns),
    )
    return frozenset(row["msisdn"] for row in rows)


async def record_change(connection: Connection, change: OptChange) -> OptOutRecord | None:
    """Applies ``change``; None when a later change is already in force (nothing changed)."""
    row = await connection.fetchrow(UPSERT, *upsert_arguments(change))
    return None if row is None else opt_out_record(row)


async def get_opt_out(connection: Connection, msisdn: str) -> OptOutRecord | None:
    """The number's row, opted out or not; None if it never opted out or in."""
    row = await connection.fetchrow(f"SELECT {_COLUMNS} FROM opt_out WHERE msisdn = $1", msisdn)
    return None if row is None else opt_out_record(row)


async def list_opt_outs(
    connection: Connection, *, before: tuple[datetime, str] | None, limit: int
) -> list[OptOutRecord]:
    """Numbers opted out now, most recent first, after the keyset cursor ``before``."""
    if before is None:
        rows = await connection.fetch(
            f"SELECT {_COLUMNS} FROM opt_out WHERE opted_out"
            " ORDER BY changed_at DESC, msisdn DESC LIMIT $1",
            limit,
        )
    else:
        rows = await connection.fetch(
            f"SELECT {_COLUMNS} FROM opt_out WHERE opted_out AND (changed_at, msisdn) < ($1, $2)"
            " ORDER BY changed_at DESC, msisdn DESC LIMIT $3",
            before[0],
            before[1],
            limit,
        )
    return [opt_out_record(row) for row in rows]


def opt_out_record(row: asyncpg.Record) -> OptOutRecord:
    return OptOutRecord(
        msisdn=row["msisdn"],
        opted_out=row["opted_out"],
        changed_at=row["changed_at"],
        source=row["source"],
        keyword=row["keyword"],
        inbound_id=row["inbound_id"],
        note=row["note"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )
