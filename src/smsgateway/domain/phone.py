"""Phone numbers and sender ids: parse what callers write, normalise to E.164, refuse with reasons.

libphonenumber (``phonenumbers``) decides validity from each country's numbering plan; the
E.164 shape ``^\\+[1-9]\\d{1,14}$`` is only a floor checked on its output. A number in national
form (``0701 234 567``) needs a region (``SE``); one starting with ``+`` ignores the region.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from smsgateway.domain.errors import InvalidPhoneNumber, InvalidRegion, InvalidSender

E164_FLOOR: Final = re.compile(r"\+[1-9]\d{1,14}")
"""The shape every accepted number has; necessary, far from sufficient."""

# What people write in a number: digits (any script; libphonenumber folds them), a leading
# plus (or its full-width form), spaces and the usual separators. Letters are refused rather
# than read as a vanity number ("1-800-FLOWERS") or an extension ("ext 5").
_NUMBER_CHARACTERS: Final = re.compile(r"[+\uff0b]?[\d\s().\-/]*")
_SHORT_CODE: Final = re.compile(r"[0-9]{3,8}")
_ALPHANUMERIC: Final = re.compile(r"[A-Za-z0-9 ]+")
_HAS_LETTER: Final = re.compile(r"[A-Za-z]")

_MIN_UNAMBIGUOUS_DIGITS: Final = 9
"""Digits from which an address without ``+`` is a number: short codes have at most 8."""
_MAX_E164_DIGITS: Final = 15

ALPHANUMERIC_SENDER_MAX: Final = 11
"""Characters in an alphanumeric sender id: the GSM originator field holds 11."""


class NumberType(StrEnum):
    """What libphonenumber says a number is, from its country's numbering plan."""

    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    SHARED_COST = "shared_cost"
    VOIP = "voip"
    PERSONAL_NUMBER = "personal_number"
    PAGER = "pager"
    UAN = "uan"
    VOICEMAIL = "voicemail"
    UNKNOWN = "unknown"


_NUMBER_TYPES: Final = {
    PhoneNumberType.MOBILE: NumberType.MOBILE,
    PhoneNumberType.FIXED_LINE: NumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE_OR_MOBILE: NumberType.FIXED_LINE_OR_MOBILE,
    PhoneNumberType.TOLL_FREE: NumberType.TOLL_FREE,
    PhoneNumberType.PREMIUM_RATE: NumberType.PREMIUM_RATE,
    PhoneNumberType.SHARED_COST: NumberType.SHARED_COST,
    PhoneNumberType.VOIP: NumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER: NumberType.PERSONAL_NUMBER,
    PhoneNumberType.PAGER: NumberType.PAGER,
    PhoneNumberType.UAN: NumberType.UAN,
    PhoneNumberType.VOICEMAIL: NumberType.VOICEMAIL,
}


class PhoneRefusal(StrEnum):
    """Why a phone number is refused; the value is the error code."""

    NOT_A_NUMBER = "not_a_number"
    MISSING_COUNTRY_CODE = "missing_country_code"
    INVALID_COUNTRY_CODE = "invalid_country_code"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID_LENGTH = "invalid_length"
    INVALID_FOR_REGION = "invalid_for_region"
    INVALID_NUMBER = "invalid_number"
    CANNOT_RECEIVE_SMS = "cannot_receive_sms"


class SenderRefusal(StrEnum):
    """Why a sender id is refused; the value is the error code."""

    SENDER_EMPTY = "sender_empty"
    SENDER_TOO_LONG = "sender_too_long"
    SENDER_INVALID_CHARACTERS = "sender_invalid_characters"
    SHORT_CODE_NOT_ALLOWED = "short_code_not_allowed"


class SenderKind(StrEnum):
    """The three kinds of originator an SMS can carry."""

    NUMBER = "number"
    SHORT_CODE = "short_code"
    ALPHANUMERIC = "alphanumeric"


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A valid number: ``e164`` (``+46701234567``), its region (``SE``; ``001`` for
    non-geographic numbers such as +800), its country calling code and its type."""

    e164: str
    region: str
    country_code: int
    number_type: NumberType


@dataclass(frozen=True, slots=True)
class Sender:
    """A sender id as Sinch takes it in ``from``: E.164, short-code digits or alphanumeric text.

    ``number`` is set for ``SenderKind.NUMBER`` only.
    """

    value: str
    kind: SenderKind
    number: PhoneNumber | None = None


_REFUSAL_MESSAGES: Final = {
    PhoneRefusal.NOT_A_NUMBER: "is not a phone number",
    PhoneRefusal.MISSING_COUNTRY_CODE: "has no country code: write it as +<country code>..., "
    "or give a region for national numbers",
    PhoneRefusal.INVALID_COUNTRY_CODE: "has an unknown country calling code",
    PhoneRefusal.TOO_SHORT: "is too short",
    PhoneRefusal.TOO_LONG: "is too long",
    PhoneRefusal.INVALID_LENGTH: "has a length no number of its country has",
    PhoneRefusal.INVALID_FOR_REGION: "is not a valid number for the region",
    PhoneRefusal.INVALID_NUMBER: "is not a valid number in its country's numbering plan",
    PhoneRefusal.CANNOT_RECEIVE_SMS: "is a fixed-line number, which cannot receive SMS",
}

_PARSE_REFUSALS: Final = {
    NumberParseException.INVALID_COUNTRY_CODE: PhoneRefusal.INVALID_COUNTRY_CODE,
    NumberParseException.NOT_A_NUMBER: PhoneRefusal.NOT_A_NUMBER,
    NumberParseException.TOO_SHORT_AFTER_IDD: PhoneRefusal.TOO_SHORT,
    NumberParseException.TOO_SHORT_NSN: PhoneRefusal.TOO_SHORT,
    NumberParseException.TOO_LONG: PhoneRefusal.TOO_LONG,
}

_LENGTH_REFUSALS: Final = {
    ValidationResult.INVALID_COUNTRY_CODE: PhoneRefusal.INVALID_COUNTRY_CODE,
    ValidationResult.TOO_SHORT: PhoneRefusal.TOO_SHORT,
    ValidationResult.TOO_LONG: PhoneRefusal.TOO_LONG,
    ValidationResult.INVALID_LENGTH: PhoneRefusal.INVALID_LENGTH,
    # Dialable only inside an area (no area code): too short to reach from anywhere else.
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: PhoneRefusal.TOO_SHORT,
}


def parse_region(region: str) -> str:
    """Normalise a region (ISO 3166-1 alpha-2, any case) or raise ``InvalidRegion``."""
    normalised = region.strip().upper()
    if normalised not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidRegion(
            f"{region!r} is not a region phone numbers can be read for.",
            field="region",
        )
    return normalised


def parse_phone_number(
    raw: str,
    *,
    region: str | None = None,
    refuse_fixed_line: bool = False,
    field: str | None = None,
) -> PhoneNumber:
    """Parse ``raw`` (E.164, or national form given ``region``) into a valid ``PhoneNumber``.

    Raises ``InvalidPhoneNumber`` whose code is a ``PhoneRefusal``. With ``refuse_fixed_line``
    a number libphonenumber is sure is fixed-line (not ``fixed_line_or_mobile``) is refused as
    ``cannot_receive_sms``. An unknown ``region`` raises ``InvalidRegion``. Messages do not
    repeat the number, so that they can be logged.
    """
    if region is not None:
        region = parse_region(region)
    text = raw.strip()
    if not _NUMBER_CHARACTERS.fullmatch(text) or not any(c.isdigit() for c in text):
        raise _refusal(PhoneRefusal.NOT_A_NUMBER, field)
    international = text[0] in "+\uff0b"
    if not international and region is None:
        raise _refusal(PhoneRefusal.MISSING_COUNTRY_CODE, field)
    try:
        parsed = phonenumbers.parse(text, region)
    except NumberParseException as exc:
        reason = _PARSE_REFUSALS.get(exc.error_type, PhoneRefusal.NOT_A_NUMBER)
        # libphonenumber calls "+1" or "+12" not a number; to a caller it is a short one.
        if reason is PhoneRefusal.NOT_A_NUMBER and sum(c.isdigit() for c in text) <= 3:
            reason = PhoneRefusal.TOO_SHORT
        raise _refusal(reason, field) from None
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible != ValidationResult.IS_POSSIBLE:
        raise _refusal(_LENGTH_REFUSALS[possible], field)
    # A number is valid exactly when its region's metadata gives it a type: asking for the
    # type once does what is_valid_number, region_code_for_number and number_type would each
    # do again (matching the number against every pattern of its region, or of all the +1
    # regions), which was most of the cost of accepting a message.
    number_region = phonenumbers.region_code_for_number(parsed)
    libphonenumber_type = (
        PhoneNumberType.UNKNOWN if number_region is None else phonenumbers.number_type(parsed)
    )
    if libphonenumber_type == PhoneNumberType.UNKNOWN:
        invalid = PhoneRefusal.INVALID_NUMBER if international else PhoneRefusal.INVALID_FOR_REGION
        raise _refusal(invalid, field)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    country_code = parsed.country_code
    # A valid number always has these; checked so that a libphonenumber bug cannot pass one on.
    if not E164_FLOOR.fullmatch(e164) or number_region is None or country_code is None:
        raise _refusal(PhoneRefusal.INVALID_NUMBER, field)
    number_type = _NUMBER_TYPES.get(libphonenumber_type, NumberType.UNKNOWN)
    if refuse_fixed_line and number_type is NumberType.FIXED_LINE:
        raise _refusal(PhoneRefusal.CANNOT_RECEIVE_SMS, field)
    return PhoneNumber(e164, number_region, country_code, number_type)


def parse_sender(
    raw: str,
    *,
    region: str | None = None,
    allow_short_code: bool = True,
    field: str | None = "from",
) -> Sender:
    """Parse a sender id: a phone number, a short code or an alphanumeric id.

    Any letter makes it alphanumeric: 1 to 11 of ``[A-Za-z0-9 ]`` (surrounding spaces are
    dropped). Exactly 3 to 8 digits is a short code, unless ``allow_short_code`` is false
    (Sinch checks that the service plan owns it). Anything else is a phone number, with the
    same checks as a recipient except the fixed-line refusal (landlines can be SMS-enabled).
    Raises ``InvalidSender`` (code a ``SenderRefusal``) or ``InvalidPhoneNumber``.
    """
    text = raw.strip()
    if not text:
        raise InvalidSender(
            "The sender is empty.", field=field, code=SenderRefusal.SENDER_EMPTY.value
        )
    if _HAS_LETTER.search(text) or not _NUMBER_CHARACTERS.fullmatch(text):
        if not _ALPHANUMERIC.fullmatch(text):
            raise InvalidSender(
                f"The sender {raw!r} may hold only the letters A-Z, digits and spaces.",
                field=field,
                code=SenderRefusal.SENDER_INVALID_CHARACTERS.value,
            )
        if len(text) > ALPHANUMERIC_SENDER_MAX:
            raise InvalidSender(
                f"The sender {raw!r} is longer than {ALPHANUMERIC_SENDER_MAX} characters.",
                field=field,
                code=SenderRefusal.SENDER_TOO_LONG.value,
            )
        return Sender(text, SenderKind.ALPHANUMERIC)
    if _SHORT_CODE.fullmatch(text):
        if not allow_short_code:
            raise InvalidSender(
                f"The sender {raw!r} is a short code, which is not allowed here.",
                field=field,
                code=SenderRefusal.SHORT_CODE_NOT_ALLOWED.value,
            )
        return Sender(text, SenderKind.SHORT_CODE)
    number = parse_phone_number(text, region=region, field=field)
    return Sender(number.e164, SenderKind.NUMBER, number)


def normalise_address(raw: str) -> str:
    """An address as Sinch writes it in callbacks (``from``/``to``), in the form we store.

    Sinch may leave out the ``+`` of a number (``"11203453453"``). A number becomes E.164 with
    ``+``; a short code or an alphanumeric id is kept as given (surrounding spaces dropped).
    Digits with ``+`` are a number. Digits without it are a number from 9 to 15 digits; 3 to
    8 digits are a short code (as ``parse_sender`` reads them) unless, read with a ``+``,
    they are a valid number in libphonenumber's plan (Niue's ``6834002``), so a subscriber
    there can still send STOP. No string of 3 to 5 digits is a valid number and only a few
    of 6 (Vienna's ``+43 1 110``...), so short codes as operators have them stay as sent.
    No validity check beyond that: a callback is never refused for its address.
    """
    text = raw.strip()
    compact = "".join(text.split())
    digits = compact.removeprefix("+")
    if not (digits.isascii() and digits.isdigit()) or digits[0] == "0":
        return text
    if len(digits) > _MAX_E164_DIGITS:
        return text
    if compact[0] == "+" or len(digits) >= _MIN_UNAMBIGUOUS_DIGITS:
        return "+" + digits
    if len(digits) >= 3 and _is_valid_international(digits):
        return "+" + digits
    return text


def _is_valid_international(digits: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse("+" + digits))
    except NumberParseException:
        return False


def _refusal(reason: PhoneRefusal, field: str | None) -> InvalidPhoneNumber:
    return InvalidPhoneNumber(
        f"The number {_REFUSAL_MESSAGES[reason]}.", field=field, code=reason.value
    )
