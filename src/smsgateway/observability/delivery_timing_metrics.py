"""Prometheus histograms of how long Sinch and the operators take after a message is sent.

With ``smsgw_dispatch_latency_seconds`` (acceptance to Sinch's 201) they time a message end
to end: accepted → submitted → first report → final status. Timed by the gateway's clock when
the report was applied, so a report that Sinch sends late (or that reconciliation fetches)
counts as late as it reached us. Per recipient; the status label is one of the fixed final
statuses.
"""

from __future__ import annotations

from smsgateway.observability.metric_types import Histogram

# From under a second (a fast operator) to a day (a phone that was off, Sinch's retry window).
_REPORT_BUCKETS = (
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    900,
    1800,
    3600,
    4 * 3600,
    12 * 3600,
    24 * 3600,
    72 * 3600,
)

SUBMITTED_TO_FIRST_REPORT = Histogram(
    "smsgw_submitted_to_first_report_seconds",
    "From Sinch accepting a message's batch to the first delivery report applied for a "
    "recipient (whatever its status), per recipient.",
    buckets=_REPORT_BUCKETS,
)
SUBMITTED_TO_FINAL = Histogram(
    "smsgw_submitted_to_final_seconds",
    "From Sinch accepting a message's batch to a recipient's final status, per recipient, by "
    "that status (delivered, failed, expired, ...).",
    ["status"],
    buckets=_REPORT_BUCKETS,
)
