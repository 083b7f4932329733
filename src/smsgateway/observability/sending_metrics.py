"""Prometheus metrics of the accept path (the dispatcher's are in dispatch_metrics)."""

from __future__ import annotations

from smsgateway.observability.metric_types import Counter

MESSAGES_ACCEPTED = Counter(
    "smsgw_messages_accepted_total", "Messages stored and answered 202 Accepted."
)
RECIPIENTS_ACCEPTED = Counter(
    "smsgw_recipients_accepted_total", "Recipients of the messages accepted."
)
IDEMPOTENT_REPLAYS = Counter(
    "smsgw_idempotent_replays_total",
    "Requests answered with an earlier message because of their Idempotency-Key.",
)
RATE_LIMIT_REFUSALS = Counter(
    "smsgw_rate_limit_refusals_total", "Requests refused with 429 by the per-key rate limit."
)
