"""Velocity and spend counters: what a message asks of them, and the verdict.

Pure: the store locks the counters a batch of messages needs, ``decide`` says in order which
messages pass and what each counter becomes, and the store writes that back in the same
transaction as the messages. So concurrent accepts in several processes never overshoot a cap.
When a batch's totals (``batch_totals``) fit every counter without crossing a warning threshold
(``fits_without_warning``), every message passes, so the store takes the totals in the one
statement that stores the batch instead.

Counters hold an amount used. A velocity counter is a leaky bucket: its amount drains at
``limit / window`` per second, and a recipient passes while the amount after it stays within
``limit * burst`` (so a quiet destination may take a short burst, and the long-run rate is the
limit). A spend counter is a plain total; its period (day or month, on the calendar of the
configured time zone) is part of its key, so a new period starts from nothing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from smsgateway.domain.phone import PhoneNumber
from smsgateway.domain.protection import SpendCaps, VelocityLimits


@dataclass(frozen=True, slots=True)
class Draw:
    """One counter a message needs: ``amount`` more of it, within ``capacity``.

    A velocity draw drains at ``drain_per_second`` and names the recipients (input indexes)
    it is for; a spend draw (``drain_per_second`` 0) is for the whole message.
    """

    key: str
    amount: Decimal
    capacity: Decimal
    drain_per_second: float = 0.0
    indexes: tuple[int, ...] = ()
    warn_at: Decimal | None = None
    label: str = ""
    """What the counter is, for people and metrics: prefix, country, api_key, day_segments..."""

    @property
    def is_velocity(self) -> bool:
        return self.drain_per_second > 0


@dataclass(frozen=True, slots=True)
class CounterState:
    amount: Decimal
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Verdict:
    """``passed``; else the recipients refused for velocity (with ``retry_after`` seconds) or
    the spend draw that would cross its cap. ``warnings`` are spend draws that crossed their
    warning threshold with this message."""

    passed: bool
    velocity_refused: tuple[tuple[int, str], ...] = ()
    """(input index, counter label) of each recipient refused for velocity."""
    spend_refused: Draw | None = None
    retry_after: int | None = None
    warnings: tuple[Draw, ...] = ()


@dataclass
class Ledger:
    """The counters a batch locked, as they become while ``decide`` goes through it."""

    now: datetime
    states: dict[str, CounterState]
    touched: set[str] = field(default_factory=set)

    def level(self, draw: Draw) -> Decimal:
        state = self.states.get(draw.key)
        if state is None:
            return Decimal(0)
        if not draw.is_velocity:
            return state.amount
        elapsed = max(0.0, (self.now - state.updated_at).total_seconds())
        drained = Decimal(str(elapsed * draw.drain_per_second))
        return max(Decimal(0), state.amount - drained)

    def take(self, draw: Draw, level: Decimal) -> None:
        self.states[draw.key] = CounterState(level + draw.amount, self.now)
        self.touched.add(draw.key)


def decide(ledger: Ledger, draws: Sequence[Draw]) -> Verdict:
    """Takes all of ``draws`` from ``ledger`` if every one fits, else none; says why not."""
    levels = [ledger.level(draw) for draw in draws]
    velocity_refused: list[tuple[int, str]] = []
    retry_after = 0.0
    spend_refused: Draw | None = None
    for draw, level in zip(draws, levels, strict=True):
        if level + draw.amount <= draw.capacity:
            continue
        if draw.is_velocity:
            velocity_refused.extend((index, draw.label) for index in draw.indexes)
            excess = level + draw.amount - draw.capacity
            retry_after = max(retry_after, float(excess) / draw.drain_per_second)
        elif spend_refused is None:
            spend_refused = draw
    if velocity_refused or spend_refused is not None:
        unique = tuple(sorted(dict(velocity_refused).items()))
        return Verdict(
            passed=False,
            velocity_refused=unique,
            spend_refused=spend_refused,
            retry_after=max(1, math.ceil(retry_after)) if velocity_refused else None,
        )
    warnings: list[Draw] = []
    for draw, level in zip(draws, levels, strict=True):
        ledger.take(draw, level)
        if draw.warn_at is not None and level < draw.warn_at <= level + draw.amount:
            warnings.append(draw)
    return Verdict(passed=True, warnings=tuple(warnings))


def batch_totals(draws_per_message: Iterable[Sequence[Draw]]) -> tuple[Draw, ...] | None:
    """The draws of a batch of messages summed per counter, in key order, or None when two
    messages ask one counter on different terms (their policies differ).

    When every total fits its counter and crosses no warning threshold, ``decide`` would pass
    every message of the batch in turn and warn of nothing (a counter only rises within a
    batch), so the store can take the totals in one statement; when one does not, the store
    lets ``decide`` go through the messages one by one.
    """
    first: dict[str, Draw] = {}
    amounts: dict[str, Decimal] = {}
    for draws in draws_per_message:
        for draw in draws:
            seen = first.get(draw.key)
            if seen is None:
                first[draw.key] = draw
                amounts[draw.key] = draw.amount
                continue
            if (
                seen.capacity != draw.capacity
                or seen.drain_per_second != draw.drain_per_second
                or seen.warn_at != draw.warn_at
            ):
                return None
            amounts[draw.key] += draw.amount
    return tuple(
        Draw(
            key,
            amounts[key],
            draw.capacity,
            draw.drain_per_second,
            warn_at=draw.warn_at,
            label=draw.label,
        )
        for key, draw in sorted(first.items())
    )


def fits_without_warning(level: Decimal, draw: Draw) -> bool:
    """What the one-statement write checks of each total (the SQL twin of this is in
    ``store.protection``): it fits, and crosses no warning threshold on the way."""
    after = level + draw.amount
    if after > draw.capacity:
        return False
    return draw.warn_at is None or not level < draw.warn_at <= after


def destination_prefix(e164: str, digits_dropped: int) -> str:
    """``+4670123`` for ``+46701234567`` with 4 digits dropped; never shorter than +CC."""
    keep = max(3, len(e164) - digits_dropped)
    return e164[:keep]


def velocity_draws(
    limits: VelocityLimits,
    *,
    tenant: str,
    api_key: str,
    recipients: Sequence[tuple[int, PhoneNumber]],
) -> list[Draw]:
    """The velocity counters a message to ``recipients`` (input index, number) needs."""
    if not limits.active or not recipients:
        return []
    per_prefix, per_country, per_api_key = _velocity_terms(limits)
    draws: list[Draw] = []
    if len(recipients) == 1:  # the common case (an OTP), without the grouping
        [(index, number)] = recipients
        if per_prefix is not None:
            prefix = destination_prefix(number.e164, limits.prefix_digits_dropped)
            draws.append(per_prefix.draw(f"velocity:{tenant}:prefix:{prefix}", (index,)))
        if per_country is not None:
            draws.append(per_country.draw(f"velocity:{tenant}:country:{number.region}", (index,)))
    else:
        for kind, terms in (("prefix", per_prefix), ("country", per_country)):
            if terms is None:
                continue
            by_value: dict[str, list[int]] = {}
            for index, number in recipients:
                value = (
                    destination_prefix(number.e164, limits.prefix_digits_dropped)
                    if kind == "prefix"
                    else number.region
                )
                by_value.setdefault(value, []).append(index)
            for value, indexes in by_value.items():
                draws.append(terms.draw(f"velocity:{tenant}:{kind}:{value}", tuple(indexes)))
    if per_api_key is not None:
        draws.append(
            per_api_key.draw(f"velocity:key:{api_key}", tuple(index for index, _ in recipients))
        )
    return draws


@dataclass(frozen=True, slots=True)
class _VelocityTerms:
    """What every draw on one kind of velocity counter shares."""

    label: str
    capacity: Decimal
    drain_per_second: float

    def draw(self, key: str, indexes: tuple[int, ...]) -> Draw:
        return Draw(
            key=key,
            amount=Decimal(len(indexes)),
            capacity=self.capacity,
            drain_per_second=self.drain_per_second,
            indexes=indexes,
            label=self.label,
        )


@functools.lru_cache(maxsize=256)
def _velocity_terms(
    limits: VelocityLimits,
) -> tuple[_VelocityTerms | None, _VelocityTerms | None, _VelocityTerms | None]:
    # Policies are few and draws are made on every accept: work these out once per policy.
    def terms(label: str, limit: int | None) -> _VelocityTerms | None:
        if limit is None:
            return None
        capacity = Decimal(str(max(1.0, limit * limits.burst)))
        return _VelocityTerms(label, capacity, limit / limits.window_seconds)

    return (
        terms("prefix", limits.per_prefix),
        terms("country", limits.per_country),
        terms("api_key", limits.per_api_key),
    )


def spend_draws(
    caps: SpendCaps,
    *,
    tenant: str,
    now: datetime,
    time_zone: ZoneInfo,
    segments: int,
    amount: Decimal | None,
) -> list[Draw]:
    """The spend counters a message of ``segments`` (parts times recipients sent to) and
    estimated ``amount`` needs, keyed by the calendar day and month in ``time_zone``."""
    if not caps.active or segments <= 0:
        return []
    local = now.astimezone(time_zone)
    month = f"{local.year:04d}-{local.month:02d}"
    periods = {"day": f"{month}-{local.day:02d}", "month": month}
    draws: list[Draw] = []
    for label, capacity, warn_at in _spend_terms(caps):
        needed = Decimal(segments) if label.endswith("segments") else amount
        if needed is None:
            continue
        period = periods[label.partition("_")[0]]
        draws.append(
            Draw(
                key=f"spend:{tenant}:{period}:{label}",
                amount=needed,
                capacity=capacity,
                warn_at=warn_at,
                label=label,
            )
        )
    return draws


@functools.lru_cache(maxsize=256)
def _spend_terms(caps: SpendCaps) -> tuple[tuple[str, Decimal, Decimal], ...]:
    """(label, capacity, warning level) of each cap set, worked out once per policy."""
    warn = Decimal(str(caps.warn_at))
    caps_set = (
        ("day_segments", caps.daily_segments),
        ("month_segments", caps.monthly_segments),
        ("day_amount", caps.daily_amount),
        ("month_amount", caps.monthly_amount),
    )
    return tuple(
        (label, Decimal(cap), Decimal(cap) * warn) for label, cap in caps_set if cap is not None
    )


def seconds_to_period_end(label: str, now: datetime, time_zone: ZoneInfo) -> int:
    """Seconds until the day or month of a spend counter ends (when its cap resets)."""
    local = now.astimezone(time_zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if label.startswith("day"):
        naive_end = start.replace(tzinfo=None).toordinal() + 1
        end = datetime.fromordinal(naive_end).replace(tzinfo=time_zone)
    else:
        year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
        end = datetime(year, month, 1, tzinfo=time_zone)
    return max(1, math.ceil((end - local).total_seconds()))
