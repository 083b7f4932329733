"""Protection policies: where a caller may send (``destination_policy``), how fast (velocity
limits) and how much (spend caps), read from and written as JSON documents. What a message
takes from the counters those limits keep is ``counters``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from smsgateway.domain.destination_policy import (
    DestinationPolicy,
    InvalidPolicy,
    parse_destination_policy,
)


@dataclass(frozen=True, slots=True)
class VelocityLimits:
    """Recipients per ``window_seconds`` (an hour by default); None means no limit.

    ``prefix_digits_dropped``: a destination prefix is the E.164 number without its last digits.
    """

    per_prefix: int | None = None
    per_country: int | None = None
    per_api_key: int | None = None
    prefix_digits_dropped: int = 3
    burst: float = 1.0
    window_seconds: float = 3600.0

    @property
    def active(self) -> bool:
        return any(x is not None for x in (self.per_prefix, self.per_country, self.per_api_key))

    def narrowed_by(self, other: VelocityLimits) -> VelocityLimits:
        """The tighter of both; limits with none set leave the other's as they are."""
        if not other.active or not self.active:
            return self if self.active else other
        return VelocityLimits(
            per_prefix=_least(self.per_prefix, other.per_prefix),
            per_country=_least(self.per_country, other.per_country),
            per_api_key=_least(self.per_api_key, other.per_api_key),
            prefix_digits_dropped=min(self.prefix_digits_dropped, other.prefix_digits_dropped),
            burst=min(self.burst, other.burst),
            window_seconds=max(self.window_seconds, other.window_seconds),
        )


@dataclass(frozen=True, slots=True)
class SpendCaps:
    """A tenant's caps: segments (parts times recipients) and, with a price table, money."""

    daily_segments: int | None = None
    monthly_segments: int | None = None
    daily_amount: Decimal | None = None
    monthly_amount: Decimal | None = None
    warn_at: float = 0.8
    """The share of a cap at which ``spend.threshold_reached`` is raised, once per period."""

    @property
    def active(self) -> bool:
        return any(
            x is not None
            for x in (
                self.daily_segments,
                self.monthly_segments,
                self.daily_amount,
                self.monthly_amount,
            )
        )

    def narrowed_by(self, other: SpendCaps) -> SpendCaps:
        """The tighter of both; caps with none set leave the other's as they are."""
        if not other.active or not self.active:
            return self if self.active else other
        return SpendCaps(
            daily_segments=_least(self.daily_segments, other.daily_segments),
            monthly_segments=_least(self.monthly_segments, other.monthly_segments),
            daily_amount=_least(self.daily_amount, other.daily_amount),
            monthly_amount=_least(self.monthly_amount, other.monthly_amount),
            warn_at=min(self.warn_at, other.warn_at),
        )


_Limit = TypeVar("_Limit", int, Decimal)


def _least(a: _Limit | None, b: _Limit | None) -> _Limit | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def parse_velocity(document: Mapping[str, object] | None) -> VelocityLimits:
    if document is None:
        return VelocityLimits()
    _refuse_unknown(document, VelocityLimits.__slots__, "velocity")
    return VelocityLimits(
        per_prefix=_optional_int(document, "per_prefix", "velocity"),
        per_country=_optional_int(document, "per_country", "velocity"),
        per_api_key=_optional_int(document, "per_api_key", "velocity"),
        prefix_digits_dropped=3
        if document.get("prefix_digits_dropped") is None
        else _required_int(document, "prefix_digits_dropped", "velocity", 0),
        burst=_number(document, "burst", "velocity", 1.0, minimum=1.0),
        window_seconds=_window(document),
    )


def parse_spend(document: Mapping[str, object] | None) -> SpendCaps:
    if document is None:
        return SpendCaps()
    _refuse_unknown(document, SpendCaps.__slots__, "spend")
    warn_at = _number(document, "warn_at", "spend", 0.8, minimum=0.0)
    if warn_at > 1:
        raise InvalidPolicy(
            "spend.warn_at is a share of the cap, from 0 to 1.", field="spend.warn_at"
        )
    return SpendCaps(
        daily_segments=_optional_int(document, "daily_segments", "spend"),
        monthly_segments=_optional_int(document, "monthly_segments", "spend"),
        daily_amount=_optional_decimal(document, "daily_amount"),
        monthly_amount=_optional_decimal(document, "monthly_amount"),
        warn_at=warn_at,
    )


def velocity_document(limits: VelocityLimits) -> dict[str, object]:
    return {name: getattr(limits, name) for name in VelocityLimits.__slots__}


def spend_document(caps: SpendCaps) -> dict[str, object]:
    document: dict[str, object] = {}
    for name in SpendCaps.__slots__:
        value = getattr(caps, name)
        document[name] = str(value) if isinstance(value, Decimal) else value
    return document


def _refuse_unknown(document: Mapping[str, object], known: Iterable[str], section: str) -> None:
    unknown = sorted(set(document) - set(known))
    if unknown:
        raise InvalidPolicy(
            f"Unknown keys in {section}: {unknown}.",
            field=unknown[0] if section == "the policy" else f"{section}.{unknown[0]}",
        )


def _optional_int(
    document: Mapping[str, object], key: str, section: str, minimum: int = 1
) -> int | None:
    if document.get(key) is None:
        return None
    return _required_int(document, key, section, minimum)


def _required_int(document: Mapping[str, object], key: str, section: str, minimum: int) -> int:
    value = document.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidPolicy(
            f"{section}.{key} must be a whole number from {minimum}.", field=f"{section}.{key}"
        )
    return value


def _number(
    document: Mapping[str, object], key: str, section: str, default: float, *, minimum: float
) -> float:
    value = document.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or value < minimum:
        raise InvalidPolicy(
            f"{section}.{key} must be a number from {minimum}.", field=f"{section}.{key}"
        )
    return float(value)


MAX_WINDOW_SECONDS = 31 * 86400
"""A velocity window of at most 31 days, so a counter idle for 62 is empty (retention)."""


def _window(document: Mapping[str, object]) -> float:
    window = _number(document, "window_seconds", "velocity", 3600.0, minimum=1.0)
    if window > MAX_WINDOW_SECONDS:
        raise InvalidPolicy(
            f"velocity.window_seconds is at most {MAX_WINDOW_SECONDS} (31 days).",
            field="velocity.window_seconds",
        )
    return window


def _optional_decimal(document: Mapping[str, object], key: str) -> Decimal | None:
    value = document.get(key)
    if value is None:
        return None
    try:
        amount = Decimal(str(value)) if not isinstance(value, bool) else None
    except ArithmeticError:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise InvalidPolicy(
            f'spend.{key} must be a decimal amount such as "50.00".', field=f"spend.{key}"
        )
    return amount


@dataclass(frozen=True, slots=True)
class ProtectionPolicy:
    """Everything that stands between a caller and the bill: where, how fast, how much."""

    destinations: DestinationPolicy = field(default_factory=DestinationPolicy)
    velocity: VelocityLimits = field(default_factory=VelocityLimits)
    spend: SpendCaps = field(default_factory=SpendCaps)

    def narrowed_by(self, other: ProtectionPolicy) -> ProtectionPolicy:
        """This policy with ``other``'s restrictions added (an API key's on its tenant's)."""
        return ProtectionPolicy(
            self.destinations.narrowed_by(other.destinations),
            self.velocity.narrowed_by(other.velocity),
            self.spend.narrowed_by(other.spend),
        )

    def as_document(self) -> dict[str, object]:
        """The JSON form ``parse_protection_policy`` reads and ``smsgateway policy show`` prints."""
        return {
            **self.destinations.as_document(),
            "velocity": velocity_document(self.velocity),
            "spend": spend_document(self.spend),
        }


_SECTIONS = frozenset(
    {
        "allowed_countries",
        "blocked_countries",
        "monitored_countries",
        "refused_number_types",
        "mode",
        "velocity",
        "spend",
    }
)


def parse_protection_policy(
    document: Mapping[str, object], *, base: DestinationPolicy | None = None
) -> ProtectionPolicy:
    """Reads a policy document; destination keys left out keep ``base``'s (the gateway's
    SMSGW_* settings). Raises ``InvalidPolicy`` naming the offending key."""
    _refuse_unknown(document, _SECTIONS, "the policy")
    velocity = document.get("velocity")
    spend = document.get("spend")
    if velocity is not None and not isinstance(velocity, Mapping):
        raise InvalidPolicy("velocity must be an object.", field="velocity")
    if spend is not None and not isinstance(spend, Mapping):
        raise InvalidPolicy("spend must be an object.", field="spend")
    return ProtectionPolicy(
        parse_destination_policy(document, base=base),
        parse_velocity(velocity),
        parse_spend(spend),
    )
