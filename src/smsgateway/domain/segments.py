"""How a text is sent as SMS: its encoding and the parts (segments) carriers bill for.

GSM-7 carries 160 septets in one part, else 153 per part; an extension character (two septets)
is never split across parts. UCS-2 carries 70 UTF-16 code units in one part, else 67 per part;
a character outside the Basic Multilingual Plane (most emoji) is two code units and its
surrogate pair is never split. One character GSM-7 cannot carry makes the whole text UCS-2.

Counting never builds the parts; ``Segmentation.split_parts()`` does, when asked.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise
from typing import Final, NamedTuple

from smsgateway.domain import gsm7
from smsgateway.domain.errors import EmptyBody, InvalidCharacter

UCS2_SINGLE: Final = 70
"""UTF-16 code units in a message sent as one part."""
UCS2_PER_PART: Final = 67
"""UTF-16 code units per part of a concatenated message (the header takes three)."""

# C0 and C1 controls except LF, FF and CR, which GSM-7 itself carries, and tab, which is not
# GSM-7 but which Sinch sends in a UCS-2 message (pasted text is full of tabs); and lone
# surrogates, which a JSON body can hold ("\ud83d") but no encoding can send (nor Postgres
# store). The other controls (NUL, BEL, VT, ESC, DEL, C1) mean nothing on a handset, and NUL
# cannot even be stored: they are refused rather than sent as invisible garbage.
_UNSENDABLE: Final = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class Encoding(StrEnum):
    """The data coding a message is sent with."""

    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class Segmentation:
    """A text's encoding and cost.

    ``characters`` is the number of Unicode code points (Python ``len``), not of user-perceived
    characters: "👍🏽" is 2 code points and 4 UCS-2 units. ``units`` is septets for GSM-7 and
    UTF-16 code units for UCS-2.
    """

    text: str
    encoding: Encoding
    segments: int
    characters: int
    units: int

    @property
    def units_per_part(self) -> int:
        """Units each part of this message can hold (160/153 for GSM-7, 70/67 for UCS-2)."""
        single, per_part = _limits(self.encoding)
        return single if self.segments == 1 else per_part

    def split_parts(self) -> tuple[str, ...]:
        """The texts of the parts, in order; they join back to ``text``."""
        if self.segments == 1:
            return (self.text,)
        layout = _layout(self.text, self.encoding)
        cuts = _cuts(layout, _limits(self.encoding)[1])
        bounds = [0, *(layout.character_index(cut) for cut in cuts)]
        return tuple(self.text[start:end] for start, end in pairwise(bounds))


def validate_body(text: str) -> None:
    """Refuse an empty or whitespace-only text, or one holding an unsendable character.

    Unsendable: a control character other than tab, CR, LF and form feed, or a lone surrogate.
    Raises ``EmptyBody`` or ``InvalidCharacter`` (whose ``position`` is a code-point index).
    """
    if not text or text.isspace():
        raise EmptyBody
    check_characters(text)


def check_characters(text: str, *, field: str | None = "body") -> None:
    """Refuse ``text`` if it holds an unsendable character (see ``validate_body``); empty is fine.

    Raises ``InvalidCharacter`` about ``field``.
    """
    match = _UNSENDABLE.search(text)
    if match is not None:
        raise InvalidCharacter(position=match.start(), character=match.group(), field=field)


def classify(text: str) -> Encoding:
    """The encoding ``text`` needs: GSM-7 if every character is in GSM 03.38, else UCS-2."""
    return Encoding.GSM7 if gsm7.is_gsm7(text) else Encoding.UCS2


def count_segments(text: str) -> Segmentation:
    """Validate ``text`` (as ``validate_body``) and count the parts it is sent as."""
    if not text or text.isspace():
        raise EmptyBody
    characters = len(text)
    # Fast path: a GSM-7 text cannot hold an unsendable character, so needs no other check.
    if gsm7.is_basic(text):
        segments = _count_parts(characters, gsm7.SEPTETS_SINGLE, gsm7.SEPTETS_PER_PART)
        return Segmentation(text, Encoding.GSM7, segments, characters, characters)
    if gsm7.is_gsm7(text):
        encoding = Encoding.GSM7
    else:
        validate_body(text)
        encoding = Encoding.UCS2
    layout = _layout(text, encoding)
    single, per_part = _limits(encoding)
    segments = 1 if layout.units <= single else len(_cuts(layout, per_part))
    return Segmentation(text, encoding, segments, characters, layout.units)


class _Layout(NamedTuple):
    """A text as the unit stream it is sent as (septets or UTF-16 code units)."""

    units: int
    splits_character: Callable[[int], bool]
    """Whether a cut before unit ``offset`` falls inside a two-unit character."""
    character_index: Callable[[int], int]
    """The index in the text of the character starting at unit ``offset`` (a valid cut)."""


def _layout(text: str, encoding: Encoding) -> _Layout:
    if encoding is Encoding.GSM7:
        # The unit offset of each escape septet: its character's index plus the escapes before.
        escapes = [index + n for n, index in enumerate(gsm7.extension_positions(text))]
        escape_set = frozenset(escapes)
        return _Layout(
            len(text) + len(escapes),
            lambda offset: offset - 1 in escape_set,
            lambda offset: offset - bisect_left(escapes, offset),
        )
    utf16 = text.encode("utf-16-le")
    return _Layout(
        len(utf16) // 2,
        lambda offset: 0xDC <= utf16[2 * offset + 1] <= 0xDF,  # a low (second) surrogate
        lambda offset: len(utf16[: 2 * offset].decode("utf-16-le")),
    )


def _cuts(layout: _Layout, per_part: int) -> list[int]:
    """Unit offsets where each part ends: as full as it can be without splitting a character."""
    cuts: list[int] = []
    start = 0
    while layout.units - start > per_part:
        end = start + per_part
        if layout.splits_character(end):
            end -= 1
        cuts.append(end)
        start = end
    cuts.append(layout.units)
    return cuts


def _limits(encoding: Encoding) -> tuple[int, int]:
    if encoding is Encoding.GSM7:
        return gsm7.SEPTETS_SINGLE, gsm7.SEPTETS_PER_PART
    return UCS2_SINGLE, UCS2_PER_PART


def _count_parts(units: int, single: int, per_part: int) -> int:
    """Parts for ``units`` of one unit each (no character can straddle a boundary)."""
    if units <= single:
        return 1
    return -(-units // per_part)
