"""Opt-outs for callers (list, look up, add, lift) and for the accept path (which of these
recipients may not be sent to from this sender of this tenant).

A caller works on its own tenant's rows: one per number for every message of the tenant
(no sender), or per number and sender for one of the tenant's numbers. An admin key sees every
row, and its rows without a sender are global (every tenant, every sender).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

import asyncpg

from smsgateway.domain.phone import normalise_address
from smsgateway.domain.tenancy import OptOutTarget, SenderNotAssigned, Viewer
from smsgateway.observability import report_metrics as metrics
from smsgateway.store import opt_outs as store
from smsgateway.store import senders as sender_store
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.opt_outs import OptChange, OptOutProbe, OptOutRecord

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection

ACQUIRE_TIMEOUT_SECONDS = 1.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OptOutService:
    """Callers' view of opt-outs; numbers are E.164, checked by the caller."""

    def __init__(self, pool: asyncpg.Pool, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self._pool = pool
        self._clock = clock

    async def list_active(
        self, viewer: Viewer, *, before: tuple[datetime, UUID] | None, limit: int
    ) -> list[OptOutRecord]:
        """Opt-outs in force that ``viewer`` sees, most recent first."""
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                return await store.list_opt_outs(
                    connection, tenant=viewer.tenant, before=before, limit=limit
                )
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc

    async def find(self, viewer: Viewer, msisdn: str, sender: str | None) -> OptOutRecord | None:
        """The viewer's opt-out of ``msisdn`` (for ``sender``, else for all its messages) if
        it is in force, else None."""
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                target = await _target(connection, viewer, sender)
                record = await store.get_opt_out(connection, msisdn, target.tenant, target.sender)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        return record if record is not None and record.opted_out else None

    async def opt_out(
        self, viewer: Viewer, msisdn: str, sender: str | None, note: str | None
    ) -> OptOutRecord:
        """Opts ``msisdn`` out now (again, if it was); returns the row in force."""
        return await self._change(viewer, msisdn, sender, opted_out=True, note=note)

    async def opt_in(self, viewer: Viewer, msisdn: str, sender: str | None) -> bool:
        """Lifts the viewer's opt-out of the number; False if it was not opted out."""
        if await self.find(viewer, msisdn, sender) is None:
            return False
        await self._change(viewer, msisdn, sender, opted_out=False, note=None)
        return True

    async def _change(
        self,
        viewer: Viewer,
        msisdn: str,
        sender: str | None,
        *,
        opted_out: bool,
        note: str | None,
    ) -> OptOutRecord:
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                target = await _target(connection, viewer, sender)
                change = OptChange(
                    msisdn,
                    opted_out,
                    self._clock(),
                    "api",
                    note=note,
                    tenant=target.tenant,
                    sender=target.sender,
                )
                record = await store.record_change(connection, change)
                if record is None:
                    # An inbound stamped later than our clock decided already; it stands.
                    record = await store.get_opt_out(
                        connection, msisdn, target.tenant, target.sender
                    )
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        assert record is not None, "the row exists once a change was recorded"
        metrics.OPT_OUT_CHANGES.labels("opt_out" if opted_out else "opt_in", "api").inc()
        return record


async def _target(connection: Connection, viewer: Viewer, sender: str | None) -> OptOutTarget:
    """The row a viewer's opt-out of a number (from ``sender``, if given) is kept in; raises
    ``SenderNotAssigned`` for a sender that is not the viewer's tenant's."""
    if sender is None:
        return OptOutTarget(viewer.tenant, None)
    number = normalise_address(sender)
    owner = await sender_store.owner_of(connection, number)
    if not viewer.sees_all and owner != viewer.tenant:
        raise SenderNotAssigned(number, field="sender")
    return OptOutTarget(owner, number)


async def opted_out_among(
    connection: asyncpg.Pool, probes: Sequence[OptOutProbe]
) -> frozenset[OptOutProbe]:
    """Those of ``probes`` opted out now (for the accept path, on its own connection)."""
    async with connection.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as lent:
        return await store.opted_out_among(lent, probes)
