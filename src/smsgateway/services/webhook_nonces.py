"""Replay protection for signed Sinch callbacks, across every gateway process.

A nonce is recorded in Postgres after its callback's signature has verified, so a callback
replayed to any process of the gateway is refused, not only one replayed to the process that
saw it. Concurrent callbacks share one statement and one commit. When Postgres cannot answer,
``DatabaseUnavailableError`` is raised (the webhook answers 503, and Sinch retries with a fresh
nonce).
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
