"""What the retention job deletes, and which kept delivery reports it can apply now.

Every delete takes at most ``limit`` rows, oldest first, skipping rows another transaction
holds, so no statement holds many locks for long and sweepers in several processes share the
work instead of queueing on it; the job repeats a delete until it comes back short.

- ``unmatched_report``: rows received longer ago than the retention period, of either kind.
- ``idempotency_key``: keys older than ``idempotency.KEPT_HOURS``, which accept no longer honours.
- ``webhook_nonce``: nonces seen longer ago than given (twice the signature window: no timestamp
  the webhook still accepts can carry them again).
- ``batches_with_kept_reports``: batch ids of kept ``unknown_batch`` reports that a message has
  recorded meanwhile (the dispatcher applies them itself, unless it failed right then).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from smsgateway.store.idempotency import KEPT_HOURS

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

_BATCHES_WITH_KEPT_REPORTS = """
SELECT DISTINCT u.batch_id
FROM unmatched_report AS u
WHERE u.kind = 'unknown_batch'
  AND EXISTS (SELECT 1 FROM sms_log AS m WHERE m.sinch_batch_id = u.batch_id)
ORDER BY u.batch_id
LIMIT $1
"""

_DELETE_UNMATCHED_REPORTS = """
DELETE FROM unmatched_report
WHERE id IN (SELECT id FROM unmatched_report
             WHERE received_at < now() - $1::interval
             ORDER BY received_at
             LIMIT $2
             FOR UPDATE SKIP LOCKED)
"""

_DELETE_IDEMPOTENCY_KEYS = f"""
DELETE FROM idempotency_key AS k
USING (SELECT api_key_id, idempotency_key FROM idempotency_key
       WHERE created_at <= now() - interval '{KEPT_HOURS} hours'
       ORDER BY created_at
       LIMIT $1
       FOR UPDATE SKIP LOCKED) AS expired
WHERE k.api_key_id = expired.api_key_id AND k.idempotency_key = expired.idempotency_key
"""

_DELETE_WEBHOOK_NONCES = """
DELETE FROM webhook_nonce
WHERE nonce IN (SELECT nonce FROM webhook_nonce
                WHERE seen_at < now() - $1::interval
                ORDER BY seen_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED)
"""


async def batches_with_kept_reports(connection: Connection, limit: int) -> list[str]:
    """Up to ``limit`` batch ids that both a message and kept ``unknown_batch`` reports have."""
    rows = await connection.fetch(_BATCHES_WITH_KEPT_REPORTS, limit)
    return [row["batch_id"] for row in rows]


async def delete_unmatched_reports(
    connection: Connection, *, older_than: timedelta, limit: int
) -> int:
    """Deletes up to ``limit`` unmatched reports received more than ``older_than`` ago."""
    return _count(await connection.execute(_DELETE_UNMATCHED_REPORTS, older_than, limit))


async def delete_expired_idempotency_keys(connection: Connection, *, limit: int) -> int:
    """Deletes up to ``limit`` idempotency keys past their 24 hours."""
    return _count(await connection.execute(_DELETE_IDEMPOTENCY_KEYS, limit))


async def delete_webhook_nonces(
    connection: Connection, *, older_than: timedelta, limit: int
) -> int:
    """Deletes up to ``limit`` webhook nonces first seen more than ``older_than`` ago."""
    return _count(await connection.execute(_DELETE_WEBHOOK_NONCES, older_than, limit))


def _count(status: str) -> int:
    # asyncpg answers a DELETE with its command tag, "DELETE <rows>".
    return int(status.split()[-1])
