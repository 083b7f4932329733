"""Messages awaiting their final delivery reports (``awaiting_report``), claimed under a lease.

The dispatcher adds a row when it records a batch id (``store.dispatch``). Claiming takes due
rows with ``FOR UPDATE SKIP LOCKED`` and moves ``due_at`` to the end of the lease with a fresh
``claim_token``: two reconcilers never hold the same message, and a crashed one's claim becomes
due again by itself. The same statement deletes the rows of messages that are no longer
``submitted`` (their final reports came by webhook, or they were cancelled): those are never
asked about. Every later change is token-checked, so a reconciler that lost its claim changes
nothing.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from smsgateway.domain.message_events import MessageEventKind

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

# The statuses of a recipient whose final report has not arrived.
_PENDING = "('queued', 'scheduled', 'submitted', 'dispatched')"


@dataclass(frozen=True, slots=True)
class AwaitingClaim:
    """A claimed message: its batch, the recipients still without a final status (in order),
    ``attempts`` counting this round (1 for the first) and when Sinch stops trying."""

    message_id: uuid.UUID
    batch_id: str
    claim_token: uuid.UUID
    attempts: int
    expires_at: datetime
    pending: tuple[str, ...]
    claimed_monotonic: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Claimed:
    """One claim's result: the claims, and how many rows were dropped unasked because their
    message had become final (or ended) meanwhile."""

    claims: list[AwaitingClaim]
    settled: int


@dataclass(frozen=True, slots=True)
class Backlog:
    """``awaiting``: messages waiting for a final report; ``due``: those due for a check now."""

    awaiting: int
    due: int


_CLAIM_DUE = f"""
WITH due AS (
    SELECT message_id FROM awaiting_report
    WHERE due_at <= now()
    ORDER BY due_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), settled AS (
    DELETE FROM awaiting_report AS a
    USING due, sms_log AS s
    WHERE a.message_id = due.message_id AND s.id = due.message_id AND s.status <> 'submitted'
    RETURNING a.message_id
), claimed AS (
    UPDATE awaiting_report AS a
    SET due_at = now() + make_interval(secs => $2), claim_token = gen_random_uuid(),
        attempts = a.attempts + 1
    FROM due, sms_log AS s
    WHERE a.message_id = due.message_id AND s.id = due.message_id AND s.status = 'submitted'
    RETURNING a.message_id, a.batch_id, a.claim_token, a.attempts, a.expires_at
)
SELECT c.message_id, c.batch_id, c.claim_token, c.attempts, c.expires_at,
       ARRAY(SELECT r.msisdn FROM sms_recipient AS r
             WHERE r.message_id = c.message_id AND r.status IN {_PENDING}
             ORDER BY r.position) AS pending
FROM claimed AS c
UNION ALL
SELECT message_id, NULL, NULL, NULL, NULL, NULL FROM settled
"""


async def claim_due(connection: Connection, limit: int, lease_seconds: float) -> Claimed:
    """Claims up to ``limit`` due messages, earliest due first, skipping those others hold."""
    rows = await connection.fetch(_CLAIM_DUE, limit, float(lease_seconds))
    claimed = time.monotonic()
    claims = [
        AwaitingClaim(
            message_id=row["message_id"],
            batch_id=row["batch_id"],
            claim_token=row["claim_token"],
            attempts=row["attempts"],
            expires_at=row["expires_at"],
            pending=tuple(row["pending"]),
            claimed_monotonic=claimed,
        )
        for row in rows
        if row["claim_token"] is not None
    ]
    return Claimed(claims, len(rows) - len(claims))


# The message row is read, not locked: a final report committed after this read only costs one
# more round, which the next claim then drops unasked.
_RESCHEDULE = f"""
WITH message AS (
    SELECT EXISTS (SELECT 1 FROM sms_recipient
                   WHERE message_id = $1 AND status IN {_PENDING}) AS pending
), done AS (
    DELETE FROM awaiting_report
    WHERE message_id = $1 AND claim_token = $2 AND NOT (SELECT pending FROM message)
    RETURNING 1
), again AS (
    UPDATE awaiting_report SET due_at = $3, claim_token = NULL, last_error = $4
    WHERE message_id = $1 AND claim_token = $2 AND (SELECT pending FROM message)
    RETURNING 1
)
SELECT CASE WHEN EXISTS (SELECT 1 FROM done) THEN 'resolved'
            WHEN EXISTS (SELECT 1 FROM again) THEN 'rescheduled'
            ELSE 'lost' END
"""

Rescheduled = Literal["resolved", "rescheduled", "lost"]


async def reschedule(
    connection: Connection,
    claim: AwaitingClaim,
    due_at: datetime,
    *,
    error: str | None = None,
) -> Rescheduled:
    """Ends the claim: drops the message if no recipient is pending any more (``resolved``),
    else schedules its next round at ``due_at`` (``rescheduled``); ``lost`` if another
    reconciler holds it now (nothing changed)."""
    outcome: Rescheduled = await connection.fetchval(
        _RESCHEDULE, claim.message_id, claim.claim_token, due_at, error
    )
    return outcome


_GIVE_UP = f"""
WITH gone AS (
    DELETE FROM awaiting_report WHERE message_id = $1 AND claim_token = $2 RETURNING message_id
)
INSERT INTO sms_event (message_id, kind, detail)
SELECT message_id, '{MessageEventKind.RECONCILIATION_GIVEN_UP}', $3 FROM gone
RETURNING id
"""


async def give_up(connection: Connection, claim: AwaitingClaim, detail: dict[str, Any]) -> bool:
    """Stops reconciling the message, with a ``reconciliation_given_up`` event (``detail``);
    False, changing nothing, if the claim was lost."""
    return (
        await connection.fetchval(_GIVE_UP, claim.message_id, claim.claim_token, detail) is not None
    )


_BACKLOG = """
SELECT count(*) AS awaiting, count(*) FILTER (WHERE due_at <= now()) AS due
FROM awaiting_report
"""


async def backlog(connection: Connection) -> Backlog:
    """How many messages await a final report, and how many are due for a check."""
    row = await connection.fetchrow(_BACKLOG)
    assert row is not None
    return Backlog(row["awaiting"], row["due"])
