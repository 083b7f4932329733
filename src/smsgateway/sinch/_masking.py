"""Private masking of phone numbers for this package's log lines and exception messages.

The gateway has its own masking in ``observability``, but this package imports nothing of ours,
so it carries the few lines it needs.
"""

from __future__ import annotations

import re

# An E.164-looking number with or without '+': 8 to 15 digits, long enough to be an MSISDN
# rather than a status code, a count or a port.
_MSISDN_PATTERN = re.compile(r"(?<![\w+])(\+?\d{8,15})(?!\w)")


def mask_msisdn(number: str) -> str:
    """``+15551234567`` → ``+1555***4567``: keeps the country prefix and the last four digits."""
    plus = "+" if number.startswith("+") else ""
    digits = number[len(plus) :]
    if len(digits) <= 8:
        return plus + digits[:2] + "***" + digits[-2:]
    return plus + digits[:4] + "***" + digits[-4:]


def mask_msisdns_in(text: str) -> str:
    """Masks every MSISDN-looking run of digits in free text."""
    return _MSISDN_PATTERN.sub(lambda match: mask_msisdn(match.group(1)), text)
