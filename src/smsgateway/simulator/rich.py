"""MMS (`mt_media`) and binary (`mt_binary`) batches, as Sinch takes them.

From the contract's "MMS and binary" section, independently of smsgateway.domain: MMS only
from accounts in region `us`, to US, Canada, Australia and Puerto Rico (told apart here by
calling code, +1 and +61: the simulator does not know every NANP area code), `body` an object
with a required `url`; MMS reports are `*_mms` and MMS failures use the MMS-only codes
414-418. Binary: `body` base64 and `udh` hex, 140 octets a part UDH included, more than one
part only with a concatenation element in the UDH.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from typing import Final, cast

from smsgateway.simulator.errors import constraint_violation, invalid_format
from smsgateway.simulator.lifecycle import Status

MMS_REGIONS: Final = frozenset({"us"})
MMS_CALLING_CODES: Final = ("1", "61")
OCTETS_PER_PART: Final = 140

# Which of the MMS-only codes means what is the simulator's assumption (the contract names
# only the range): an operator failure 414, an unserved destination 417, a bad media URL 418.
MMS_REJECTED = Status("Failed", 414)
MMS_UNREACHABLE = Status("Failed", 415)
MMS_UNRECOGNISED = Status("Failed", 416)
MMS_NOT_SUPPORTED = Status("Failed", 417)
MMS_BAD_MEDIA_URL = Status("Failed", 418)


@dataclass(frozen=True, slots=True)
class MediaBody:
    url: str
    message: str | None
    subject: str | None

    def to_wire(self) -> dict[str, str]:
        wire = {"url": self.url}
        if self.message is not None:
            wire["message"] = self.message
        if self.subject is not None:
            wire["subject"] = self.subject
        return wire


def parse_media_body(value: object) -> MediaBody:
    if value is None:
        raise constraint_violation("body: is required.")
    if not isinstance(value, dict):
        raise invalid_format("body: must be an object with url, message and subject.")
    data = cast(dict[str, object], value)
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise constraint_violation("body.url: is required.")
    if not url.startswith(("http://", "https://")):
        raise invalid_format("body.url: must be an http or https URL.")
    texts: dict[str, str | None] = {}
    for name in ("message", "subject"):
        item = data.get(name)
        if item is not None and not isinstance(item, str):
            raise invalid_format(f"body.{name}: must be a string.")
        texts[name] = item
    return MediaBody(url=url, message=texts["message"], subject=texts["subject"])


def binary_parts(body: object, udh: object) -> int:
    """The parts a binary message takes; raises Sinch's errors for a malformed one."""
    if not isinstance(body, str) or not body:
        raise constraint_violation("body: is required (base64).")
    if not isinstance(udh, str) or not udh:
        raise constraint_violation("udh: is required (hex).")
    try:
        payload = base64.b64decode(body, validate=True)
        header = bytes.fromhex(udh)
    except (binascii.Error, ValueError) as exc:
        raise invalid_format("body must be base64 and udh hex.") from exc
    room = OCTETS_PER_PART - len(header)
    if room <= 0:
        raise constraint_violation("udh: leaves no room for data.")
    if len(payload) <= room:
        return 1
    if not _concatenated(header):
        raise constraint_violation(
            f"body: {len(payload)} octets do not fit one part beside the udh, and the udh "
            "has no concatenation element."
        )
    return math.ceil(len(payload) / room)


def _concatenated(header: bytes) -> bool:
    position = 1
    while position + 1 < len(header):
        if header[position] in (0x00, 0x08):
            return True
        position += 2 + header[position + 1]
    return False


def mms_destination_served(digits: str) -> bool:
    return digits.startswith(MMS_CALLING_CODES)


def mms_final_status(url: str, outcome_status: Status) -> Status:
    """An MMS outcome in MMS terms: a media host under `.invalid` (RFC 2606) fails with 418,
    an operator failure uses 414 instead of 402; other outcomes stay."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    if host.endswith(".invalid"):
        return MMS_BAD_MEDIA_URL
    if outcome_status.name == "Failed":
        return MMS_REJECTED
    return outcome_status
