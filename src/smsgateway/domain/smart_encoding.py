"""Smart encoding: swap typographic look-alikes for GSM-7 characters so a text stays GSM-7.

Phones and word processors insert curly quotes, dashes, ellipses and odd spaces; one of them
turns a 160-character message (one part) into a UCS-2 one (three parts). Replacing them is
applied only when it makes the whole text GSM-7: if another character needs UCS-2 anyway, the
text is left exactly as written. Letters are never changed (that could change meaning).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from smsgateway.domain import gsm7

LOOK_ALIKES: Final = MappingProxyType(
    {
        # Single quotes, apostrophes and primes.
        "\u2018": "'",  # LEFT SINGLE QUOTATION MARK
        "\u2019": "'",  # RIGHT SINGLE QUOTATION MARK
        "\u201a": "'",  # SINGLE LOW-9 QUOTATION MARK
        "\u201b": "'",  # SINGLE HIGH-REVERSED-9 QUOTATION MARK
        "\u2032": "'",  # PRIME
        "\u2039": "'",  # SINGLE LEFT-POINTING ANGLE QUOTATION MARK
        "\u203a": "'",  # SINGLE RIGHT-POINTING ANGLE QUOTATION MARK
        "\u02bc": "'",  # MODIFIER LETTER APOSTROPHE
        "\u00b4": "'",  # ACUTE ACCENT
        "`": "'",  # GRAVE ACCENT: ASCII, yet not in GSM 03.38
        # Double quotes.
        "\u201c": '"',  # LEFT DOUBLE QUOTATION MARK
        "\u201d": '"',  # RIGHT DOUBLE QUOTATION MARK
        "\u201e": '"',  # DOUBLE LOW-9 QUOTATION MARK
        "\u201f": '"',  # DOUBLE HIGH-REVERSED-9 QUOTATION MARK
        "\u2033": '"',  # DOUBLE PRIME
        "\u00ab": '"',  # LEFT-POINTING DOUBLE ANGLE QUOTATION MARK
        "\u00bb": '"',  # RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK
        # Hyphens, dashes and minus.
        "\u2010": "-",  # HYPHEN
        "\u2011": "-",  # NON-BREAKING HYPHEN
        "\u2012": "-",  # FIGURE DASH
        "\u2013": "-",  # EN DASH
        "\u2014": "-",  # EM DASH
        "\u2015": "-",  # HORIZONTAL BAR
        "\u2212": "-",  # MINUS SIGN
        # Punctuation.
        "\u2026": "...",  # HORIZONTAL ELLIPSIS
        "\u2022": "-",  # BULLET
        "\u2024": ".",  # ONE DOT LEADER
        "\u2044": "/",  # FRACTION SLASH
        "\u2215": "/",  # DIVISION SLASH
        "\u02c6": "^",  # MODIFIER LETTER CIRCUMFLEX ACCENT (extension table: two septets)
        "\u02dc": "~",  # SMALL TILDE (extension table: two septets)
        # Spaces of other widths become a space; so does a tab (not GSM-7; Sinch would send
        # the whole text as UCS-2 for it, at up to three times the parts).
        "\t": " ",  # CHARACTER TABULATION
        "\u00a0": " ",  # NO-BREAK SPACE
        "\u1680": " ",  # OGHAM SPACE MARK
        "\u2000": " ",  # EN QUAD
        "\u2001": " ",  # EM QUAD
        "\u2002": " ",  # EN SPACE
        "\u2003": " ",  # EM SPACE
        "\u2004": " ",  # THREE-PER-EM SPACE
        "\u2005": " ",  # FOUR-PER-EM SPACE
        "\u2006": " ",  # SIX-PER-EM SPACE
        "\u2007": " ",  # FIGURE SPACE
        "\u2008": " ",  # PUNCTUATION SPACE
        "\u2009": " ",  # THIN SPACE
        "\u200a": " ",  # HAIR SPACE
        "\u202f": " ",  # NARROW NO-BREAK SPACE
        "\u205f": " ",  # MEDIUM MATHEMATICAL SPACE
        "\u3000": " ",  # IDEOGRAPHIC SPACE
        # Invisible characters are dropped.
        "\u00ad": "",  # SOFT HYPHEN
        "\u200b": "",  # ZERO WIDTH SPACE
        "\u2060": "",  # WORD JOINER
        "\ufeff": "",  # ZERO WIDTH NO-BREAK SPACE (byte order mark)
    }
)
"""Look-alike → GSM-7 replacement (possibly several characters, or none)."""

_TRANSLATION: Final = str.maketrans(dict(LOOK_ALIKES))
_LOOK_ALIKE: Final = re.compile("[" + "".join(re.escape(c) for c in LOOK_ALIKES) + "]")
# A character neither GSM-7 nor a look-alike: the text stays UCS-2 whatever is replaced.
_IRREPLACEABLE: Final = re.compile(
    "[^" + "".join(re.escape(c) for c in sorted(gsm7.GSM7_CHARACTERS | set(LOOK_ALIKES))) + "]"
)


@dataclass(frozen=True, slots=True)
class Replacement:
    """One character replaced: ``position`` is its code-point index in the original text."""

    position: int
    original: str
    replacement: str


@dataclass(frozen=True, slots=True)
class SmartEncoded:
    """The text to send and what was replaced to get it (empty when nothing was)."""

    text: str
    replacements: tuple[Replacement, ...]

    @property
    def changed(self) -> bool:
        """Whether any character was replaced."""
        return bool(self.replacements)


def apply_smart_encoding(text: str) -> SmartEncoded:
    """Replace look-alikes in ``text`` if that makes all of it GSM-7; else return it unchanged."""
    if gsm7.is_gsm7(text) or _IRREPLACEABLE.search(text) is not None:
        return SmartEncoded(text, ())
    replaced = text.translate(_TRANSLATION)
    report = tuple(
        Replacement(match.start(), match.group(), LOOK_ALIKES[match.group()])
        for match in _LOOK_ALIKE.finditer(text)
    )
    return SmartEncoded(replaced, report)
