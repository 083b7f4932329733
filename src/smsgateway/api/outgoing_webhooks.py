"""What the gateway POSTs to callers (OpenAPI 3.1 ``webhooks``): the status callback's body and
headers, so a generated client or receiver knows them as it knows our answers."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from smsgateway.domain.standard_webhooks import HEADER_DESCRIPTIONS
from smsgateway.domain.status import MessageStatus, RecipientStatus


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


_HEADER = {"required": True, "schema": {"type": "string"}}


def webhooks_document(schema_ref: str) -> dict[str, Any]:
    """The ``webhooks`` member: our status callback, its body referenced as ``schema_ref``."""
    return {
        "recipientStatusChanged": {
            "post": {
                "operationId": "recipientStatusChanged",
                "tags": ["callbacks"],
                "summary": "A recipient's status changed (sent to the message's callback_url)",
                "description": "Signed as Standard Webhooks (verify with the `standardwebhooks` "
                "library of your language). Retried with backoff until your endpoint answers 2xx "
                "or the retry horizon passes; any other answer, a redirect or a timeout is a "
                "retry.",
                "parameters": [
                    {"name": name, "in": "header", "description": description, **_HEADER}
                    for name, description in HEADER_DESCRIPTIONS.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": schema_ref}}},
                },
                "responses": {
                    "2XX": {"description": "Delivered: the event is not sent again."},
                    "default": {"description": "Anything else: retried later."},
                },
            }
        }
    }
