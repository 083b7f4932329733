"""Prometheus metrics of the outbox dispatcher: what was sent, what failed, how late, how deep.

Label values are small fixed sets (outcome reasons below), never message ids or numbers.
The outbox gauges are read from the database, so every worker process reports the same
figure: ``livemostrecent`` keeps one value across processes.
"""

from __future__ import annotations

from smsgateway.observability.metric_types import Counter, Gauge, Histogram

# From acceptance to Sinch's 201: milliseconds when idle, minutes under a backlog or an outage.
# Milliseconds first: with wake-ups (LISTEN/NOTIFY) an idle dispatcher sends within a few.
_DISPATCH_LATENCY_BUCKETS = (
    *(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5),
    *(1, 2.5, 5, 10, 30, 60, 300, 900),
)
_THROTTLE_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

MESSAGES_SENT = Counter(
    "smsgw_dispatch_messages_sent_total",
    "Messages handed to Sinch (Sinch accepted the batch), by how the batch id was learnt.",
    ["via"],
)
MESSAGES_FAILED = Counter(
    "smsgw_dispatch_messages_failed_total",
    "Messages ended without a Sinch batch, by reason.",
    ["reason"],
)
RECIPIENTS_SENT = Counter(
    "smsgw_dispatch_recipients_sent_total",
    "Recipients of the batches Sinch accepted.",
)
SEGMENTS_SENT = Counter(
    "smsgw_dispatch_segments_sent_total",
    "Message parts Sinch accepted: segments per message times recipients.",
)
DISPATCH_LATENCY = Histogram(
    "smsgw_dispatch_latency_seconds",
    "From acceptance (or the scheduled send time, if later) to Sinch accepting the batch.",
    buckets=_DISPATCH_LATENCY_BUCKETS,
)
RETRIES = Counter(
    "smsgw_dispatch_retries_total",
    "Sends put back in the outbox for a later try, by reason.",
    ["reason"],
)
LOOKUPS = Counter(
    "smsgw_dispatch_lookups_total",
    "Retried sends first looked up at Sinch by client_reference, by result.",
    ["result"],
)
DISPATCH_ERRORS = Counter(
    "smsgw_dispatch_errors_total",
    "Dispatches abandoned on an unexpected error (e.g. the database); the lease retries them.",
)
LOST_CLAIMS = Counter(
    "smsgw_dispatch_lost_claims_total",
    "Claims found taken over by another worker (the lease ended first) before sending.",
)
RELEASED = Counter(
    "smsgw_dispatch_released_total",
    "Claimed messages given back untried at a graceful stop.",
)
THROTTLE_WAITS = Counter(
    "smsgw_dispatch_throttle_waits_total",
    "Sends that waited for the global messages-per-second cap.",
)
THROTTLE_WAIT_SECONDS = Histogram(
    "smsgw_dispatch_throttle_wait_seconds",
    "Time a send waited for the global messages-per-second cap (waits only).",
    buckets=_THROTTLE_WAIT_BUCKETS,
)
OUTBOX_DEPTH = Gauge(
    "smsgw_outbox_depth",
    "Messages in the outbox: held, due, claimed or waiting for a retry.",
    multiprocess_mode="livemostrecent",
)
OUTBOX_DUE = Gauge(
    "smsgw_outbox_due",
    "Outbox entries due now and not claimed.",
    multiprocess_mode="livemostrecent",
)
OUTBOX_OLDEST_DUE_AGE = Gauge(
    "smsgw_outbox_oldest_due_age_seconds",
    "How long the oldest due, unclaimed outbox entry has been due (0 when none is).",
    multiprocess_mode="livemostrecent",
)
