"""Personal-data retention: each tenant's window, and the sweep steps that apply it.

The window that applies to a tenant is its own (``retention_policy``, set by an admin) or the
gateway's (SMSGW_REDACT_AFTER_DAYS, SMSGW_DELETE_AFTER_DAYS); what each step redacts and
deletes, and what it never touches, is in :mod:`smsgateway.store.personal_data`. Each step
walks the tenants that have data, deleting before redacting (no point blanking a row about to
go), one bounded statement at a time until a statement comes back short, with a pause after
each that changed rows (SMSGW_RETENTION_PAUSE_MS) so that accepts are not starved meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from smsgateway.domain.retention import RetentionWindow, window_for
from smsgateway.store import personal_data, retention_policies

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.store.pool import Connection

# A store statement: (connection, tenant, *, older_than, limit) -> rows changed.
Statement = Callable[..., Awaitable[int]]

Pause = Callable[[], Awaitable[None]]
"""Awaited after each statement that changed rows: the sweep's throttle."""


async def _no_pause() -> None:
    return None


@dataclass(frozen=True, slots=True)
class Swept:
    """Rows one step changed: messages, inbound messages and tenant events."""

    messages: int = 0
    inbound_messages: int = 0
    tenant_events: int = 0

    def __add__(self, other: Swept) -> Swept:
        return Swept(
            self.messages + other.messages,
            self.inbound_messages + other.inbound_messages,
            self.tenant_events + other.tenant_events,
        )

    @property
    def total(self) -> int:
        return self.messages + self.inbound_messages + self.tenant_events


async def delete_expired(
    connection: Connection, default: RetentionWindow, batch_size: int, pause: Pause = _no_pause
) -> Swept:
    """Deletes, tenant by tenant, what is older than its window's ``delete_after``."""
    return await _sweep(
        connection,
        default,
        batch_size,
        pause,
        lambda window: window.delete_after,
        _Steps(
            personal_data.delete_inbound,
            personal_data.delete_messages,
            personal_data.delete_tenant_events,
        ),
    )


async def redact_expired(
    connection: Connection, default: RetentionWindow, batch_size: int, pause: Pause = _no_pause
) -> Swept:
    """Redacts, tenant by tenant, what is older than its window's ``redact_after``."""
    return await _sweep(
        connection,
        default,
        batch_size,
        pause,
        lambda window: window.redact_after,
        _Steps(
            personal_data.redact_inbound,
            personal_data.redact_messages,
            personal_data.redact_tenant_events,
        ),
    )


@dataclass(frozen=True, slots=True)
class _Steps:
    """The store statements of one kind of sweep (delete or redact), one per table group."""

    inbound: Statement
    messages: Statement
    tenant_events: Statement


async def _sweep(
    connection: Connection,
    default: RetentionWindow,
    batch_size: int,
    pause: Pause,
    age_of: Callable[[RetentionWindow], timedelta | None],
    steps: _Steps,
) -> Swept:
    def until_short(statement: Statement, tenant: str | None, age: timedelta) -> Awaitable[int]:
        return _until_short(batch_size, pause, statement, connection, tenant, age)

    swept = Swept()
    for tenant, window in await _windows(connection, default):
        age = age_of(window)
        if age is None:
            continue

        inbound = await until_short(steps.inbound, tenant, age)
        if tenant is None:
            swept += Swept(inbound_messages=inbound)
            continue
        messages = await until_short(steps.messages, tenant, age)
        events = await until_short(steps.tenant_events, tenant, age)
        swept += Swept(messages, inbound, events)
    return swept


async def _windows(
    connection: Connection, default: RetentionWindow
) -> list[tuple[str | None, RetentionWindow]]:
    """Each tenant with data and its window; None stands for data of no tenant (inbound
    messages to unassigned numbers), under the gateway's window."""
    overrides = await retention_policies.all_overrides(connection)
    if default.keeps_everything and all(w.keeps_everything for w in overrides.values()):
        return []
    tenants: list[str | None] = [*await personal_data.tenants_with_data(connection), None]
    return [(tenant, window_for(tenant, default, overrides)) for tenant in tenants]


async def _until_short(
    batch_size: int,
    pause: Pause,
    statement: Statement,
    connection: Connection,
    tenant: str | None,
    older_than: timedelta,
) -> int:
    """Repeats ``statement`` for ``tenant``'s rows older than ``older_than`` (at most
    ``batch_size`` each) until it changes fewer, pausing after each that changed any."""
    total = 0
    while True:
        changed = await statement(connection, tenant, older_than=older_than, limit=batch_size)
        total += changed
        if changed:
            await pause()
        if changed < batch_size:
            return total


@dataclass(frozen=True, slots=True)
class RetentionView:
    """The window that applies to a tenant; ``stored`` False means the gateway's default."""

    tenant: str
    window: RetentionWindow
    stored: bool
    updated_at: datetime | None = None
    updated_by: str | None = None


async def show_retention(
    pool: asyncpg.Pool, default: RetentionWindow, tenant: str
) -> RetentionView:
    async with pool.acquire() as connection:
        stored = await retention_policies.get_override(connection, tenant)
    if stored is None:
        return RetentionView(tenant, default, stored=False)
    return RetentionView(tenant, stored.window, True, stored.updated_at, stored.updated_by)


async def set_retention(
    pool: asyncpg.Pool, tenant: str, window: RetentionWindow, *, changed_by: str
) -> RetentionView:
    """Stores ``tenant``'s own window; the next sweep of every process applies it."""
    async with pool.acquire() as connection:
        stored = await retention_policies.set_override(
            connection, tenant, window, updated_by=changed_by
        )
    return RetentionView(tenant, stored.window, True, stored.updated_at, stored.updated_by)


async def clear_retention(
    pool: asyncpg.Pool, default: RetentionWindow, tenant: str
) -> RetentionView:
    """Removes ``tenant``'s own window: the gateway's applies again."""
    async with pool.acquire() as connection:
        await retention_policies.delete_override(connection, tenant)
    return RetentionView(tenant, default, stored=False)
