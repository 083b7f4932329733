"""How long personal data is kept, and what is left of a phone number once it is redacted.

A tenant's **retention window** says after how many days a message's body and numbers are
redacted and after how many the message is deleted; ``None`` keeps them. The gateway's window
(SMSGW_REDACT_AFTER_DAYS, SMSGW_DELETE_AFTER_DAYS) applies to every tenant without its own.

A **masked number** keeps its country calling code only: ``+46701234567`` → ``+46*``. The
pattern is the one fact both sides apply: Python here, PostgreSQL's ``regexp_replace`` in the
retention sweep (``store/personal_data.py``), which masks millions of rows without reading them
out. ITU country calling codes are prefix-free, so at most one of the alternatives matches;
a number whose code is unknown keeps only its ``+``.
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

_CODES: Final = "|".join(sorted((str(code) for code in COUNTRY_CODE_TO_REGION_CODE), key=int))

NUMBER_PATTERN: Final = rf"^(\+?)({_CODES})?[0-9]*$"
"""A whole column holding one number (E.164, with or without its ``+``)."""

JSON_NUMBER_PATTERN: Final = rf'"(?=\+?[0-9]{{7,15}}")(\+?)({_CODES})?[0-9]*"'
"""A JSON string (a value or a key) that is nothing but a phone number: 7 to 15 digits (the
shortest in use, Niue's, have 7), so ids, operator codes (MCC+MNC, at most 6 digits) and
timestamps are left alone."""

NUMBER_REPLACEMENT: Final = rf"\1\2{MASK}"
JSON_NUMBER_REPLACEMENT: Final = rf'"\1\2{MASK}"'

_NUMBER: Final = re.compile(NUMBER_PATTERN)
_JSON_NUMBER: Final = re.compile(JSON_NUMBER_PATTERN)


def mask_number(number: str) -> str:
    """``+46701234567`` → ``+46*``; anything that is not a run of digits is returned as is."""
    return _NUMBER.sub(NUMBER_REPLACEMENT, number, count=1)


def mask_numbers_in_json(text: str) -> str:
    """Masks every JSON string in ``text`` that is a phone number, keys included."""
    return _JSON_NUMBER.sub(JSON_NUMBER_REPLACEMENT, text)


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
