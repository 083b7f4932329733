"""MMS (``type: mt_media``): what Sinch takes, checked before anything is stored.

Pure. Sinch sends MMS on the SMS REST API from accounts in region ``us`` only, to numbers in
the United States, Canada, Australia and Puerto Rico, and fetches the media itself from a
URL it must reach over the internet. Sinch marks MMS on this API as scheduled for
deprecation, so everything MMS lives in this module, ``services/media.py`` and
``services/media_check.py``: removing them (and the ``media`` field) removes MMS.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from smsgateway.domain.callback_targets import is_refused_address
from smsgateway.domain.errors import DomainError
from smsgateway.domain.text import find_unstorable

MMS_SINCH_REGIONS: Final = frozenset({"us"})
"""The Sinch regions whose accounts can send ``mt_media``."""

MMS_DESTINATION_REGIONS: Final = frozenset({"US", "CA", "AU", "PR"})
"""The destination countries Sinch serves with MMS (ISO 3166-1 alpha-2)."""

# Sinch's MMS limits: a subject of at most 80 characters and a text of at most 5,000
# (Sinch MMS API, "message-subject" and text slides); the SMS REST API forwards to it.
MAX_SUBJECT_CHARACTERS: Final = 80
MAX_MESSAGE_CHARACTERS: Final = 5000
MAX_URL_CHARACTERS: Final = 2048


class MediaError(DomainError):
    """An MMS that Sinch would not send as given."""


class MmsNotAvailableInRegion(MediaError):
    default_code = "mms_not_available_in_region"

    def __init__(self, sinch_region: str) -> None:
        super().__init__(
            f"This gateway sends through Sinch region {sinch_region!r}; Sinch sends MMS only "
            "from accounts in region 'us'.",
            field="media",
        )


class MmsDestinationNotSupported(MediaError):
    default_code = "mms_destination_not_supported"

    def __init__(self, index: int, e164: str, region: str) -> None:
        super().__init__(
            f"The number at index {index} ({region}) is in a country Sinch does not serve "
            "with MMS; MMS goes to the US, Canada, Australia and Puerto Rico only.",
            field=f"to.{index}",
        )
        self.e164 = e164


class MediaUrlRefused(MediaError):
    """The media URL is not https, has no host, or points at a private address."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, field="media.url", code=code)


class MediaTextTooLong(MediaError):
    default_code = "media_text_too_long"

    def __init__(self, name: str, characters: int, limit: int) -> None:
        super().__init__(
            f"The MMS {name} has {characters} characters; Sinch takes at most {limit}.",
            field=f"media.{name}",
        )


class MediaUnfit(MediaError):
    """What the media check found (``media_unreachable``, ``media_length_unknown``,
    ``media_type_unsupported``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, field="media.url", code=code)


MEDIA_URL_NOT_HTTPS = "media_url_not_https"
MEDIA_URL_INVALID = "media_url_invalid"
MEDIA_URL_PRIVATE = "media_url_private"


@dataclass(frozen=True, slots=True)
class MediaContent:
    """An MMS as Sinch's ``body`` of an ``mt_media`` batch."""

    url: str
    message: str | None = None
    subject: str | None = None
    strict_validation: bool | None = None

    @property
    def text(self) -> str:
        """The text shown with the media (the message's ``body`` in the gateway's record)."""
        return self.message or ""

    def to_json(self) -> dict[str, str | bool]:
        document: dict[str, str | bool] = {"url": self.url}
        if self.message is not None:
            document["message"] = self.message
        if self.subject is not None:
            document["subject"] = self.subject
        if self.strict_validation is not None:
            document["strict_validation"] = self.strict_validation
        return document


def check_media_content(content: MediaContent, *, allow_private: bool = False) -> None:
    """Raises ``MediaUrlRefused`` or ``MediaTextTooLong``; names are not resolved here."""
    refusal = media_url_refusal(content.url, allow_private=allow_private)
    if refusal is not None:
        raise MediaUrlRefused(*refusal)
    for name, value, limit in (
        ("message", content.message, MAX_MESSAGE_CHARACTERS),
        ("subject", content.subject, MAX_SUBJECT_CHARACTERS),
    ):
        if value is not None and len(value) > limit:
            raise MediaTextTooLong(name, len(value), limit)


def media_url_refusal(url: str, *, allow_private: bool = False) -> tuple[str, str] | None:
    """``(code, message)`` if Sinch could not or should not fetch ``url``, else None.

    https only (Sinch fetches over the internet, and a plain-http URL can be altered on the
    way); a host written as a non-public IP literal, ``localhost`` or a ``.local`` name is
    refused unless ``allow_private``. A name that resolves to a private address is caught by
    the optional media check, which resolves it.
    """
    if len(url) > MAX_URL_CHARACTERS or find_unstorable(url) is not None:
        return MEDIA_URL_INVALID, f"The media URL must be at most {MAX_URL_CHARACTERS} characters."
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # reading it validates it
    except ValueError:
        return MEDIA_URL_INVALID, "The media URL has no valid host or port."
    if parts.scheme.lower() != "https":
        return MEDIA_URL_NOT_HTTPS, "The media URL must be https: Sinch fetches it itself."
    if not host:
        return MEDIA_URL_INVALID, "The media URL has no valid host or port."
    if not allow_private and is_private_name(host):
        return MEDIA_URL_PRIVATE, (
            "The media URL points at a private, loopback or link-local address; Sinch "
            "fetches media from public addresses only."
        )
    return None


def is_private_name(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal) is private by how it is written."""
    name = host.rstrip(".").lower()
    if name in ("localhost", "local") or name.endswith((".localhost", ".local")):
        return True
    try:
        address = str(ipaddress.ip_address(name.strip("[]")))
    except ValueError:
        return False
    return is_refused_address(address, allow_private=False)


def check_mms_route(sinch_region: str, destinations: Iterable[tuple[int, str, str]]) -> None:
    """Refuses an MMS Sinch would not send: from a region other than ``us``
    (``MmsNotAvailableInRegion``), or to a country outside US, CA, AU and PR
    (``MmsDestinationNotSupported``, the first such recipient). ``destinations`` are
    ``(index, e164, region)``."""
    if sinch_region.lower() not in MMS_SINCH_REGIONS:
        raise MmsNotAvailableInRegion(sinch_region)
    for index, e164, region in destinations:
        if region.upper() not in MMS_DESTINATION_REGIONS:
            raise MmsDestinationNotSupported(index, e164, region)
