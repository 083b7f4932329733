"""Counting replays of signed Sinch callbacks, across every gateway process.

A nonce is recorded in Postgres after its callback's signature has verified, so a nonce seen
again by any process of the gateway is counted as a replay, not only one seen again by the
process that first had it. (A replay is applied all the same: it may be Sinch's genuine retry,
and storing a report twice is a no-op.) Concurrent callbacks share one statement and one
commit. When Postgres cannot answer, ``DatabaseUnavailableError`` is raised; the caller then
goes on without counting.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from smsgateway.store.batching import BatchCall
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.webhook_nonces import record_first_uses

ACQUIRE_TIMEOUT_SECONDS = 1.0

# Postgres could not take the nonce now, but may in a moment.
_TRANSIENT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    *UNAVAILABLE_ERRORS,
    asyncpg.QueryCanceledError,
    asyncpg.TooManyConnectionsError,
)


class WebhookNonces:
    """Records nonces of verified callbacks; one per process."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._batches: BatchCall[str, bool] = BatchCall(
            pool, record_first_uses, acquire_timeout=ACQUIRE_TIMEOUT_SECONDS
        )

    async def first_use(self, nonce: str) -> bool:
        """Records ``nonce``; False if any process recorded it before (a replay)."""
        try:
            return await self._batches.call(nonce)
        except _TRANSIENT_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
