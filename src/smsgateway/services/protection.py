"""Protection policies: each caller's policy (gateway default, tenant, key), and changing them.

Policies are few and read on every accept, so each process keeps all of them in memory and
reads them again at most every ``refresh_seconds`` (SMSGW_POLICY_REFRESH_SECONDS): one query
per interval, none per message. A change takes effect in every process within that interval.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from smsgateway.domain.counters import (
    CounterState,
    Draw,
    Verdict,
    decide,
    seconds_to_period_end,
    spend_draws,
    velocity_draws,
)
from smsgateway.domain.destination_policy import NO_RESTRICTION, DestinationPolicy, PolicyHit
from smsgateway.domain.errors import RecipientsRefused, SpendCapReached
from smsgateway.domain.phone import PhoneNumber
from smsgateway.domain.pricing import PriceTable, estimate_cost
from smsgateway.domain.protection import ProtectionPolicy, parse_protection_policy
from smsgateway.domain.recipients import AcceptedRecipient, RefusedRecipient
from smsgateway.observability.protection_metrics import (
    POLICY_MONITORED,
    POLICY_REFUSALS,
    SPEND_THRESHOLD_REACHED,
    country_label,
)
from smsgateway.services.velocity import VelocityCounters
from smsgateway.store import protection as store
from smsgateway.store import protection_policies as policy_store
from smsgateway.store.api_keys import ApiKeyRecord
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError


@dataclass(frozen=True)
class _Snapshot:
    tenants: Mapping[str, ProtectionPolicy]
    keys: Mapping[uuid.UUID, ProtectionPolicy]
    read_at: float


class PolicyBook:
    """Every stored policy, kept per process and refreshed on an interval."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        default: DestinationPolicy,
        *,
        refresh_seconds: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._default = ProtectionPolicy(destinations=default)
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._snapshot: _Snapshot | None = None
        self._reading = asyncio.Lock()

    @property
    def default(self) -> ProtectionPolicy:
        return self._default

    async def policy_for(self, key: ApiKeyRecord) -> ProtectionPolicy:
        """The key's tenant's policy (else the gateway's), narrowed by the key's own, if any."""
        snapshot = self._snapshot
        if snapshot is None or self._monotonic() - snapshot.read_at >= self._refresh_seconds:
            snapshot = await self._refresh()
        policy = snapshot.tenants.get(key.tenant, self._default)
        narrower = snapshot.keys.get(key.id)
        return policy if narrower is None else policy.narrowed_by(narrower)

    def forget(self) -> None:
        """Read the policies again on next use (after a change made in this process)."""
        self._snapshot = None

    async def _refresh(self) -> _Snapshot:
        async with self._reading:  # one read for everyone waiting
            current = self._snapshot
            if current is not None and self._monotonic() - current.read_at < self._refresh_seconds:
                return current
            try:
                async with self._pool.acquire(timeout=1.0) as connection:
                    stored = await policy_store.all_policies(connection)
            except UNAVAILABLE_ERRORS as exc:
                if current is not None:
                    return current  # the accept itself will find out whether Postgres is back
                raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
            base = self._default.destinations
            tenants = {
                row.tenant: parse_protection_policy(row.document, base=base)
                for row in stored
                if row.api_key_id is None
            }
            keys = {
                row.api_key_id: parse_protection_policy(row.document, base=NO_RESTRICTION)
                for row in stored
                if row.api_key_id is not None
            }
            self._snapshot = _Snapshot(tenants, keys, self._monotonic())
            return self._snapshot


def count_policy_hits(hits: tuple[PolicyHit, ...]) -> None:
    for hit in hits:
        metric = POLICY_REFUSALS if hit.enforced else POLICY_MONITORED
        metric.labels(reason=hit.code.value, country=country_label(hit.region)).inc()


def draws_for(
    policy: ProtectionPolicy,
    *,
    key: ApiKeyRecord,
    recipients: tuple[AcceptedRecipient, ...],
    opted_out: frozenset[str],
    segments: int,
    price_table: PriceTable | None,
    now: datetime,
    time_zone: ZoneInfo,
    segments_by_recipient: Mapping[str, int] | None = None,
) -> tuple[Draw, ...]:
    """The counters a message takes: one per destination prefix, country and the key (per
    recipient sent to), and the tenant's spend totals (segments, and money with prices).
    ``segments`` parts per recipient, or as ``segments_by_recipient`` says (a templated text)."""
    if not policy.velocity.active and not policy.spend.active:
        return ()
    sent = [(r.index, r.number) for r in recipients if r.number.e164 not in opted_out]
    draws = velocity_draws(policy.velocity, tenant=key.tenant, api_key=str(key.id), recipients=sent)
    numbers = [number for _, number in sent]
    draws.extend(
        spend_draws(
            policy.spend,
            tenant=key.tenant,
            now=now,
            time_zone=time_zone,
            segments=sum(
                segments
                if segments_by_recipient is None
                else segments_by_recipient.get(number.e164, segments)
                for number in numbers
            ),
            amount=_amount(price_table, segments, numbers, segments_by_recipient),
        )
    )
    return tuple(draws)


def _amount(
    table: PriceTable | None,
    segments: int,
    numbers: list[PhoneNumber],
    segments_by_recipient: Mapping[str, int] | None,
) -> Decimal | None:
    # Unpriced countries count as nothing: the cap in money covers what the table can price.
    if table is None:
        return None
    return estimate_cost(
        table, segments=segments, recipients=numbers, segments_by_recipient=segments_by_recipient
    ).total


def refusal_for(
    verdict: Verdict,
    recipients: tuple[AcceptedRecipient, ...],
    *,
    now: datetime,
    time_zone: ZoneInfo,
) -> RecipientsRefused | SpendCapReached:
    """The 422 for a message the counters refused; counts it in the metrics."""
    by_index = {recipient.index: recipient for recipient in recipients}
    if verdict.velocity_refused:
        refused = []
        for index, label in verdict.velocity_refused:
            recipient = by_index[index]
            POLICY_REFUSALS.labels(
                reason="velocity_limited", country=country_label(recipient.number.region)
            ).inc()
            refused.append(
                RefusedRecipient(
                    index,
                    recipient.raw,
                    "velocity_limited",
                    _velocity_text(label, verdict.retry_after),
                )
            )
        return RecipientsRefused(
            refused,
            accepted=len(recipients) - len(refused),
            retry_after=verdict.retry_after,
        )
    assert verdict.spend_refused is not None
    POLICY_REFUSALS.labels(reason="spend_cap_reached", country="all").inc()
    return SpendCapReached(
        f"{_spend_text(verdict.spend_refused)}; nothing was sent.",
        retry_after=seconds_to_period_end(verdict.spend_refused.label, now, time_zone),
    )


def _velocity_text(label: str, retry_after: int | None) -> str:
    return (
        f"Too many messages to this {label.replace('_', ' ')} in the last while; "
        f"retry after {retry_after} seconds."
    )


def _spend_text(draw: Draw) -> str:
    period = "daily" if draw.label.startswith("day") else "monthly"
    unit = "segments" if draw.label.endswith("segments") else "spend"
    return f"This message would take the {period} {unit} past its cap of {draw.capacity}"


@dataclass(frozen=True)
class LimitedRecipient:
    """A recipient that sending now would refuse for a velocity limit (``velocity_limited``)
    or a spend cap (``spend_cap_reached``), and in how many seconds that may change."""

    index: int
    raw: str
    code: str
    message: str
    retry_after: int


async def preview_limits(
    pool: asyncpg.Pool,
    counters: VelocityCounters,
    policy: ProtectionPolicy,
    *,
    key: ApiKeyRecord,
    recipients: tuple[AcceptedRecipient, ...],
    segments: int,
    price_table: PriceTable | None,
    now: datetime,
    time_zone: ZoneInfo,
    segments_by_recipient: Mapping[str, int] | None = None,
) -> tuple[LimitedRecipient, ...]:
    """The recipients the velocity and spend counters would refuse if the message were sent
    now, read from the counters as they stand: nothing is taken or locked. Recipients who
    opted out count as if they had not (sending leaves them out of the counters)."""
    draws = draws_for(
        policy,
        key=key,
        recipients=recipients,
        opted_out=frozenset(),
        segments=segments,
        price_table=price_table,
        now=now,
        time_zone=time_zone,
        segments_by_recipient=segments_by_recipient,
    )
    if not draws:
        return ()
    # Velocity counters kept in Redis are read there; the rest (spend) from Postgres.
    in_redis = await counters.levels([draw for draw in draws if draw.is_velocity])
    in_postgres = [draw.key for draw in draws if in_redis is None or draw.key not in in_redis]
    try:
        async with pool.acquire(timeout=1.0) as connection:
            ledger = await store.read_counters(connection, in_postgres)
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
    for counter, level in (in_redis or {}).items():
        # A level as of Redis's clock a moment ago; what drained since is too little to matter.
        ledger.states[counter] = CounterState(level, ledger.now)
    verdict = decide(ledger, draws)
    if verdict.passed:
        return ()
    velocity = dict(verdict.velocity_refused)
    spend = verdict.spend_refused
    limited = []
    for recipient in recipients:
        label = velocity.get(recipient.index)
        if label is not None:
            assert verdict.retry_after is not None
            limited.append(
                LimitedRecipient(
                    recipient.index,
                    recipient.raw,
                    "velocity_limited",
                    _velocity_text(label, verdict.retry_after),
                    verdict.retry_after,
                )
            )
        elif spend is not None:
            limited.append(
                LimitedRecipient(
                    recipient.index,
                    recipient.raw,
                    "spend_cap_reached",
                    f"{_spend_text(spend)}.",
                    seconds_to_period_end(spend.label, now, time_zone),
                )
            )
    return tuple(limited)


def count_warnings(verdict: Verdict | None) -> None:
    if verdict is None:
        return
    for draw in verdict.warnings:
        SPEND_THRESHOLD_REACHED.labels(cap=draw.label).inc()


# -- Reading and changing policies (CLI and admin API) ----------------------------------------


@dataclass(frozen=True)
class PolicyView:
    """A tenant's (or key's) policy as it applies, and whether it is stored or the default."""

    tenant: str
    api_key_id: uuid.UUID | None
    policy: ProtectionPolicy
    stored: dict[str, Any] | None
    updated_at: datetime | None
    updated_by: str | None


async def show_policy(
    pool: asyncpg.Pool, book: PolicyBook, tenant: str, api_key_id: uuid.UUID | None = None
) -> PolicyView:
    async with pool.acquire() as connection:
        stored = await policy_store.all_policies(connection)
    tenant_row = next((r for r in stored if r.tenant == tenant and r.api_key_id is None), None)
    policy = (
        book.default
        if tenant_row is None
        else parse_protection_policy(tenant_row.document, base=book.default.destinations)
    )
    row = tenant_row
    if api_key_id is not None:
        row = next((r for r in stored if r.api_key_id == api_key_id), None)
        if row is not None:
            policy = policy.narrowed_by(parse_protection_policy(row.document, base=NO_RESTRICTION))
    return PolicyView(
        tenant,
        api_key_id,
        policy,
        None if row is None else row.document,
        None if row is None else row.updated_at,
        None if row is None else row.updated_by,
    )


async def set_policy(
    pool: asyncpg.Pool,
    book: PolicyBook,
    *,
    tenant: str,
    document: Mapping[str, object] | None,
    changed_by: str,
    api_key_id: uuid.UUID | None = None,
) -> PolicyView:
    """Stores a policy document (checked first: ``InvalidPolicy`` names the bad key), or
    removes it with None; the change log records ``changed_by`` and the time."""
    stored: dict[str, Any] | None = None
    if document is not None:
        base = book.default.destinations if api_key_id is None else NO_RESTRICTION
        parse_protection_policy(document, base=base)
        stored = dict(document)
    async with pool.acquire() as connection:
        await policy_store.put_policy(
            connection,
            tenant=tenant,
            api_key_id=api_key_id,
            document=stored,
            changed_by=changed_by,
        )
    book.forget()
    return await show_policy(pool, book, tenant, api_key_id)


async def policy_changes(pool: asyncpg.Pool, tenant: str) -> list[policy_store.PolicyChange]:
    async with pool.acquire() as connection:
        return await policy_store.policy_changes(connection, tenant)
