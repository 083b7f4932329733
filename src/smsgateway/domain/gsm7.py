"""The GSM 03.38 (3GPP TS 23.038) default alphabet: which characters GSM-7 can carry, at what cost.

A character of the basic table costs one septet; a character of the extension table costs two
(the escape septet 0x1B, then its code). National language shift tables are not used: Sinch
does not let a sender choose them, so a character outside these two tables means UCS-2.

The checks are precompiled regular-expression classes, so a whole text is scanned at C speed.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Final

BASIC_TABLE: Final = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
"""The 128 basic-table characters in code order (0x1B is the escape, not a character)."""

ESCAPE: Final = 0x1B

EXTENSION_TABLE: Final = MappingProxyType(
    {
        0x0A: "\f",
        0x14: "^",
        0x28: "{",
        0x29: "}",
        0x2F: "\\",
        0x3C: "[",
        0x3D: "~",
        0x3E: "]",
        0x40: "|",
        0x65: "€",
    }
)
"""Extension-table code → character; each is sent as ESC + code, so costs two septets."""

BASIC_CHARACTERS: Final = frozenset(BASIC_TABLE) - {chr(ESCAPE)}
EXTENSION_CHARACTERS: Final = frozenset(EXTENSION_TABLE.values())
GSM7_CHARACTERS: Final = BASIC_CHARACTERS | EXTENSION_CHARACTERS

SEPTETS_SINGLE: Final = 160
"""Septets in a message sent as one part."""
SEPTETS_PER_PART: Final = 153
"""Septets per part of a concatenated message (the user data header takes the other seven)."""


def _character_class(characters: frozenset[str], *, negate: bool = False) -> re.Pattern[str]:
    body = "".join(re.escape(c) for c in sorted(characters))
    return re.compile(f"[{'^' if negate else ''}{body}]")


_NOT_BASIC: Final = _character_class(BASIC_CHARACTERS, negate=True)
_NOT_GSM7: Final = _character_class(GSM7_CHARACTERS, negate=True)
_EXTENSION: Final = _character_class(EXTENSION_CHARACTERS)


def is_basic(text: str) -> bool:
    """Whether every character of ``text`` is in the basic table (so costs one septet)."""
    return _NOT_BASIC.search(text) is None


def is_gsm7(text: str) -> bool:
    """Whether ``text`` can be sent in GSM-7: every character in the basic or extension table."""
    return _NOT_GSM7.search(text) is None


def first_non_gsm7(text: str) -> int | None:
    """The index of the first character GSM-7 cannot carry, or None if there is none."""
    match = _NOT_GSM7.search(text)
    return None if match is None else match.start()


def extension_positions(text: str) -> list[int]:
    """Indices of the extension-table characters in ``text`` (each costs two septets)."""
    return [match.start() for match in _EXTENSION.finditer(text)]


def septet_cost(character: str) -> int:
    """Septets one character costs in GSM-7: 1 (basic) or 2 (extension); ValueError otherwise."""
    if character in BASIC_CHARACTERS:
        return 1
    if character in EXTENSION_CHARACTERS:
        return 2
    raise ValueError(f"U+{ord(character):04X} is not in the GSM 03.38 alphabet")


def count_septets(text: str) -> int:
    """Septets ``text`` costs in GSM-7; the caller has checked ``is_gsm7(text)``."""
    if is_basic(text):
        return len(text)
    return len(text) + len(_EXTENSION.findall(text))
