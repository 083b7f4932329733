"""The outbox: one row per message still to be handed to Sinch, claimed under a lease.

Claiming moves ``due_at`` to the end of the lease and sets a fresh ``claim_token``, so a claim
whose worker died becomes due again by itself, with no sweeper. Every later change is
token-checked: a worker that lost its claim (its lease ended and another worker took the row)
changes nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection


@dataclass(frozen=True, slots=True)
class Claim:
    """A claimed outbox row; ``attempts`` counts this claim, so it is 1 on the first try.

    ``claimed_monotonic`` is this process's ``time.monotonic()`` when the claim came back: the
    lease ends at least ``lease_seconds`` after it.
    """

    message_id: uuid.UUID
    claim_token: uuid.UUID
    claimed_by: str
    attempts: int
    lease_ends_at: datetime
    claimed_monotonic: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """``depth``: rows in the outbox; ``due``: rows due now and unclaimed (or lease ended)."""

    depth: int
    due: int
    oldest_due_age_seconds: float


# One statement, so one round trip: ``durable`` is SET LOCAL synchronous_commit TO on for this
# statement's own transaction (it is still in force when that commits). It is read by every
# row claimed, so a claim that changes anything always commits durably. ``CLAIM_DUE_CTES``
# ends with ``claimed`` (the claimed rows); store.dispatch reads the messages beside them.
CLAIM_DUE_CTES = """
WITH durable AS MATERIALIZED (
    SELECT set_config('synchronous_commit', 'on', true) AS setting
), due AS (
    SELECT outbox.message_id
    FROM outbox, durable
    WHERE outbox.due_at <= now() AND durable.setting = 'on'
    ORDER BY outbox.due_at
    LIMIT $1
    FOR UPDATE OF outbox SKIP LOCKED
), claimed AS (
    UPDATE outbox AS o
    SET due_at = now() + make_interval(secs => $2),
        claim_token = gen_random_uuid(),
        claimed_by = $3,
        attempts = o.attempts + 1
    FROM due
    WHERE o.message_id = due.message_id
    RETURNING o.message_id, o.claim_token, o.claimed_by, o.attempts, o.due_at
)
"""
_CLAIM_DUE = CLAIM_DUE_CTES + "SELECT * FROM claimed"


async def claim_due(
    connection: Connection, limit: int, lease_seconds: float, worker_id: str
) -> list[Claim]:
    """Claims up to ``limit`` due rows, oldest due first, skipping rows other workers hold.

    The claim is committed durably even on the dispatcher's pool, whose commits do not wait
    for the disk: its attempt count is what tells the next attempt to look the message up at
    Sinch before sending, so a Postgres crash must not lose it once a send may have begun.
    """
    rows = await connection.fetch(_CLAIM_DUE, limit, float(lease_seconds), worker_id)
    claimed = time.monotonic()
    return [claim_from(row, claimed) for row in rows]


def claim_from(row: asyncpg.Record, claimed_monotonic: float) -> Claim:
    """The claim in a row of ``claimed`` (``CLAIM_DUE_CTES``)."""
    return Claim(
        message_id=row["message_id"],
        claim_token=row["claim_token"],
        claimed_by=row["claimed_by"],
        attempts=row["attempts"],
        lease_ends_at=row["due_at"],
        claimed_monotonic=claimed_monotonic,
    )


async def extend_lease(connection: Connection, claim: Claim, lease_seconds: float) -> bool:
    """Restarts the lease from now; False if the claim was lost (nothing changed then)."""
    status = await connection.execute(
        "UPDATE outbox SET due_at = now() + make_interval(secs => $3)"
        " WHERE message_id = $1 AND claim_token = $2",
        claim.message_id,
        claim.claim_token,
        float(lease_seconds),
    )
    return status == "UPDATE 1"


async def complete(connection: Connection, message_id: uuid.UUID, claim_token: uuid.UUID) -> bool:
    """Deletes the row if ``claim_token`` still holds it; False if the claim was lost."""
    status = await connection.execute(
        "DELETE FROM outbox WHERE message_id = $1 AND claim_token = $2",
        message_id,
        claim_token,
    )
    return status == "DELETE 1"


async def reschedule(
    connection: Connection,
    message_id: uuid.UUID,
    claim_token: uuid.UUID,
    delay_seconds: float,
    error: str,
    *,
    keep_claim: bool = False,
) -> datetime | None:
    """Makes the row due again ``delay_seconds`` from now (the database's now) and unclaimed,
    or, with ``keep_claim``, still claimed until then: a cancel then finds it being sent (an
    unanswered send's outcome is not known until the wait is over), and a claim takes it
    once due, as any lapsed claim.

    Returns the new ``due_at``, or None if the claim was lost.
    """
    due_at: datetime | None = await connection.fetchval(
        "UPDATE outbox SET due_at = now() + make_interval(secs => $3),"
        " claim_token = CASE WHEN $5 THEN claim_token END,"
        " claimed_by = CASE WHEN $5 THEN claimed_by END, last_error = $4"
        " WHERE message_id = $1 AND claim_token = $2 RETURNING due_at",
        message_id,
        claim_token,
        float(delay_seconds),
        error,
        keep_claim,
    )
    return due_at


async def release(connection: Connection, claims: Sequence[Claim]) -> int:
    """Gives claims back untried (graceful stop): due now, unclaimed, the attempt not counted.

    Returns how many were still held; lost claims are left alone.
    """
    if not claims:
        return 0
    released: int = await connection.fetchval(
        """
        WITH released AS (
            UPDATE outbox AS o
            SET due_at = now(), claim_token = NULL, claimed_by = NULL,
                attempts = greatest(o.attempts - 1, 0)
            FROM unnest($1::uuid[], $2::uuid[]) AS c(message_id, claim_token)
            WHERE o.message_id = c.message_id AND o.claim_token = c.claim_token
            RETURNING 1
        )
        -- Another worker may take them at once (channel: notifications.OUTBOX_CHANNEL).
        SELECT (SELECT count(*) FROM released), pg_notify('smsgw_outbox_due', '')
        """,
        [claim.message_id for claim in claims],
        [claim.claim_token for claim in claims],
    )
    return released


async def outbox_stats(connection: Connection) -> OutboxStats:
    """Depth, due rows and the age of the oldest due row (0 when none is due), for metrics."""
    row = await connection.fetchrow(
        """
        SELECT count(*) AS depth,
               count(*) FILTER (WHERE due_at <= now()) AS due,
               coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())),
                        0)::float8 AS oldest_due_age
        FROM outbox
        """
    )
    assert row is not None
    return OutboxStats(
        depth=row["depth"], due=row["due"], oldest_due_age_seconds=row["oldest_due_age"]
    )
