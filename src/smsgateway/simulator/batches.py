"""A stored batch and its wire representation (the send-batch 201 and get-batch answers)."""

from __future__ import annotations

from dataclasses import dataclass, field

from smsgateway.simulator.lifecycle import RecipientPlan, Status
from smsgateway.simulator.rich import MediaBody
from smsgateway.simulator.times import format_instant
from smsgateway.simulator.validation import DeliveryReportMode


@dataclass(slots=True)
class Batch:
    """One accepted batch; `recipients` is keyed by the digits of each MSISDN."""

    id: str
    account_id: str
    to: tuple[str, ...]
    # None: no `from` and no default originator on the plan (every recipient ends with 410).
    sender: str | None
    body: str
    delivery_report: DeliveryReportMode
    created_at: float
    send_at: float | None
    expire_at: float
    callback_url: str | None
    client_reference: str | None
    parameters: dict[str, dict[str, str]] | None
    max_number_of_message_parts: int | None
    options: dict[str, bool | int]
    recipients: dict[str, RecipientPlan]
    modified_at: float = 0.0
    canceled_at: float | None = None
    # Where this batch's callbacks go (None: no callbacks), fixed when it was accepted.
    report_url: str | None = field(default=None)
    # mt_text, mt_media (`media` set; `body` is its message) or mt_binary (`udh` set).
    kind: str = "mt_text"
    media: MediaBody | None = None
    udh: str | None = None
    strict_validation: bool | None = None

    @property
    def is_mms(self) -> bool:
        return self.kind == "mt_media"

    @property
    def send_time(self) -> float:
        return self.created_at if self.send_at is None else self.send_at

    @property
    def outcome_key(self) -> str:
        """What outcomes are seeded by: the caller's reference, stable across retries."""
        return self.client_reference if self.client_reference is not None else self.id

    @property
    def completed_at(self) -> float:
        """When the last recipient reaches a final status."""
        if self.canceled_at is not None:
            return self.canceled_at
        return max(plan.final_at for plan in self.recipients.values())

    def statuses_at(self, now: float) -> list[tuple[RecipientPlan, Status, float]]:
        return [(plan, *plan.status_at(now, self.canceled_at)) for plan in self.recipients.values()]

    def to_wire(self) -> dict[str, object]:
        """The batch as Sinch answers it: every field that was set, plus the computed ones."""
        wire: dict[str, object] = {
            "id": self.id,
            "to": list(self.to),
            "canceled": self.canceled_at is not None,
            "body": self.body if self.media is None else self.media.to_wire(),
            "type": self.kind,
            "created_at": format_instant(self.created_at),
            "modified_at": format_instant(self.modified_at or self.created_at),
            "delivery_report": self.delivery_report,
            "expire_at": format_instant(self.expire_at),
            "flash_message": False,
        }
        if self.sender is not None:
            wire["from"] = self.sender
        if self.send_at is not None:
            wire["send_at"] = format_instant(self.send_at)
        if self.callback_url is not None:
            wire["callback_url"] = self.callback_url
        if self.client_reference is not None:
            wire["client_reference"] = self.client_reference
        if self.parameters is not None:
            wire["parameters"] = self.parameters
        if self.max_number_of_message_parts is not None:
            wire["max_number_of_message_parts"] = self.max_number_of_message_parts
        if self.udh is not None:
            wire["udh"] = self.udh
        if self.strict_validation is not None:
            wire["strict_validation"] = self.strict_validation
        wire.update(self.options)
        return wire
