"""Prometheus metrics of status callbacks to callers: attempts by outcome, and how long.

Label values are small fixed sets, never URLs, hosts or ids (a host label would let callers
grow the series without bound).
"""

from __future__ import annotations

from smsgateway.observability.metric_types import Counter, Gauge, Histogram

_POST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# From the status change to the caller's 2xx: milliseconds when healthy, hours when retried.
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)

CALLBACK_ATTEMPTS = Counter(
    "smsgw_callback_attempts_total",
    "Callback POSTs to callers, by outcome (delivered: 2xx; http_error: another status; "
    "timeout; network_error; refused_target: the URL resolved to a refused address).",
    ["outcome"],
)
CALLBACK_EVENTS_FINISHED = Counter(
    "smsgw_callback_events_finished_total",
    "Callback events settled, by result (delivered, failed: given up after the retry horizon).",
    ["result"],
)
CALLBACK_ATTEMPT_SECONDS = Histogram(
    "smsgw_callback_attempt_seconds",
    "How long one callback POST took, by outcome.",
    ["outcome"],
    buckets=_POST_BUCKETS,
)
CALLBACK_DELIVERY_LAG = Histogram(
    "smsgw_callback_delivery_lag_seconds",
    "From the status change (the event's creation) to the caller's 2xx, retries included.",
    buckets=_LAG_BUCKETS,
)
CALLBACK_ERRORS = Counter(
    "smsgw_callback_worker_errors_total",
    "Callback deliveries abandoned on an unexpected error (e.g. the database); the lease retries.",
)
CALLBACK_LOST_CLAIMS = Counter(
    "smsgw_callback_lost_claims_total",
    "Callback attempts whose claim another worker had taken over (the lease ended first).",
)
# Read from the database, so every process reports the same figure: one value across them.
CALLBACK_BACKLOG = Gauge(
    "smsgw_callback_backlog",
    "Status callback events not yet delivered nor given up (state=pending), and those of them "
    "due for a POST now (state=due).",
    ["state"],
    multiprocess_mode="livemostrecent",
)
CALLBACK_OLDEST_PENDING_AGE = Gauge(
    "smsgw_callback_oldest_pending_age_seconds",
    "Since the status change of the oldest callback event still pending (0 when none is).",
    multiprocess_mode="livemostrecent",
)
