"""The simulator's own message-part counting: GSM-7 (160/153 septets) or UCS-2 (70/67 units).

Written from the contract's encoding facts, independently of smsgateway.domain, so that the
gateway's counting is checked against a second implementation rather than against itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# GSM 03.38 default alphabet (the escape character 0x1B itself is not a user character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each costs an escape plus the character, two septets never split.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PER_PART = 160, 153
UCS2_SINGLE, UCS2_PER_PART = 70, 67

Encoding = Literal["GSM", "UNICODE", "BINARY", "MMS"]


@dataclass(frozen=True, slots=True)
class PartCount:
    """How a text travels: its encoding, its size in septets or UTF-16 units, and its parts."""

    encoding: Encoding
    units: int
    parts: int

    @property
    def dry_run_encoding(self) -> str:
        """The dry-run spelling: `text` or `unicode` (delivery reports say GSM/UNICODE)."""
        return "text" if self.encoding == "GSM" else "unicode"


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def count_parts(text: str) -> PartCount:
    """Count the parts of `text`; one non-GSM character makes the whole message UCS-2."""
    if is_gsm7(text):
        costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return PartCount("GSM", sum(costs), _split(costs, GSM7_SINGLE, GSM7_PER_PART))
    # Characters outside the BMP are a surrogate pair: two units that stay in one part.
    costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return PartCount("UNICODE", sum(costs), _split(costs, UCS2_SINGLE, UCS2_PER_PART))


def _split(costs: list[int], single: int, per_part: int) -> int:
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts += 1
            used = 0
        used += cost
    return parts
