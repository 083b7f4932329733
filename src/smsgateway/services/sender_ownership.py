"""Whose numbers a tenant may send from: its own and unassigned ones, never another tenant's.

A number assigned to a tenant (``smsgateway sender assign``) carries that tenant's traffic:
replies and STOPs to it are the tenant's. A message of another tenant from it would hand its
recipients' answers to the wrong tenant, so accept and preview refuse it
(``sender_of_another_tenant``), whether the caller named the number or it is the default
sender. Admin keys may send from any number. The check is made when a message is accepted; a
number assigned later does not stop messages already accepted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg

from smsgateway.domain.phone import Sender, normalise_address
from smsgateway.domain.tenancy import SenderOfAnotherTenant, viewer_for
from smsgateway.store.api_keys import ApiKeyRecord
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.senders import sender_owners


class SenderOwnership:
    """Refuses a tenant's message from another tenant's number; one per process.

    The assignments (a handful of rows, changed by an operator now and then) are kept per
    process and read again every ``refresh_seconds``, as destination policies are: asking
    Postgres on every accept was a round trip per batch of accepts for an answer that almost
    never changes. An assignment takes effect within ``refresh_seconds``.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        refresh_seconds: float = 5.0,
        acquire_timeout: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._refresh_seconds = refresh_seconds
        self._acquire_timeout = acquire_timeout
        self._monotonic = monotonic
        self._owners: dict[str, str] = {}
        self._read_at: float | None = None
        self._reading = asyncio.Lock()

    async def check(self, sender: Sender | None, key: ApiKeyRecord, *, default: bool) -> None:
        """Raises ``SenderOfAnotherTenant`` if ``key``'s tenant may not send from ``sender``
        (``default``: the caller named none, the gateway's default sender was taken);
        ``DatabaseUnavailableError`` when Postgres cannot say."""
        if sender is None or viewer_for(key.tenant, key.scopes).sees_all:
            return
        if self._stale():
            await self._refresh()
        owner = self._owners.get(normalise_address(sender.value))
        if owner is not None and owner != key.tenant:
            raise SenderOfAnotherTenant(sender.value, default=default)

    def _stale(self) -> bool:
        return self._read_at is None or self._monotonic() - self._read_at >= self._refresh_seconds

    async def _refresh(self) -> None:
        async with self._reading:  # one read for every accept that finds the snapshot old
            if self._stale():
                self._owners = await self._read()

    async def _read(self) -> dict[str, str]:
        started = self._monotonic()
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as connection:
                owners = await sender_owners(connection)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        self._read_at = started
        return owners
