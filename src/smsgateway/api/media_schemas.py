"""The HTTP shapes of MMS and binary messages: ``media`` or ``binary`` instead of ``body``.

Kept apart from ``schemas.py`` so that MMS (which Sinch marks as scheduled for deprecation on
the SMS REST API) can be removed with its own files. Lengths and formats are checked by the
domain (``domain/media.py``, ``domain/binary_sms.py``), which answers with its own codes.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from smsgateway.domain.text import find_unstorable

MessageKindName = Literal["text", "media", "binary"]


def _storable(value: str) -> str:
    if find_unstorable(value) is not None:
        raise ValueError("U+0000 or a lone surrogate cannot be stored.")
    return value


_Text = Annotated[str, AfterValidator(_storable)]


class MediaIn(BaseModel):
    """An MMS (Sinch ``mt_media``): from a Sinch account in region us, to US, CA, AU and PR."""

    model_config = ConfigDict(extra="forbid")

    url: _Text = Field(
        max_length=4096,
        description="https URL of the image, video or audio; Sinch fetches it and needs a "
        "Content-Length (no chunked answer).",
        examples=["https://example.com/cat.jpg"],
    )
    message: _Text | None = Field(
        default=None, description="Text shown with the media; at most 5,000 characters."
    )
    subject: _Text | None = Field(default=None, description="At most 80 characters.")
    strict_validation: bool | None = Field(
        default=None, description="Ask Sinch to refuse media that break its MMS best practices."
    )


class BinaryIn(BaseModel):
    """A binary SMS (Sinch ``mt_binary``): 140 octets a part, UDH included."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(
        max_length=8192,
        description="The payload in base64. Over one part only with a concatenation UDH.",
        examples=["SGVsbG8="],
    )
    udh: str = Field(
        max_length=280,
        description="The User Data Header in hex, its first octet its length.",
        examples=["050003CC0201"],
    )


class MediaOut(BaseModel):
    url: str
    message: str | None
    subject: str | None
    strict_validation: bool | None


class BinaryOut(BaseModel):
    body: str = Field(description="base64")
    udh: str = Field(description="hex")
