"""Whose numbers a tenant may send from: its own and unassigned ones, never another tenant's.

A number assigned to a tenant (``smsgateway sender assign``) carries that tenant's traffic:
replies and STOPs to it are the tenant's. A message of another tenant from it would hand its
recipients' answers to the wrong tenant, so accept and preview refuse it
(``sender_of_another_tenant``), whether the caller named the number or it is the default
sender. Admin keys may send from any number. The check is made when a message is accepted; a
number assigned later does not stop messages already accepted.
"""

from __future__ import annotations

import asyncpg

from smsgateway.domain.phone import Sender, normalise_address
from smsgateway.domain.tenancy import SenderOfAnotherTenant, viewer_for
from smsgateway.store.api_keys import ApiKeyRecord
from smsgateway.store.batching import BatchLookup
from smsgateway.store.senders import SenderProbe, owned_by_other_tenants


class SenderOwnership:
    """Refuses a tenant's message from another tenant's number; one per process, sharing one
    lookup among concurrent accepts (as their opt-out lookups are)."""

    def __init__(self, pool: asyncpg.Pool, *, acquire_timeout: float = 1.0) -> None:
        self._foreign: BatchLookup[SenderProbe] = BatchLookup(
            pool, owned_by_other_tenants, max_concurrent_lookups=1, acquire_timeout=acquire_timeout
        )

    async def check(self, sender: Sender | None, key: ApiKeyRecord, *, default: bool) -> None:
        """Raises ``SenderOfAnotherTenant`` if ``key``'s tenant may not send from ``sender``
        (``default``: the caller named none, the gateway's default sender was taken);
        ``DatabaseUnavailableError`` when Postgres cannot say."""
        if sender is None or viewer_for(key.tenant, key.scopes).sees_all:
            return
        number = normalise_address(sender.value)
        if await self._foreign.lookup([(number, key.tenant)]):
            raise SenderOfAnotherTenant(sender.value, default=default)
