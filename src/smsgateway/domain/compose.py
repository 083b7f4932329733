"""Prepare a message body for sending: validate, optionally smart-encode, count, enforce limits.

The one call the HTTP layer (preview and send) and the dispatch path make for a body, so both
see the same text, encoding and part count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from smsgateway.domain.errors import BodyTooLong, TooManySegments
from smsgateway.domain.parameters import fills_placeholders, render
from smsgateway.domain.segments import Encoding, Segmentation, count_segments
from smsgateway.domain.smart_encoding import Replacement, apply_smart_encoding

MAX_BODY_CHARACTERS: Final = 2000
"""Sinch's limit on ``body`` (older documentation said 1600), counted here in code points."""


@dataclass(frozen=True, slots=True)
class PreparedBody:
    """The text to send (after smart encoding), how it is sent, and what was replaced."""

    original: str
    segmentation: Segmentation
    replacements: tuple[Replacement, ...]

    @property
    def text(self) -> str:
        """The text to send to Sinch."""
        return self.segmentation.text

    @property
    def encoding(self) -> Encoding:
        """GSM-7 or UCS-2."""
        return self.segmentation.encoding

    @property
    def segments(self) -> int:
        """The parts each recipient is sent (and billed for)."""
        return self.segmentation.segments


def prepare_body(
    body: str,
    *,
    smart_encoding: bool,
    max_segments: int,
    max_characters: int = MAX_BODY_CHARACTERS,
) -> PreparedBody:
    """Validate ``body``, smart-encode it if asked (only where that makes it GSM-7), count parts.

    Raises ``EmptyBody``, ``InvalidCharacter``, ``BodyTooLong`` (more than ``max_characters``
    code points after smart encoding) or ``TooManySegments`` (more than ``max_segments`` parts;
    the error carries the count it would have cost).
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    segmentation = count_segments(body)
    replacements: tuple[Replacement, ...] = ()
    if smart_encoding and segmentation.encoding is Encoding.UCS2:
        encoded = apply_smart_encoding(body)
        if encoded.changed:
            # Dropping invisible characters can leave nothing: counting again re-checks that.
            segmentation = count_segments(encoded.text)
            replacements = encoded.replacements
    if segmentation.characters > max_characters:
        raise BodyTooLong(characters=segmentation.characters, max_characters=max_characters)
    if segmentation.segments > max_segments:
        raise TooManySegments(segments=segmentation.segments, max_segments=max_segments)
    return PreparedBody(body, segmentation, replacements)


def count_rendered(
    prepared: PreparedBody,
    parameters: Mapping[str, Mapping[str, str]],
    recipients: Sequence[str],
    *,
    max_segments: int,
) -> dict[str, int] | None:
    """The parts each of ``recipients`` (E.164) is sent once Sinch fills in ``parameters``,
    or None when the text is the same for all (no placeholder names a parameter): a value can
    lengthen the text, or make it UCS-2 (values are sent as given, never smart-encoded).

    Raises ``TooManySegments`` (the largest count) when some recipient's text would take more
    than ``max_segments`` parts (Sinch would refuse or cut that recipient's message), and
    ``EmptyBody`` when some recipient's text is filled in to nothing.
    """
    if not fills_placeholders(prepared.text, parameters):
        return None
    counted: dict[str, int] = {}  # by rendered text: recipients often share one
    parts: dict[str, int] = {}
    for recipient in recipients:
        text = render(prepared.text, parameters, recipient)
        if text not in counted:
            counted[text] = count_segments(text).segments
        parts[recipient] = counted[text]
    worst = max(parts.values(), default=prepared.segments)
    if worst > max_segments:
        raise TooManySegments(segments=worst, max_segments=max_segments)
    return parts
