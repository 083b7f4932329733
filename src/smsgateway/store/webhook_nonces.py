"""Nonces of signed Sinch callbacks, shared by every gateway process.

A nonce is recorded once its callback's signature has verified; a nonce any process recorded
before is a replay (counted, not refused). Concurrent callers share one statement
(``record_first_uses``). Rows are kept for twice the signature window, then the retention job
deletes them (``store.retention.delete_webhook_nonces``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

# DISTINCT: a nonce twice in one batch is inserted once, and only its first caller is told so.
_RECORD = """
INSERT INTO webhook_nonce (nonce)
SELECT DISTINCT unnest($1::text[])
ON CONFLICT (nonce) DO NOTHING
RETURNING nonce
"""


async def record_first_uses(connection: Connection, nonces: Sequence[str]) -> list[bool]:
    """Records ``nonces``; for each, in order, whether it was its first use anywhere (a nonce
    repeated in ``nonces`` counts as first only the first time)."""
    rows = await connection.fetch(_RECORD, list(nonces))
    new = {row["nonce"] for row in rows}
    first: list[bool] = []
    for nonce in nonces:
        first.append(nonce in new)
        new.discard(nonce)
    return first
