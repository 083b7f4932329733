"""Binary SMS (``type: mt_binary``): a base64 payload and a hex User Data Header.

Pure. One SMS carries 140 octets of user data, the UDH included. A payload that does not fit
one part is sent only when its UDH says how the parts belong together: a concatenation
element (IEI 0x00, 8-bit reference, or 0x08, 16-bit reference, 3GPP TS 23.040 §9.2.3.24).
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Final

from smsgateway.domain.errors import DomainError, TooManySegments

OCTETS_PER_PART: Final = 140
_CONCATENATION_ELEMENTS: Final = frozenset({0x00, 0x08})


class BinaryError(DomainError):
    """A binary message Sinch would not send as given."""


class InvalidBinaryBody(BinaryError):
    default_code = "binary_body_invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="binary.body")


class InvalidUdh(BinaryError):
    default_code = "binary_udh_invalid"

    def __init__(self, message: str) -> None:
        super().__init__(message, field="binary.udh")


class BinaryTooLong(BinaryError):
    default_code = "binary_too_long"

    def __init__(self, octets: int, room: int) -> None:
        super().__init__(
            f"The payload is {octets} octets and one part has room for {room} beside the UDH; "
            "a longer payload needs a UDH with a concatenation element (IEI 00 or 08) that "
            "says how its parts belong together.",
            field="binary.body",
        )


@dataclass(frozen=True, slots=True)
class BinaryContent:
    """A checked binary message: ``body`` base64 and ``udh`` hex, as Sinch takes them."""

    body: str
    udh: str
    payload_octets: int
    segments: int

    def to_json(self) -> dict[str, str]:
        return {"body": self.body, "udh": self.udh}


def prepare_binary(body: str, udh: str, *, max_segments: int) -> BinaryContent:
    """Decodes and sizes a binary message; raises a ``BinaryError`` or ``TooManySegments``."""
    try:
        payload = base64.b64decode(body.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise InvalidBinaryBody("The binary body must be base64 (RFC 4648, with padding).") from exc
    if not payload:
        raise InvalidBinaryBody("The binary body is empty.")
    header = parse_udh(udh)
    room = OCTETS_PER_PART - len(header)
    if len(payload) <= room:
        segments = 1
    elif has_concatenation(header):
        segments = math.ceil(len(payload) / room)
    else:
        raise BinaryTooLong(len(payload), room)
    if segments > max_segments:
        raise TooManySegments(segments=segments, max_segments=max_segments, field="binary.body")
    return BinaryContent(
        body=body, udh=header.hex(), payload_octets=len(payload), segments=segments
    )


def parse_udh(udh: str) -> bytes:
    """The UDH's octets: hex, its first octet the length of the rest, its elements whole."""
    try:
        header = bytes.fromhex(udh)
    except ValueError as exc:
        raise InvalidUdh("The UDH must be hexadecimal octets, e.g. 050003CC0201.") from exc
    if not header or header[0] != len(header) - 1:
        raise InvalidUdh("The UDH's first octet must be the length of the octets after it.")
    if len(header) >= OCTETS_PER_PART:
        raise InvalidUdh(f"The UDH must leave room for data in {OCTETS_PER_PART} octets.")
    position = 1
    while position < len(header):
        if position + 1 >= len(header) or position + 2 + header[position + 1] > len(header):
            raise InvalidUdh("The UDH holds an element longer than the header.")
        position += 2 + header[position + 1]
    return header


def has_concatenation(header: bytes) -> bool:
    """Whether the UDH holds a concatenation element (IEI 0x00 or 0x08)."""
    position = 1
    while position + 1 < len(header):
        if header[position] in _CONCATENATION_ELEMENTS:
            return True
        position += 2 + header[position + 1]
    return False
