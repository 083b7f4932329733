"""The types of inbound (MO) message Sinch posts, as the gateway shows them to callers.

Sinch may add types; the gateway keeps any inbound as received, and shows a type it does not
know (or a body without one) as ``unknown``, so callers get a closed set they can switch on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class InboundType(StrEnum):
    """An inbound message's ``type``: Sinch's name, or ``unknown`` for any other."""

    MO_TEXT = "mo_text"
    MO_BINARY = "mo_binary"
    MO_MEDIA = "mo_media"
    UNKNOWN = "unknown"


SINCH_INBOUND_TYPES: Final = frozenset(InboundType) - {InboundType.UNKNOWN}
"""The ``type`` values of Sinch's inbound callbacks that the gateway knows."""


def inbound_type(raw: str | None) -> InboundType:
    """``raw`` (a callback's ``type``, or the stored one) as callers see it."""
    return InboundType(raw) if raw in SINCH_INBOUND_TYPES else InboundType.UNKNOWN
