"""What the gateway POSTs to callers (OpenAPI 3.1 ``webhooks``): the status callback's body and
headers, and the tenant's own events (``message.inbound``, ``opt_out.changed``), so a
generated client or receiver knows them as it knows our answers."""

from __future__ import annotations

from typing import Any, Final, Literal, get_args
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from smsgateway.domain.inbound import InboundType
from smsgateway.domain.opt_out import KeywordKind
from smsgateway.domain.standard_webhooks import HEADER_DESCRIPTIONS
from smsgateway.domain.status import MessageStatus, RecipientStatus
from smsgateway.store.opt_outs import OptOutSource


class RecipientStatusChanged(BaseModel):
    """One recipient's status changed; POSTed to the message's `callback_url`, signed.

    The body is compact JSON with sorted keys, the same bytes on every attempt of the event.
    """

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)

    id: UUID = Field(description="The event's id: stable across retries and replays.")
    type: Literal["recipient.status_changed"]
    sequence: int = Field(description="The event's place among the message's, from 1.", ge=1)
    message_id: UUID
    client_reference: str | None = Field(description="Yours, from the message; null if none.")
    recipient: str = Field(description="E.164, with the `+`.", examples=["+46701234567"])
    status: RecipientStatus
    previous_status: RecipientStatus
    code: int | None = Field(description="Sinch's status code; null for the gateway's own changes.")
    status_at: AwareDatetime | None = Field(
        description="When Sinch saw the status; null for the gateway's own changes."
    )
    operator_status_at: AwareDatetime | None = Field(
        description="When the operator saw the status, if Sinch said."
    )
    message_status: MessageStatus = Field(description="The message's status after the change.")
    created_at: AwareDatetime = Field(description="When the gateway recorded the change.")


class _TenantEvent(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True, extra="forbid")

    id: UUID = Field(description="The event's id: stable across retries and replays.")
    tenant: str = Field(description="The tenant whose event it is.")
    sequence: int = Field(description="The event's place among the tenant's, from 1.", ge=1)
    created_at: AwareDatetime = Field(description="When the gateway queued the event.")


class InboundMessageBody(BaseModel):
    """The inbound message as ``GET /v1/inbound-messages`` shows it (less ``tenant``)."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True, extra="forbid")

    id: UUID
    sinch_id: str
    type: InboundType
    sender: str | None = Field(description="The subscriber: E.164 with `+` for a number.")
    to: str | None = Field(description="The tenant's number it was sent to.")
    body: str | None = Field(description="The text of an mo_text; null for other types.")
    keyword: KeywordKind | None
    client_reference: str | None
    operator_id: str | None
    received_at: AwareDatetime
    sent_at: AwareDatetime | None
    created_at: AwareDatetime


class MessageInbound(_TenantEvent):
    """A subscriber wrote to one of the tenant's numbers; POSTed to the tenant's callback URL
    (``smsgateway tenant callback``), signed."""

    type: Literal["message.inbound"]
    message: InboundMessageBody


class OptOutChange(BaseModel):
    """The opt-out row after the change."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True, extra="forbid")

    msisdn: str = Field(examples=["+46701234567"])
    opted_out: bool = Field(description="False: the number opted back in.")
    sender: str | None = Field(
        description="The number it covers; null: every sender of the tenant."
    )
    source: OptOutSource
    keyword: str | None = Field(examples=["STOP"])
    inbound_id: UUID | None = Field(description="The inbound message that made the change.")
    note: str | None
    changed_at: AwareDatetime


class OptOutChanged(_TenantEvent):
    """A number of the tenant's opted out or back in (a STOP or START, or the API); POSTed to
    the tenant's callback URL, signed."""

    type: Literal["opt_out.changed"]
    opt_out: OptOutChange


OUTGOING_BODIES: Final = (RecipientStatusChanged, MessageInbound, OptOutChanged)
"""The models of every body the gateway POSTs to callers, for the document's schemas."""

OUTGOING_BODY_SCHEMA: Final[dict[str, Any]] = {
    "oneOf": [{"$ref": f"#/components/schemas/{model.__name__}"} for model in OUTGOING_BODIES],
    "discriminator": {
        "propertyName": "type",
        "mapping": {
            get_args(model.model_fields["type"].annotation)[0]: (
                f"#/components/schemas/{model.__name__}"
            )
            for model in OUTGOING_BODIES
        },
    },
}
"""Any of them, told apart by ``type``: the schema of a stored event's ``payload``."""

_HEADER = {"required": True, "schema": {"type": "string"}}
_DELIVERY = (
    "Signed as Standard Webhooks (verify with the `standardwebhooks` library of your "
    "language). Retried with backoff until your endpoint answers 2xx or the retry horizon "
    "passes; any other answer, a redirect or a timeout is a retry."
)
_EVENTS: Final = (
    (
        "recipientStatusChanged",
        RecipientStatusChanged,
        "A recipient's status changed (sent to the message's callback_url)",
    ),
    (
        "messageInbound",
        MessageInbound,
        "`message.inbound`: a subscriber wrote to one of your tenant's numbers (sent to the "
        "tenant's callback URL, in order with its other events)",
    ),
    (
        "optOutChanged",
        OptOutChanged,
        "`opt_out.changed`: a number opted out of or back into your tenant's messages (sent "
        "to the tenant's callback URL, in order with its other events)",
    ),
)


def webhooks_document(schema_prefix: str) -> dict[str, Any]:
    """The ``webhooks`` member: what we POST, bodies referenced as ``schema_prefix`` + name."""
    return {
        name: {
            "post": {
                "operationId": name,
                "tags": ["callbacks"],
                "summary": summary,
                "description": _DELIVERY,
                "parameters": [
                    {"name": header, "in": "header", "description": description, **_HEADER}
                    for header, description in HEADER_DESCRIPTIONS.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"{schema_prefix}{model.__name__}"}}
                    },
                },
                "responses": {
                    "2XX": {"description": "Delivered: the event is not sent again."},
                    "default": {"description": "Anything else: retried later."},
                },
            }
        }
        for name, model, summary in _EVENTS
    }
