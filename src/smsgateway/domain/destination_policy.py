"""Where a tenant may send: countries allowed, blocked or monitored, and number types refused.

The defence against SMS pumping (scripts driving an OTP form to premium-rate or colluding
ranges): a recipient's region and number type come from the one libphonenumber parse in
``phone.py``; this module only looks them up in sets, so it costs nothing per recipient.

A policy in ``monitor`` mode refuses nothing: what it would have refused is let through and
reported (``PolicyHit.enforced`` false), so an operator can watch traffic before locking it.
A country in ``monitored_countries`` is let through and reported in either mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from smsgateway.domain.errors import DomainError
from smsgateway.domain.phone import NumberType, parse_region
from smsgateway.domain.recipients import AcceptedRecipient, RecipientList, RefusedRecipient


class PolicyRefusal(StrEnum):
    """Why the policy stops a recipient; the value is the error code."""

    COUNTRY_NOT_ALLOWED = "country_not_allowed"
    NUMBER_TYPE_NOT_ALLOWED = "number_type_not_allowed"
    COUNTRY_MONITORED = "country_monitored"
    """Not a refusal: the recipient passes and is recorded."""


class PolicyMode(StrEnum):
    ENFORCE = "enforce"
    MONITOR = "monitor"


DEFAULT_REFUSED_TYPES: Final = frozenset(
    {
        NumberType.PREMIUM_RATE,
        NumberType.SHARED_COST,
        NumberType.TOLL_FREE,
        NumberType.PAGER,
        NumberType.UAN,
        NumberType.VOICEMAIL,
        NumberType.UNKNOWN,
    }
)
"""Types refused unless switched on: the ranges pumping aims at, and what nobody texts.
Fixed-line is allowed (some carriers turn a text into a voice call) and shown in preview."""


class InvalidPolicy(DomainError):
    """A policy document cannot be read; ``field`` names the offending entry."""

    default_code = "invalid_policy"


@dataclass(frozen=True, slots=True)
class DestinationPolicy:
    """Countries (ISO 3166 alpha-2, as libphonenumber names regions; ``001`` for +800 and other
    non-geographic numbers) and number types. ``allowed_countries`` empty allows every country
    not blocked."""

    allowed_countries: frozenset[str] = frozenset()
    blocked_countries: frozenset[str] = frozenset()
    monitored_countries: frozenset[str] = frozenset()
    refused_types: frozenset[NumberType] = DEFAULT_REFUSED_TYPES
    mode: PolicyMode = PolicyMode.ENFORCE

    def narrowed_by(self, other: DestinationPolicy) -> DestinationPolicy:
        """This policy with ``other``'s restrictions added: an API key's policy can only take
        away from its tenant's, never give more."""
        if self.allowed_countries and other.allowed_countries:
            allowed = self.allowed_countries & other.allowed_countries
            # Both lists set and disjoint: nothing is allowed, which an empty set cannot say.
            blocked_extra = frozenset() if allowed else frozenset({"*"})
        else:
            allowed = self.allowed_countries or other.allowed_countries
            blocked_extra = frozenset()
        enforce = PolicyMode.ENFORCE in (self.mode, other.mode)
        return DestinationPolicy(
            allowed_countries=allowed,
            blocked_countries=self.blocked_countries | other.blocked_countries | blocked_extra,
            monitored_countries=self.monitored_countries | other.monitored_countries,
            refused_types=self.refused_types | other.refused_types,
            mode=PolicyMode.ENFORCE if enforce else PolicyMode.MONITOR,
        )

    def refusal_for(self, region: str, number_type: NumberType) -> PolicyRefusal | None:
        """What the policy says of a recipient, before the mode is applied; None if it passes
        unremarked."""
        if (
            "*" in self.blocked_countries
            or region in self.blocked_countries
            or (self.allowed_countries and region not in self.allowed_countries)
        ):
            return PolicyRefusal.COUNTRY_NOT_ALLOWED
        if number_type in self.refused_types:
            return PolicyRefusal.NUMBER_TYPE_NOT_ALLOWED
        if region in self.monitored_countries:
            return PolicyRefusal.COUNTRY_MONITORED
        return None

    def as_document(self) -> dict[str, object]:
        """The JSON form ``parse_destination_policy`` reads."""
        return {
            "allowed_countries": sorted(self.allowed_countries),
            "blocked_countries": sorted(self.blocked_countries),
            "monitored_countries": sorted(self.monitored_countries),
            "refused_number_types": sorted(str(kind) for kind in self.refused_types),
            "mode": str(self.mode),
        }


NO_RESTRICTION: Final = DestinationPolicy(refused_types=frozenset(), mode=PolicyMode.MONITOR)
"""What an API key's policy starts from: narrowing a tenant's policy by it changes nothing."""


@dataclass(frozen=True, slots=True)
class PolicyHit:
    """A recipient the policy remarked on: refused (``enforced``) or let through and recorded."""

    index: int
    e164: str
    region: str
    number_type: NumberType
    code: PolicyRefusal
    enforced: bool


@dataclass(frozen=True, slots=True)
class Screened:
    """The recipients after the policy: refusals moved into ``refused``; ``hits`` lists every
    recipient the policy remarked on (refused or monitored), for metrics and records."""

    recipients: RecipientList
    hits: tuple[PolicyHit, ...] = field(default_factory=tuple)

    @property
    def monitored(self) -> tuple[PolicyHit, ...]:
        return tuple(hit for hit in self.hits if not hit.enforced)


_MESSAGES: Final = {
    PolicyRefusal.COUNTRY_NOT_ALLOWED: "The number is in {region}, where this sender may not "
    "send messages.",
    PolicyRefusal.NUMBER_TYPE_NOT_ALLOWED: "The number is a {type} number, which this sender "
    "may not send messages to.",
}


def screen_recipients(recipients: RecipientList, policy: DestinationPolicy) -> Screened:
    """Applies ``policy`` to the accepted recipients; the input order is kept in every list."""
    hits: list[PolicyHit] = []
    kept: list[AcceptedRecipient] = []
    refused: list[RefusedRecipient] = []
    for recipient in recipients.accepted:
        number = recipient.number
        code = policy.refusal_for(number.region, number.number_type)
        if code is None:
            kept.append(recipient)
            continue
        enforced = code is not PolicyRefusal.COUNTRY_MONITORED and policy.mode is PolicyMode.ENFORCE
        hits.append(
            PolicyHit(
                recipient.index, number.e164, number.region, number.number_type, code, enforced
            )
        )
        if not enforced:
            kept.append(recipient)
            continue
        message = _MESSAGES[code].format(
            region=number.region, type=str(number.number_type).replace("_", "-")
        )
        refused.append(RefusedRecipient(recipient.index, recipient.raw, code.value, message))
    if not hits:
        return Screened(recipients)
    all_refused = tuple(sorted((*recipients.refused, *refused), key=lambda r: r.index))
    return Screened(RecipientList(tuple(kept), all_refused, recipients.duplicates), tuple(hits))


def parse_countries(values: Iterable[str], *, field: str) -> frozenset[str]:
    """Regions as libphonenumber names them, any case; ``001`` is the non-geographic one."""
    countries: set[str] = set()
    for value in values:
        text = value.strip().upper()
        if text == "001":
            countries.add(text)
            continue
        try:
            countries.add(parse_region(text))
        except DomainError:
            raise InvalidPolicy(
                f"{value!r} is not an ISO 3166 alpha-2 country libphonenumber knows.", field=field
            ) from None
    return frozenset(countries)


def parse_number_types(values: Iterable[str], *, field: str) -> frozenset[NumberType]:
    types: set[NumberType] = set()
    for value in values:
        text = value.strip().lower().replace("-", "_")
        try:
            types.add(NumberType(text))
        except ValueError:
            known = ", ".join(kind.value for kind in NumberType)
            raise InvalidPolicy(
                f"{value!r} is not a number type; known types: {known}.", field=field
            ) from None
    return frozenset(types)


def parse_destination_policy(
    document: Mapping[str, object], *, base: DestinationPolicy | None = None
) -> DestinationPolicy:
    """Reads the keys of ``as_document`` (each optional: missing ones keep ``base``'s, else the
    defaults); raises ``InvalidPolicy`` naming the key."""
    start = base or DestinationPolicy()
    return DestinationPolicy(
        allowed_countries=_countries(document, "allowed_countries", start.allowed_countries),
        blocked_countries=_countries(document, "blocked_countries", start.blocked_countries),
        monitored_countries=_countries(document, "monitored_countries", start.monitored_countries),
        refused_types=_types(document, "refused_number_types", start.refused_types),
        mode=_mode(document, start.mode),
    )


def _strings(document: Mapping[str, object], key: str) -> list[str] | None:
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidPolicy(f"{key} must be a list of strings.", field=key)
    return list(value)


def _countries(document: Mapping[str, object], key: str, default: frozenset[str]) -> frozenset[str]:
    values = _strings(document, key)
    return default if values is None else parse_countries(values, field=key)


def _types(
    document: Mapping[str, object], key: str, default: frozenset[NumberType]
) -> frozenset[NumberType]:
    values = _strings(document, key)
    return default if values is None else parse_number_types(values, field=key)


def _mode(document: Mapping[str, object], default: PolicyMode) -> PolicyMode:
    value = document.get("mode")
    if value is None:
        return default
    try:
        return PolicyMode(str(value))
    except ValueError:
        raise InvalidPolicy("mode must be 'enforce' or 'monitor'.", field="mode") from None
