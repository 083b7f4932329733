"""How long personal data is kept, and what is left of a phone number once it is redacted.

A tenant's **retention window** says after how many days a message's body and numbers are
redacted and after how many the message is deleted; ``None`` keeps them. The gateway's window
(SMSGW_REDACT_AFTER_DAYS, SMSGW_DELETE_AFTER_DAYS) applies to every tenant without its own.

A **masked number** keeps its country calling code only: ``+46701234567`` → ``+46*``. ITU
codes are prefix-free and one, two or three digits long: ``1`` and ``7`` have one digit, the
two-digit ones are listed by ``phonenumbers``, every other number has a three-digit code
(assigned or not). So masking is three passes, each a simple pattern: one-digit codes, then
two-digit, then the rest; a masked number ends in ``*`` and no later pass matches it. The
patterns are the one fact both sides apply: Python here, PostgreSQL's ``regexp_replace`` in
the retention sweep (``store/personal_data.py``), which masks millions of rows without reading
them out. (One pattern listing all 215 codes as alternatives masked numbers about 11 times
slower in PostgreSQL.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

MAX_DAYS: Final = 36500
"""A century: the longest window a setting or a tenant's override may give."""

MASK: Final = "*"


def _two_digit_codes() -> str:
    """``2[07]|3[0123469]|…``: the two-digit codes as a trie of character classes."""
    by_first: dict[str, list[str]] = {}
    for code in sorted(str(code) for code in COUNTRY_CODE_TO_REGION_CODE if code in range(10, 100)):
        by_first.setdefault(code[0], []).append(code[1])
    return "|".join(f"{first}[{''.join(seconds)}]" for first, seconds in by_first.items())


_CODE_PATTERNS: Final = ("[17]", f"(?:{_two_digit_codes()})", "[0-9]{3}")
# E.164 numbers have 7 to 15 digits (Niue's are the shortest in use, with 7).
_REST_OF_NUMBER: Final = ("{6,14}", "{5,13}", "{4,12}")

NUMBER_PASSES: Final = tuple((rf"^(\+?{code})[0-9]*$", rf"\1{MASK}") for code in _CODE_PATTERNS)
"""(pattern, replacement) for a column holding one number, with or without its ``+``."""

JSON_NUMBER_PASSES: Final = tuple(
    (rf'"(\+?{code})[0-9]{rest}"', rf'"\1{MASK}"')
    for code, rest in zip(_CODE_PATTERNS, _REST_OF_NUMBER, strict=True)
)
"""(pattern, replacement) for every JSON string (a value or a key) that is nothing but a phone
number, so ids, operator codes (MCC+MNC, at most 6 digits) and timestamps are left alone."""

_NUMBER: Final = tuple((re.compile(pattern), repl) for pattern, repl in NUMBER_PASSES)
_JSON_NUMBER: Final = tuple((re.compile(pattern), repl) for pattern, repl in JSON_NUMBER_PASSES)


def mask_number(number: str) -> str:
    """``+46701234567`` → ``+46*``; anything that is not a run of digits is returned as is."""
    for pattern, replacement in _NUMBER:
        number = pattern.sub(replacement, number, count=1)
    return number


def mask_numbers_in_json(text: str) -> str:
    """Masks every JSON string in ``text`` that is a phone number, keys included."""
    for pattern, replacement in _JSON_NUMBER:
        text = pattern.sub(replacement, text)
    return text


def is_masked(number: str) -> bool:
    return number.endswith(MASK)


@dataclass(frozen=True, slots=True)
class RetentionWindow:
    """Days after which a message's personal data is redacted, and the message deleted;
    ``None`` keeps it. Deleting before redacting is allowed: redaction then never comes."""

    redact_after_days: int | None = None
    delete_after_days: int | None = None

    def __post_init__(self) -> None:
        for name in ("redact_after_days", "delete_after_days"):
            days = getattr(self, name)
            if days is not None and not 1 <= days <= MAX_DAYS:
                raise ValueError(f"{name} must be between 1 and {MAX_DAYS} days, or None")

    @property
    def redact_after(self) -> timedelta | None:
        return None if self.redact_after_days is None else timedelta(days=self.redact_after_days)

    @property
    def delete_after(self) -> timedelta | None:
        return None if self.delete_after_days is None else timedelta(days=self.delete_after_days)

    @property
    def keeps_everything(self) -> bool:
        return self.redact_after_days is None and self.delete_after_days is None


def window_for(
    tenant: str | None, default: RetentionWindow, overrides: Mapping[str, RetentionWindow]
) -> RetentionWindow:
    """The window that applies to ``tenant``: its own, else the gateway's (also for data of no
    tenant, such as inbound messages to an unassigned number)."""
    if tenant is None:
        return default
    return overrides.get(tenant, default)
