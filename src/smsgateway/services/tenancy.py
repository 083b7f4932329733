"""Tenancy for operators and callers: which tenant owns which number, where a tenant's own
events go, and the tenant's event log (list, replay).

Numbers are read as inbound ``to`` is (``phone.normalise_address``), so ``+1415...`` and
``1415...`` are the same number here and in the traffic.
"""

from __future__ import annotations

import uuid

import asyncpg

from smsgateway.domain.callback_targets import check_callback_url
from smsgateway.domain.phone import normalise_address
from smsgateway.store import senders as store
from smsgateway.store import tenant_events
from smsgateway.store.callbacks import CallbackEvent, ReplayRefusal
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.senders import SenderAssignment, TenantSetting

ACQUIRE_TIMEOUT_SECONDS = 1.0


class InvalidTenantCallbackUrlError(ValueError):
    """A tenant callback URL that callbacks may not go to (see domain.callback_targets)."""


async def assign_sender(pool: asyncpg.Pool, sender: str, tenant: str) -> SenderAssignment:
    """Gives the number to ``tenant``: its inbound messages and STOPs from now on are the
    tenant's (those received before stay with whoever owned the number then)."""
    if not tenant.strip():
        raise ValueError("a tenant name cannot be empty")
    async with pool.acquire() as connection:
        return await store.assign_sender(connection, normalise_address(sender), tenant)


async def unassign_sender(pool: asyncpg.Pool, sender: str) -> bool:
    async with pool.acquire() as connection:
        return await store.unassign_sender(connection, normalise_address(sender))


async def list_senders(pool: asyncpg.Pool) -> list[SenderAssignment]:
    async with pool.acquire() as connection:
        return await store.list_senders(connection)


async def set_tenant_callback_url(
    pool: asyncpg.Pool, tenant: str, url: str | None, *, allow_private: bool = False
) -> TenantSetting:
    """Where ``message.inbound`` and ``opt_out.changed`` events of ``tenant`` go (None: none
    are queued from now on); the URL must pass the callback target policy."""
    if url is not None:
        refusal = check_callback_url(url, allow_private=allow_private)
        if refusal is not None:
            raise InvalidTenantCallbackUrlError(
                f"{url!r} cannot receive callbacks ({refusal.value}): it must be "
                "http(s) to a public address"
            )
    async with pool.acquire() as connection:
        return await store.set_tenant_callback_url(connection, tenant, url)


async def list_tenant_settings(pool: asyncpg.Pool) -> list[TenantSetting]:
    async with pool.acquire() as connection:
        return await store.list_tenant_settings(connection)


async def list_events(
    pool: asyncpg.Pool, tenant: str, *, before_sequence: int | None, limit: int
) -> list[CallbackEvent]:
    """The tenant's own events, newest first, with their attempts."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            return await tenant_events.list_tenant_events(
                connection, tenant, before_sequence=before_sequence, limit=limit
            )
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc


async def replay_event(
    pool: asyncpg.Pool, tenant: str, event_id: uuid.UUID
) -> ReplayRefusal | None:
    """Queues a delivered or failed event of the tenant again, due now, same id."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            return await tenant_events.replay_tenant_event(connection, tenant, event_id)
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
