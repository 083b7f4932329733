"""When a message may be sent: now, or held until ``send_at``; and when it must be given up.

The gateway holds scheduled messages itself and hands them to Sinch when due, so a cancel
before then never depends on Sinch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from smsgateway.domain.errors import DomainError

# Sinch keeps trying for at most three days after sending starts.
MAX_EXPIRY_AFTER_SEND: Final = timedelta(days=3)
# Holding a message longer than this is almost certainly a mistake in the caller's clock.
MAX_SCHEDULE_AHEAD: Final = timedelta(days=365)


class InvalidSchedule(DomainError):
    """``send_at``/``expire_at`` cannot be honoured."""

    default_code = "invalid_schedule"


@dataclass(frozen=True, slots=True)
class Schedule:
    """``status`` is ``scheduled`` while held, else ``queued``; ``due_at`` is when to send."""

    status: str
    due_at: datetime


def plan_schedule(now: datetime, send_at: datetime | None, expire_at: datetime | None) -> Schedule:
    """Checks the caller's times against ``now``; raises ``InvalidSchedule`` naming the field."""
    if send_at is not None and send_at - now > MAX_SCHEDULE_AHEAD:
        raise InvalidSchedule("send_at is more than a year ahead.", field="send_at")
    starts = max(now, send_at) if send_at is not None else now
    if expire_at is not None:
        if expire_at <= now:
            raise InvalidSchedule("expire_at has already passed.", field="expire_at")
        if expire_at <= starts:
            raise InvalidSchedule("expire_at must be after send_at.", field="expire_at")
        if expire_at - starts > MAX_EXPIRY_AFTER_SEND:
            raise InvalidSchedule(
                "expire_at may be at most 3 days after sending starts (Sinch's limit).",
                field="expire_at",
            )
    if send_at is not None and send_at > now:
        return Schedule(status="scheduled", due_at=send_at)
    return Schedule(status="queued", due_at=now)
