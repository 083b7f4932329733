"""MMS and binary messages at the HTTP edge: request models to draft input, drafts and
records to response fields. Text stays in ``messages.py``; this module is what MMS and binary
add to it, so either can be removed with its own files."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from smsgateway.api.media_schemas import BinaryIn, BinaryOut, MediaIn, MediaOut, MessageKindName
from smsgateway.api.schemas import (
    CostOut,
    DuplicateRecipientOut,
    LimitedRecipientOut,
    PreviewOut,
    RecipientOut,
    RefusedRecipientOut,
    SenderOut,
)
from smsgateway.domain.media import MediaContent
from smsgateway.services.drafting import MessageDraft
from smsgateway.services.media import BinaryInput


class PreviewRecipients(TypedDict):
    """The preview's fields about recipients and sender, shared by every kind."""

    recipients: list[RecipientOut]
    refused: list[RefusedRecipientOut]
    limited: list[LimitedRecipientOut]
    duplicates: list[DuplicateRecipientOut]
    duplicates_removed: int
    sender: SenderOut | None


class ContentFields(TypedDict):
    kind: MessageKindName
    media: MediaOut | None
    binary: BinaryOut | None


def media_content(media: MediaIn | None) -> MediaContent | None:
    if media is None:
        return None
    return MediaContent(
        url=media.url,
        message=media.message,
        subject=media.subject,
        strict_validation=media.strict_validation,
    )


def binary_input(binary: BinaryIn | None) -> BinaryInput | None:
    return None if binary is None else BinaryInput(body=binary.body, udh=binary.udh)


def stored_content_out(kind: str, body: str, content: Mapping[str, Any] | None) -> ContentFields:
    """``kind``, ``media`` and ``binary`` of a message as stored."""
    stored = dict(content or {})
    if kind == "media":
        strict = stored.get("strict_validation")
        subject = stored.get("subject")
        media = MediaOut(
            url=str(stored.get("url", "")),
            message=body or None,
            subject=None if subject is None else str(subject),
            strict_validation=strict if isinstance(strict, bool) else None,
        )
        return ContentFields(kind="media", media=media, binary=None)
    if kind == "binary":
        binary = BinaryOut(body=body, udh=str(stored.get("udh", "")))
        return ContentFields(kind="binary", media=None, binary=binary)
    return ContentFields(kind="text", media=None, binary=None)


def rich_preview_out(
    draft: MessageDraft, recipients: PreviewRecipients, cost: CostOut | None
) -> PreviewOut:
    """The preview of an MMS or a binary message: one MMS, or the binary parts."""
    content = draft.content
    assert content is not None, "a draft without a text body has other content"
    stored = stored_content_out(content.kind.value, content.text, content.stored_content())
    return PreviewOut(
        **recipients,
        text=content.text,
        encoding=content.encoding,  # type: ignore[arg-type]
        segments=content.segments,
        total_segments=content.segments * len(draft.recipients.accepted),
        characters=content.characters,
        units=content.units,
        units_per_segment=content.units_per_segment,
        parts=[],
        replacements=[],
        cost=cost,
        **stored,
    )
