"""The HTTP shapes of messages: what callers send (``MessageIn``) and what they get back."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    JsonValue,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from smsgateway.api.media_schemas import BinaryIn, BinaryOut, MediaIn, MediaOut, MessageKindName
from smsgateway.domain.destination_policy import PolicyRefusal
from smsgateway.domain.errors import DomainError
from smsgateway.domain.message_events import MessageEventKind
from smsgateway.domain.message_kind import ContentChoiceError
from smsgateway.domain.phone import NumberType, PhoneRefusal, SenderKind
from smsgateway.domain.recipients import MAX_RECIPIENTS
from smsgateway.domain.segments import validate_body
from smsgateway.domain.status import MessageStatus, RecipientStatus
from smsgateway.domain.text import find_unstorable, is_plausible_instant

DeliveryReportMode = Literal["none", "summary", "full", "per_recipient", "per_recipient_final"]
EncodingName = Literal["GSM-7", "UCS-2", "MMS", "binary"]
RawNumber = Annotated[str, Field(min_length=1, max_length=64)]
MessageIdPath = Annotated[
    UUID, Path(description="The message's id, as in the send's answer and its `Location`.")
]


def _storable(value: str) -> str:
    position = find_unstorable(value)
    if position is not None:
        raise PydanticCustomError(
            "invalid_character",
            "U+0000 or a lone surrogate at position {position} cannot be stored.",
            {"position": position},
        )
    return value


_BARE_NUMBER = re.compile(r"^\s*[+-]?\d+(\.\d*)?\s*$")


def _iso_text(value: object) -> object:
    # Pydantic would read a number (or a numeric string, as every query value is) as Unix
    # time; the document says date-time, so only ISO 8601 text is one.
    if not isinstance(value, str) or _BARE_NUMBER.match(value):
        raise PydanticCustomError(
            "invalid_format",
            "An ISO 8601 date-time with an offset is required, e.g. 2026-12-03T10:00:00Z.",
        )
    return value


def _plausible(value: datetime) -> datetime:
    if not is_plausible_instant(value):
        raise PydanticCustomError(
            "date_out_of_range", "The date must lie between the years 2000 and 9000."
        )
    return value


# Text the gateway keeps, and instants it schedules by: checked here so that one caller's
# value can never fail the statement it shares with others (group commit).
StorableStr = Annotated[str, AfterValidator(_storable)]
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
PlausibleDatetime = Annotated[Instant, AfterValidator(_plausible)]

# Accepted as shipped (Swagger's "Try it out" on `make run`): no `from`, which only the
# operator's allowed senders may fill, so the default sender is used.
_EXAMPLE_REQUEST: dict[str, JsonValue] = {
    "to": ["+46701234567", "+12025550143"],
    "body": "Your code is 123456",
    "client_reference": "order-4711",
}


class ResponseModel(BaseModel):
    """An answer's model: every field is always sent, so the schema marks every one required
    (nullable where null occurs), and typed clients get no `None` that never comes."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class MessageIn(BaseModel):
    """A message to send (or preview): one body to one or more recipients."""

    model_config = ConfigDict(
        extra="forbid", populate_by_name=True, json_schema_extra={"examples": [_EXAMPLE_REQUEST]}
    )

    # The 1..1000 bounds are checked by the domain, which answers with its own codes
    # (no_recipients, too_many_recipients) before parsing any number.
    to: list[RawNumber] = Field(
        description=f"One number or a list of 1 to {MAX_RECIPIENTS}; E.164, or national form "
        "with a region.",
        examples=[["+46701234567"]],
        json_schema_extra={"minItems": 1, "maxItems": MAX_RECIPIENTS},
    )
    # The domain checks emptiness (code empty_body); the schema says it too, for clients.
    body: str | None = Field(
        default=None,
        description="The text; GSM-7 or UCS-2 is chosen for it. Not empty or only spaces. "
        "Exactly one of `body`, `media` and `binary` (422 `content_choice` otherwise).",
        json_schema_extra={"minLength": 1, "pattern": r"\S"},
    )
    media: MediaIn | None = Field(default=None, description="An MMS instead of a text.")
    binary: BinaryIn | None = Field(default=None, description="A binary SMS instead of a text.")
    sender: StorableStr | None = Field(
        default=None,
        alias="from",
        max_length=32,
        description="Sender id; default SINCH_NUMBER. Others only if allowed by the operator. "
        "Without either, the Sinch plan's default originator if the operator declared one; "
        "else the message is refused (422 sender_required).",
    )
    region: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2}$",
        description="Region (ISO 3166, e.g. US) for numbers written in national form.",
        examples=["US"],
    )
    smart_encoding: bool = Field(
        default=False,
        strict=True,
        description="Replace look-alikes (curly quotes, dashes, ...) when that makes it GSM-7.",
    )
    max_segments: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=255,
        description="Refuse the message if it needs more parts.",
    )
    client_reference: StorableStr | None = Field(
        default=None, max_length=256, description="Your own id for this message."
    )
    send_at: PlausibleDatetime | None = Field(default=None, description="Send later, not before.")
    expire_at: PlausibleDatetime | None = Field(
        default=None, description="Give up if it cannot be sent or delivered by then."
    )
    callback_url: HttpUrl | None = Field(
        default=None, description="Your webhook for this message's status events."
    )
    delivery_report: DeliveryReportMode = Field(
        default="per_recipient", description="How Sinch reports delivery."
    )
    parameters: dict[str, dict[str, str]] | None = Field(
        default=None,
        description="Sinch's per-recipient templating: ${name} in body, "
        '{"name": {"+46701234567": "Ann", "default": "there"}}. Each key is `default` or one '
        "of the recipients in `to`, written in any form `to` accepts (read with the same "
        "region); it is stored and sent in E.164 like `to`. A key that is not a valid number "
        "(`invalid_phone_number`), names no recipient (`parameter_recipient_unknown`) or the "
        "same number as another key (`duplicate_parameter_recipient`) is refused, field "
        "`parameters.<name>.<key>`; so is a `${name}` in the body that some recipient has no "
        "value for, without a `default` (`parameter_value_missing`, field "
        "`parameters.<name>`), since Sinch would abort that recipient's message (405).",
    )

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("body")
    @classmethod
    def _valid_body(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            validate_body(value)
        except DomainError as exc:
            raise PydanticCustomError(exc.code, exc.message) from exc
        return value

    @model_validator(mode="after")
    def _one_content(self) -> MessageIn:
        given = [name for name in ("body", "media", "binary") if getattr(self, name) is not None]
        if len(given) != 1:
            error = ContentChoiceError(given)
            raise PydanticCustomError(error.code, error.message)
        return self


class RecipientOut(ResponseModel):
    index: int = Field(description="Position in the request's `to`.", examples=[0])
    input: str = Field(examples=["(202) 555-0143"])
    e164: str = Field(examples=["+12025550143"])
    region: str = Field(examples=["US"])
    type: NumberType = Field(examples=["mobile"])


class RecipientRefusal(StrEnum):
    """Why a recipient is refused: its number (``PhoneRefusal``) or the caller's destination
    policy (``PolicyRefusal``); the value is the error code."""

    NOT_A_NUMBER = PhoneRefusal.NOT_A_NUMBER.value
    MISSING_COUNTRY_CODE = PhoneRefusal.MISSING_COUNTRY_CODE.value
    INVALID_COUNTRY_CODE = PhoneRefusal.INVALID_COUNTRY_CODE.value
    TOO_SHORT = PhoneRefusal.TOO_SHORT.value
    TOO_LONG = PhoneRefusal.TOO_LONG.value
    INVALID_LENGTH = PhoneRefusal.INVALID_LENGTH.value
    INVALID_FOR_REGION = PhoneRefusal.INVALID_FOR_REGION.value
    INVALID_NUMBER = PhoneRefusal.INVALID_NUMBER.value
    CANNOT_RECEIVE_SMS = PhoneRefusal.CANNOT_RECEIVE_SMS.value
    COUNTRY_NOT_ALLOWED = PolicyRefusal.COUNTRY_NOT_ALLOWED.value
    NUMBER_TYPE_NOT_ALLOWED = PolicyRefusal.NUMBER_TYPE_NOT_ALLOWED.value


class RefusedRecipientOut(ResponseModel):
    index: int = Field(examples=[2])
    input: str = Field(examples=["12345"])
    code: RecipientRefusal = Field(examples=["too_short"])
    message: str = Field(examples=["The number at index 2 is too short."])


class LimitRefusal(StrEnum):
    """Why sending now would refuse a recipient the number and destination policy allow."""

    VELOCITY_LIMITED = "velocity_limited"
    SPEND_CAP_REACHED = "spend_cap_reached"


class LimitedRecipientOut(ResponseModel):
    index: int = Field(description="Position in the request's `to`.", examples=[0])
    input: str = Field(examples=["+46701234567"])
    code: LimitRefusal = Field(examples=["velocity_limited"])
    message: str = Field(
        examples=["Too many messages to this prefix in the last while; retry after 42 seconds."]
    )
    retry_after: int = Field(
        description="Seconds until it may pass: the velocity window draining, or the spend "
        "cap's day or month ending.",
        examples=[42],
    )


class DuplicateRecipientOut(ResponseModel):
    index: int = Field(examples=[1])
    input: str = Field(examples=["+1 202 555 0143"])
    e164: str = Field(examples=["+12025550143"])
    first_index: int = Field(examples=[0])


class SenderOut(ResponseModel):
    value: str = Field(examples=["+12025550123"])
    kind: SenderKind = Field(examples=["number"])


class ReplacementOut(ResponseModel):
    position: int = Field(description="Index in the original body.", examples=[4])
    original: str = Field(examples=["\u2019"])
    replacement: str = Field(examples=["'"])


class CountryCostOut(ResponseModel):
    country_code: int = Field(examples=[46])
    recipients: int = Field(examples=[1])
    segments: int = Field(examples=[1])
    unit_price: Decimal | None = Field(examples=["0.0450"])
    cost: Decimal | None = Field(examples=["0.0450"])


class CostOut(ResponseModel):
    currency: str = Field(examples=["EUR"])
    total: Decimal = Field(description="The known costs only.", examples=["0.0525"])
    complete: bool = Field(description="Whether every recipient's country has a price.")
    countries: list[CountryCostOut]
    unknown_country_codes: list[int] = Field(examples=[[998]])


class PreviewOut(ResponseModel):
    """What sending would do: to whom, how encoded, how many parts, at what cost."""

    recipients: list[RecipientOut]
    refused: list[RefusedRecipientOut]
    limited: list[LimitedRecipientOut] = Field(
        default_factory=list,
        description="Recipients in `recipients` that sending now would refuse for a velocity "
        "limit or a spend cap, read from the counters as they stand (nothing is taken).",
    )
    duplicates: list[DuplicateRecipientOut]
    duplicates_removed: int = Field(examples=[0])
    sender: SenderOut | None
    text: str = Field(description="The text as it would be sent (after smart encoding).")
    encoding: EncodingName
    segments: int = Field(
        description="Parts each recipient receives; with `parameters` filled in, the most any "
        "recipient receives (`text`, `encoding` and `parts` show the text before filling in).",
        examples=[1],
    )
    total_segments: int = Field(
        description="Parts all accepted recipients receive together (with `parameters`, counted "
        "on each one's text as Sinch fills it in); the cost and spend caps count these.",
        examples=[2],
    )
    characters: int = Field(description="Unicode code points.", examples=[19])
    units: int = Field(description="GSM-7 septets or UTF-16 code units.", examples=[19])
    units_per_segment: int = Field(examples=[160])
    parts: list[str] = Field(description="The text of each part as carriers split it.")
    replacements: list[ReplacementOut]
    cost: CostOut | None = Field(description="Null when no price table is configured.")
    kind: MessageKindName = Field(default="text", description="text, media (MMS) or binary.")
    media: MediaOut | None = Field(default=None, description="The MMS as it would be sent.")
    binary: BinaryOut | None = Field(
        default=None, description="The binary SMS as it would be sent."
    )
    parameters: dict[str, dict[str, str]] | None = Field(
        default=None,
        description="The parameters as they would be sent: keys in E.164 (or `default`).",
        examples=[{"name": {"+14155550157": "Ann", "default": "there"}}],
    )


class MessageRecipientOut(ResponseModel):
    to: str = Field(
        examples=["+46701234567"],
        description="E.164; only the country code and `*` (`+46*`) once the message is redacted.",
    )
    status: RecipientStatus = Field(examples=["queued"])
    code: int | None = Field(default=None, description="Sinch's status code, when reported.")
    status_at: AwareDatetime | None = Field(default=None, description="When Sinch saw this status.")
    updated_at: AwareDatetime


class MessageEventOut(ResponseModel):
    id: int
    kind: MessageEventKind = Field(
        examples=["accepted"],
        description="What happened; an event that ends a message before Sinch had it is named "
        "for the status it ended with (rejected, expired, failed, ...).",
    )
    recipient: str | None = Field(None, description="The recipient a recipient's event is of.")
    status: RecipientStatus | MessageStatus | None = Field(
        None, description="The recipient's status after a recipient's event, else the message's."
    )
    code: int | None = Field(None, description="Sinch's status code, on a delivery report.")
    detail: dict[str, JsonValue] = Field(default_factory=dict)
    occurred_at: AwareDatetime


class MessageOut(ResponseModel):
    """A message as the gateway holds it."""

    id: UUID = Field(examples=["019ac7f1-6e2b-7c3a-9d41-2f5e8b1a0c77"])
    status: MessageStatus = Field(examples=["queued"])
    status_code: str | None = Field(
        default=None,
        description="Why it ended unsent, null otherwise: one of the gateway's codes "
        "(`no_recipients`, `expired_before_send`, `sender_required`, `invalid_request`, "
        "`opted_out`, `expired_while_retrying`, `max_age_exceeded`, `max_attempts_exceeded`) "
        "or Sinch's error code for a batch it refused (`http_<status>` without one). Not an "
        "enum: Sinch's codes are an open set.",
        examples=["max_attempts_exceeded"],
    )
    status_detail: str | None = None
    recipients: list[MessageRecipientOut]
    sender: str | None
    body: str = Field(
        description="The text; for an MMS its text (maybe empty); for a binary "
        "SMS the payload in base64. Empty once the message is redacted."
    )
    redacted: bool = Field(
        default=False,
        description="True once the retention job has redacted the message (after the tenant's "
        "retention window): `body`, `parameters`, an MMS's `url` and `subject` are gone and "
        "every number keeps only its country code (`+46*`). Deleted messages are 404.",
    )
    redacted_at: AwareDatetime | None = Field(
        default=None, description="When the message was redacted; null while it is kept whole."
    )
    encoding: EncodingName
    kind: MessageKindName = Field(default="text", description="text, media (MMS) or binary.")
    media: MediaOut | None = Field(default=None, description="Set for an MMS.")
    binary: BinaryOut | None = Field(default=None, description="Set for a binary SMS.")
    segments: int = Field(
        description="Parts each recipient is sent; with `parameters`, the most any recipient's "
        "filled-in text takes."
    )
    characters: int
    client_reference: str | None
    sinch_batch_id: str | None = Field(description="Set once Sinch has accepted the batch.")
    delivery_report: DeliveryReportMode
    send_at: AwareDatetime | None
    expire_at: AwareDatetime | None
    callback_url: str | None
    created_at: AwareDatetime
    updated_at: AwareDatetime
    submitted_at: AwareDatetime | None
    events: list[MessageEventOut] | None = Field(
        default=None, description="The ordered history; only on GET /v1/messages/{id}."
    )


class MessagePage(ResponseModel):
    items: list[MessageOut]
    next: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null at the end."
    )
