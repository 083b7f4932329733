"""Opt-outs for operators (list, look up, add, remove) and for the accept path (which of these
recipients may not be sent to)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import asyncpg

from smsgateway.observability import report_metrics as metrics
from smsgateway.store import opt_outs as store
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.opt_outs import OptChange, OptOutRecord

ACQUIRE_TIMEOUT_SECONDS = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OptOutService:
    """The operators' view of opt-outs; numbers are E.164, checked by the caller."""

    def __init__(self, pool: asyncpg.Pool, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._pool = pool
        self._clock = clock

    async def list_active(
        self, *, before: tuple[datetime, str] | None, limit: int
    ) -> list[OptOutRecord]:
        """Numbers opted out now, most recent first."""
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                return await store.list_opt_outs(connection, before=before, limit=limit)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc

    async def find(self, msisdn: str) -> OptOutRecord | None:
        """The number's opt-out if it is opted out now, else None."""
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                record = await store.get_opt_out(connection, msisdn)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        return record if record is not None and record.opted_out else None

    async def opt_out(self, msisdn: str, note: str | None) -> OptOutRecord:
        """Opts ``msisdn`` out now (again, if it was); returns the row in force."""
        return await self._change(msisdn, opted_out=True, note=note)

    async def opt_in(self, msisdn: str) -> bool:
        """Lifts the number's opt-out; False if it was not opted out."""
        if await self.find(msisdn) is None:
            return False
        await self._change(msisdn, opted_out=False, note=None)
        return True

    async def _change(self, msisdn: str, *, opted_out: bool, note: str | None) -> OptOutRecord:
        change = OptChange(msisdn, opted_out, self._clock(), "api", note=note)
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                record = await store.record_change(connection, change)
                if record is None:
                    # An inbound stamped later than our clock decided already; it stands.
                    record = await store.get_opt_out(connection, msisdn)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        assert record is not None, "the row exists once a change was recorded"
        metrics.OPT_OUT_CHANGES.labels("opt_out" if opted_out else "opt_in", "api").inc()
        return record


async def opted_out_among(connection: asyncpg.Pool, msisdns: Sequence[str]) -> frozenset[str]:
    """Those of ``msisdns`` opted out now (for the accept path, on its own connection)."""
    async with connection.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as lent:
        return await store.opted_out_among(lent, msisdns)
