"""Everything Sinch posts to the one webhook URL, told apart by ``type`` and stored once.

A service plan has one callback URL, and Sinch posts every kind to it (the SDKs' union
``SmsCallback``): delivery reports (``delivery_report_sms``, ``delivery_report_mms``,
``recipient_delivery_report_sms``, ``recipient_delivery_report_mms``) go to
``DeliveryReportService``, inbound messages (``mo_text``, ``mo_binary``, ``mo_media``) to
``InboundService``. The body is parsed once. A kind the gateway does not know is kept for
operators by ``unknown_kinds`` (a delivery report kept as unprocessable, or an inbound stored
as received, as each older path did), and answered 200: Sinch would not retry a 4xx either.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from pydantic import TypeAdapter

from smsgateway.domain.inbound import SINCH_INBOUND_TYPES
from smsgateway.services.delivery_reports import (
    DeliveryReportService,
    ReportReceipt,
    read_json_object,
)
from smsgateway.services.inbound import InboundReceipt, InboundService
from smsgateway.sinch.models import (
    BatchDeliveryReport,
    MoBinary,
    MoText,
    RecipientDeliveryReport,
)

REPORT_TYPES: Final = frozenset(
    {
        "delivery_report_sms",
        "delivery_report_mms",
        "recipient_delivery_report_sms",
        "recipient_delivery_report_mms",
    }
)
INBOUND_TYPES: Final = SINCH_INBOUND_TYPES


class CallbackKind(StrEnum):
    """Which service took a callback."""

    DELIVERY_REPORT = "delivery_report"
    INBOUND = "inbound"


@dataclass(frozen=True, slots=True)
class CallbackReceipt:
    """What was done with one callback: exactly one of ``report`` and ``inbound`` is set."""

    kind: CallbackKind
    report: ReportReceipt | None = None
    inbound: InboundReceipt | None = None


class SinchCallbackService:
    """Routes each callback body to the service of its kind; one per process."""

    def __init__(self, reports: DeliveryReportService, inbound: InboundService) -> None:
        self._reports = reports
        self._inbound = inbound

    async def receive(
        self, body: bytes, *, unknown_kinds: CallbackKind = CallbackKind.DELIVERY_REPORT
    ) -> CallbackReceipt:
        """Stores the callback in ``body`` (raw bytes as received) with its kind's service.

        Raises ``UnreadablePayloadError`` for a body that is not a JSON object, and
        ``DatabaseUnavailableError`` when Postgres cannot take it now (Sinch should retry).
        """
        payload = read_json_object(body)
        kind = kind_of(payload.get("type"), unknown_kinds)
        if kind is CallbackKind.INBOUND:
            return CallbackReceipt(kind, inbound=await self._inbound.receive_payload(payload))
        return CallbackReceipt(kind, report=await self._reports.receive_payload(payload))


def kind_of(type_: object, unknown: CallbackKind) -> CallbackKind:
    """The kind of a callback by its ``type``; ``unknown`` for any other value."""
    if type_ in REPORT_TYPES:
        return CallbackKind.DELIVERY_REPORT
    if type_ in INBOUND_TYPES:
        return CallbackKind.INBOUND
    return unknown


CALLBACK_SCHEMA_NAME: Final = "SinchCallback"

_NUMBER_NOTE: Final = (
    "MSISDN as Sinch sends it: often without the leading `+` (read as E.164 all the same)."
)
_NUMBER_FIELDS: Final = {"recipient", "from", "to"}


def callback_body_schemas(ref_prefix: str = "#/components/schemas/") -> dict[str, Any]:
    """Named JSON Schemas of what Sinch posts (for OpenAPI only; bodies are read from raw
    bytes), built from the wire models: one per kind and ``SinchCallback``, their union told
    apart by ``type`` (every delivery-report and MO type Sinch sends is mapped)."""
    adapter: TypeAdapter[object] = TypeAdapter(
        BatchDeliveryReport | RecipientDeliveryReport | MoText | MoBinary
    )
    generated = adapter.json_schema(by_alias=True)
    definitions: dict[str, Any] = generated.pop("$defs", {})
    shapes = [_inlined(shape, definitions) for shape in generated["anyOf"]]
    named: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for shape in [*shapes, _MO_MEDIA]:
        name = f"Sinch{shape['title']}"
        named[name] = _with_number_notes({**shape, "title": name})
        type_schema = shape["properties"]["type"]
        for value in type_schema.get("enum", [type_schema.get("const")]):
            mapping[value] = f"{ref_prefix}{name}"
    named[CALLBACK_SCHEMA_NAME] = {
        "oneOf": [{"$ref": f"{ref_prefix}{name}"} for name in named],
        "discriminator": {"propertyName": "type", "mapping": mapping},
        "description": "Any of Sinch's callback bodies, told apart by `type`. A body of another "
        "`type`, or with missing fields, is kept for operators and answered 200; only a body "
        "that is not a JSON object is refused (400).",
    }
    return named


def _with_number_notes(shape: dict[str, Any]) -> dict[str, Any]:
    properties = {
        name: {**schema, "description": _NUMBER_NOTE, "examples": ["15551230001"]}
        if name in _NUMBER_FIELDS
        else schema
        for name, schema in shape["properties"].items()
    }
    return {**shape, "properties": properties}


# Not modelled by the Sinch client (the gateway stores it as received): its documented shape.
_MO_MEDIA: Final[dict[str, Any]] = {
    "title": "MoMedia",
    "type": "object",
    "required": ["type", "id", "from", "to", "body", "received_at"],
    "properties": {
        "type": {"const": "mo_media", "type": "string"},
        "id": {"type": "string", "minLength": 1},
        "from": {"type": "string", "minLength": 1},
        "to": {"type": "string", "minLength": 1},
        "body": {
            "type": "object",
            "description": "The media: `url`, and optionally `message` and `subject`.",
            "additionalProperties": True,
        },
        "received_at": {"type": "string", "format": "date-time"},
        "operator_id": {"type": "string"},
        "sent_at": {"type": "string", "format": "date-time"},
        "client_reference": {"type": "string"},
    },
    "additionalProperties": True,
}


def _inlined(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``#/$defs/`` reference replaced by its definition."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inlined(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inlined(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inlined(item, definitions) for item in schema]
    return schema
