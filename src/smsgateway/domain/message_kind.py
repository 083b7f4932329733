"""What a message carries: text, MMS (``media``) or binary SMS; a request names exactly one."""

from __future__ import annotations

from enum import StrEnum

from smsgateway.domain.errors import DomainError


class MessageKind(StrEnum):
    """The kind of a message, as stored, shown and counted; each is one Sinch batch ``type``."""

    TEXT = "text"
    MEDIA = "media"
    BINARY = "binary"

    @property
    def sinch_type(self) -> str:
        return {"text": "mt_text", "media": "mt_media", "binary": "mt_binary"}[self.value]


class ContentChoiceError(DomainError):
    """The request names no content, or more than one of ``body``, ``media`` and ``binary``."""

    default_code = "content_choice"

    def __init__(self, given: list[str]) -> None:
        super().__init__(
            "Give exactly one of body (text), media (MMS) or binary; "
            + ("none was given." if not given else f"got {' and '.join(given)}."),
            field="body" if not given else given[-1],
        )
