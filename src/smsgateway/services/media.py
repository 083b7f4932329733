"""Draft the content of an MMS or a binary message: the non-text half of ``draft_message``.

No I/O. Text stays with ``domain/compose.py``; this module turns ``media`` or ``binary`` into
what the gateway stores and sends (``RichContent``), refusing what Sinch would refuse. It is
called from ``draft_message`` in one line, so removing MMS or binary later touches little.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from smsgateway.domain.binary_sms import OCTETS_PER_PART, BinaryContent, prepare_binary
from smsgateway.domain.errors import DomainError
from smsgateway.domain.media import (
    MAX_MESSAGE_CHARACTERS,
    MediaContent,
    check_media_content,
    check_mms_route,
)
from smsgateway.domain.message_kind import MessageKind
from smsgateway.domain.recipients import RecipientList
from smsgateway.sinch.models import (
    BinaryBatchRequest,
    DeliveryReportType,
    MediaBatchRequest,
    MediaBody,
)
from smsgateway.store.dispatch import OutgoingMessage

MMS_ENCODING: Final = "MMS"
BINARY_ENCODING: Final = "binary"


class ParametersNotSupported(DomainError):
    default_code = "parameters_not_supported"

    def __init__(self, kind: MessageKind) -> None:
        super().__init__(
            f"parameters (templating) apply to text messages only, not to {kind.value}.",
            field="parameters",
        )


@dataclass(frozen=True, slots=True)
class BinaryInput:
    """A binary message as the caller wrote it: ``body`` base64, ``udh`` hex."""

    body: str
    udh: str


@dataclass(frozen=True, slots=True)
class RichContent:
    """A checked MMS or binary message, in the gateway's record terms."""

    kind: MessageKind
    media: MediaContent | None = None
    binary: BinaryContent | None = None

    @property
    def text(self) -> str:
        """What the record's ``body`` holds: the MMS text, or the binary payload in base64."""
        if self.binary is not None:
            return self.binary.body
        return "" if self.media is None else self.media.text

    @property
    def encoding(self) -> str:
        return BINARY_ENCODING if self.kind is MessageKind.BINARY else MMS_ENCODING

    @property
    def segments(self) -> int:
        """Parts per recipient: one MMS, or the binary parts."""
        return 1 if self.binary is None else self.binary.segments

    @property
    def characters(self) -> int:
        """Code points of the MMS text, or octets of the binary payload."""
        return len(self.text) if self.binary is None else self.binary.payload_octets

    @property
    def units(self) -> int:
        return self.characters

    @property
    def units_per_segment(self) -> int:
        if self.binary is None:
            return MAX_MESSAGE_CHARACTERS
        return OCTETS_PER_PART - len(bytes.fromhex(self.binary.udh))

    def stored_content(self) -> dict[str, str | bool]:
        """The record's ``content``: what the batch needs besides ``body``."""
        if self.binary is not None:
            return {"udh": self.binary.udh}
        assert self.media is not None
        stored = self.media.to_json()
        stored.pop("message", None)
        return stored


def draft_rich_content(
    media: MediaContent | None,
    binary: BinaryInput | None,
    *,
    recipients: RecipientList,
    parameters: Mapping[str, Mapping[str, str]] | None,
    sinch_region: str,
    max_segments: int,
    allow_private_media: bool = False,
) -> RichContent | None:
    """None for a text message; else the checked MMS or binary content. Raises the
    ``DomainError``s of ``domain/media.py`` and ``domain/binary_sms.py``."""
    if media is not None:
        if parameters is not None:
            raise ParametersNotSupported(MessageKind.MEDIA)
        check_mms_route(
            sinch_region,
            (
                (accepted.index, accepted.number.e164, accepted.number.region)
                for accepted in recipients.accepted
            ),
        )
        check_media_content(media, allow_private=allow_private_media)
        return RichContent(MessageKind.MEDIA, media=media)
    if binary is not None:
        if parameters is not None:
            raise ParametersNotSupported(MessageKind.BINARY)
        prepared = prepare_binary(binary.body, binary.udh, max_segments=max_segments)
        return RichContent(MessageKind.BINARY, binary=prepared)
    return None


def rich_batch_request(
    message: OutgoingMessage, callback_url: str | None
) -> MediaBatchRequest | BinaryBatchRequest:
    """The Sinch batch of a stored MMS (``mt_media``) or binary message (``mt_binary``)."""
    stored = dict(message.content or {})
    to = list(message.sendable)
    report = DeliveryReportType(message.delivery_report)
    reference = str(message.id)
    if message.kind == MessageKind.BINARY:
        return BinaryBatchRequest(
            to=to,
            from_=message.sender,
            body=message.body,
            udh=str(stored["udh"]),
            delivery_report=report,
            expire_at=message.expire_at,
            callback_url=callback_url,
            client_reference=reference,
        )
    subject = stored.get("subject")
    strict = stored.get("strict_validation")
    return MediaBatchRequest(
        to=to,
        from_=message.sender,
        body=MediaBody(
            url=str(stored["url"]),
            message=message.body or None,
            subject=None if subject is None else str(subject),
        ),
        strict_validation=strict if isinstance(strict, bool) else None,
        delivery_report=report,
        expire_at=message.expire_at,
        callback_url=callback_url,
        client_reference=reference,
    )
