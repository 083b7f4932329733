"""The kinds of event in a message's history (``sms_event.kind``), named once for the store
that writes them and the API that shows them.

Most kinds name what happened (accepted, submitted, a delivery report, ...). When dispatch ends
a message unsent, or every recipient turns out to have opted out, the event is named for the
status the message ended with (``ended_with``), as it always has been.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from smsgateway.domain.status import MessageStatus, RecipientStatus

EventStatus = RecipientStatus | MessageStatus
"""An event's ``status``: its recipient's for a recipient's event, else the message's."""

_RECIPIENT_STATUSES: Final = frozenset(RecipientStatus)


class MessageEventKind(StrEnum):
    """What one event of a message's history records; the values are what
    ``sms_event.kind`` holds."""

    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    SEND_RETRY = "send_retry"
    DELIVERY_REPORT = "delivery_report"
    OPTED_OUT = "opted_out"
    CANCELLED = "cancelled"
    RECONCILIATION_GIVEN_UP = "reconciliation_given_up"
    # Named for the status the message ended with (``ended_with``).
    DELIVERED = "delivered"
    PARTIALLY_DELIVERED = "partially_delivered"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"


def ended_with(status: MessageStatus) -> MessageEventKind:
    """The kind of the event that ends a message with ``status`` before Sinch had it; raises
    ValueError for a status no message ends with (queued, scheduled)."""
    return MessageEventKind(status.value)


def event_status(value: str) -> EventStatus:
    """``sms_event.status`` read back: a recipient's status, or the one status only a message
    has (partially_delivered); raises ValueError for anything else."""
    if value in _RECIPIENT_STATUSES:
        return RecipientStatus(value)
    return MessageStatus(value)
