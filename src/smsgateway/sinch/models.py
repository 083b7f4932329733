"""Sinch SMS wire models: what goes over the wire, named as Sinch names it.

Every model accepts fields it does not know (``extra="allow"``: Sinch adds fields, and a new one
must never turn a 201 into an error) and refuses malformed known ones. Statuses, encodings and
report types are kept as the strings Sinch sent, so a value Sinch adds later still parses; the
StrEnums below name the values known today. ``from`` is a Python keyword: the attribute is
``from_``, the wire name stays ``from`` (serialise with :func:`to_wire`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    TypeAdapter,
)

MAX_RECIPIENTS = 1000
MAX_BODY_CHARS = 2000  # Sinch's current limit; older docs said 1600
MAX_REFERENCE_CHARS = 2048  # client_reference and callback_url alike

NonEmptyStr = Annotated[str, Field(min_length=1)]
# Sinch's status codes are small numbers (0, 400-412, ...); one beyond 32 bits is no code Sinch
# sends, and a report carrying one is unreadable (kept as unprocessable), not stored as is.
SinchCode = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]


def sinch_timestamp(moment: datetime) -> str:
    """``2026-12-03T10:00:00.123Z``: the ``YYYY-MM-DDThh:mm:ss.SSSZ`` form Sinch documents for
    ``send_at``, ``expire_at``, ``start_date`` and ``end_date``: UTC, milliseconds (truncated),
    ``Z``. A naive datetime is refused (``ValueError``): its moment is unknown."""
    if moment.utcoffset() is None:
        raise ValueError("a Sinch timestamp needs a timezone-aware datetime")
    utc = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return utc.removesuffix("+00:00") + "Z"


# A datetime we send, in Sinch's documented form (pydantic would write "+02:00" and
# microseconds as given; one form for every timestamp keeps requests comparable).
SinchTimestamp = Annotated[AwareDatetime, PlainSerializer(sinch_timestamp, when_used="json")]


class DeliveryReportType(StrEnum):
    """The ``delivery_report`` a batch asks for."""

    NONE = "none"
    SUMMARY = "summary"
    FULL = "full"
    PER_RECIPIENT = "per_recipient"
    PER_RECIPIENT_FINAL = "per_recipient_final"


class DeliveryStatus(StrEnum):
    """Delivery statuses as Sinch spells them; ``QUEUED`` and ``DISPATCHED`` are not final."""

    QUEUED = "Queued"
    DISPATCHED = "Dispatched"
    ABORTED = "Aborted"
    CANCELLED = "Cancelled"
    DELIVERED = "Delivered"
    EXPIRED = "Expired"
    FAILED = "Failed"
    REJECTED = "Rejected"
    DELETED = "Deleted"
    UNKNOWN = "Unknown"


class WireModel(BaseModel):
    """Base of every wire model: unknown fields kept, aliases (``from``) accepted by name too."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def to_wire(model: BaseModel) -> dict[str, Any]:
    """The JSON object to send: wire names, ISO-8601 datetimes, unset optional fields left out."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


class SendBatchRequest(WireModel):
    """A text batch to send (``type: mt_text``); ``client_reference`` should be our message id."""

    type: Literal["mt_text"] = "mt_text"
    to: list[NonEmptyStr] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    from_: NonEmptyStr | None = Field(default=None, alias="from")
    body: str = Field(max_length=MAX_BODY_CHARS)
    delivery_report: DeliveryReportType | None = None
    send_at: SinchTimestamp | None = None
    expire_at: SinchTimestamp | None = None
    callback_url: str | None = Field(default=None, max_length=MAX_REFERENCE_CHARS)
    client_reference: str | None = Field(default=None, max_length=MAX_REFERENCE_CHARS)
    # {"name": {"+15551230001": "Ann", "default": "there"}}, used as ${name} in the body.
    parameters: dict[str, dict[str, str]] | None = None
    max_number_of_message_parts: int | None = Field(default=None, ge=1)
    truncate_concat: bool | None = None
    flash_message: bool | None = None
    feedback_enabled: bool | None = None
    from_ton: int | None = Field(default=None, ge=0, le=6)
    from_npi: int | None = Field(default=None, ge=0, le=18)


class MediaBody(WireModel):
    """The ``body`` of an ``mt_media`` batch (MMS): ``url`` required."""

    url: NonEmptyStr
    message: str | None = None
    subject: str | None = None


class MediaBatchRequest(SendBatchRequest):
    """An MMS batch (``type: mt_media``, Sinch region us only; scheduled for deprecation)."""

    type: Literal["mt_media"] = "mt_media"  # type: ignore[assignment]
    body: MediaBody  # type: ignore[assignment]
    strict_validation: bool | None = None


class BinaryBatchRequest(SendBatchRequest):
    """A binary batch (``type: mt_binary``): ``body`` base64, ``udh`` hex."""

    type: Literal["mt_binary"] = "mt_binary"  # type: ignore[assignment]
    body: NonEmptyStr
    udh: NonEmptyStr


class Batch(WireModel):
    """A batch as Sinch stores it: the answer to send, get, list and cancel."""

    id: NonEmptyStr
    to: list[str]
    from_: str | None = Field(default=None, alias="from")
    # A string for text and binary batches, an object (url, message, subject) for MMS.
    body: str | dict[str, Any] | None = None
    type: str = "mt_text"
    canceled: bool = False
    created_at: datetime | None = None
    modified_at: datetime | None = None
    delivery_report: str | None = None
    send_at: datetime | None = None
    expire_at: datetime | None = None
    callback_url: str | None = None
    client_reference: str | None = None
    parameters: dict[str, dict[str, str]] | None = None
    max_number_of_message_parts: int | None = None
    flash_message: bool | None = None
    feedback_enabled: bool | None = None
    # Not on the wire: whether send_batch found this batch by client_reference after a send
    # whose outcome was unknown, rather than from the send's own answer.
    _found_by_lookup: bool = PrivateAttr(default=False)

    @property
    def found_by_lookup(self) -> bool:
        return self._found_by_lookup


class BatchPage(WireModel):
    """One page of ``list batches``; ``page`` counts from 0, ``count`` is the total."""

    count: int = Field(ge=0)
    page: int = Field(ge=0)
    page_size: int = Field(ge=0)
    batches: list[Batch]


class DryRunRecipient(WireModel):
    """How one recipient's message would be sent; ``encoding`` is ``text`` or ``unicode``."""

    recipient: str
    number_of_parts: int = Field(ge=0)
    body: str
    encoding: str


class DryRunResult(WireModel):
    """The answer to a dry run; ``per_recipient`` is filled only when it was asked for."""

    number_of_recipients: int = Field(ge=0)
    number_of_messages: int = Field(ge=0)
    per_recipient: list[DryRunRecipient] = Field(default_factory=list)


class StatusCount(WireModel):
    """One status of a batch report; ``recipients`` only in ``full`` reports."""

    code: SinchCode
    status: str
    count: int = Field(ge=0)
    recipients: list[str] = Field(default_factory=list)


class BatchDeliveryReport(WireModel):
    """A batch-level report (summary or full), fetched or received as a callback."""

    type: Literal["delivery_report_sms", "delivery_report_mms"]
    batch_id: NonEmptyStr
    total_message_count: int = Field(ge=0)
    statuses: list[StatusCount]
    client_reference: str | None = None


class RecipientDeliveryReport(WireModel):
    """One recipient's report; ``recipient`` may lack its leading ``+``, as Sinch sends it."""

    type: Literal["recipient_delivery_report_sms", "recipient_delivery_report_mms"]
    batch_id: NonEmptyStr
    recipient: NonEmptyStr
    code: SinchCode
    status: str
    at: datetime
    operator_status_at: datetime | None = None
    client_reference: str | None = None
    applied_originator: str | None = None
    number_of_message_parts: int | None = None
    encoding: str | None = None  # GSM or UNICODE here, unlike the dry run's text/unicode
    operator: str | None = None


class MoText(WireModel):
    """An inbound text message; ``to`` is our number or short code."""

    type: Literal["mo_text"]
    id: NonEmptyStr
    from_: NonEmptyStr = Field(alias="from")
    to: NonEmptyStr
    body: str
    received_at: datetime
    operator_id: str | None = None
    sent_at: datetime | None = None
    client_reference: str | None = None


class MoBinary(WireModel):
    """An inbound binary message: ``body`` and ``udh`` as Sinch sends them (base64 and hex)."""

    type: Literal["mo_binary"]
    id: NonEmptyStr
    from_: NonEmptyStr = Field(alias="from")
    to: NonEmptyStr
    body: str
    udh: str
    received_at: datetime
    operator_id: str | None = None
    sent_at: datetime | None = None
    client_reference: str | None = None


DeliveryReport = Annotated[
    BatchDeliveryReport | RecipientDeliveryReport, Field(discriminator="type")
]
"""Any delivery-report callback body, told apart by ``type``."""

InboundMessage = Annotated[MoText | MoBinary, Field(discriminator="type")]
"""Any inbound (MO) callback body this package understands, told apart by ``type``."""

DELIVERY_REPORT_ADAPTER: TypeAdapter[BatchDeliveryReport | RecipientDeliveryReport] = TypeAdapter(
    DeliveryReport
)
INBOUND_MESSAGE_ADAPTER: TypeAdapter[MoText | MoBinary] = TypeAdapter(InboundMessage)


def parse_delivery_report(raw: bytes | str) -> BatchDeliveryReport | RecipientDeliveryReport:
    """A delivery-report callback body parsed; raises ``pydantic.ValidationError`` if malformed."""
    return DELIVERY_REPORT_ADAPTER.validate_json(raw)


def parse_inbound_message(raw: bytes | str) -> MoText | MoBinary:
    """An inbound callback body parsed; raises ``pydantic.ValidationError`` if malformed."""
    return INBOUND_MESSAGE_ADAPTER.validate_json(raw)
