"""Prometheus metrics of delivery-report reconciliation: what was asked, what it resolved.

Label values are small fixed sets (outcomes, statuses, calls and error kinds below). The
backlog gauges are read from the database, so every process reports the same figure:
``livemostrecent`` keeps one value across processes.
"""

from __future__ import annotations

from smsgateway.observability.metric_types import Counter, Gauge

MESSAGES_CHECKED = Counter(
    "smsgw_reconcile_messages_checked_total",
    "Messages taken up by a reconciliation round, by outcome: resolved (every recipient final), "
    "pending (asked again later), given_up, error (Sinch or the database failed; asked again "
    "later), lost (another reconciler holds it), settled (final by webhook: dropped unasked).",
    ["outcome"],
)
RECIPIENTS_RESOLVED = Counter(
    "smsgw_reconcile_recipients_resolved_total",
    "Recipients whose final status came from reconciliation (not a webhook), by that status.",
    ["status"],
)
SINCH_CALLS = Counter(
    "smsgw_reconcile_sinch_calls_total",
    "Requests reconciliation made to Sinch, by call (batch_report: GET .../delivery_report"
    "?type=full; recipient_report: GET .../delivery_report/{msisdn}).",
    ["call"],
)
ERRORS = Counter(
    "smsgw_reconcile_errors_total",
    "Reconciliation failures, by kind (unauthorized, rate_limited, server_error, no_answer, "
    "not_found, rejected, database).",
    ["kind"],
)
GIVEN_UP = Counter(
    "smsgw_reconcile_given_up_total",
    "Messages no longer reconciled while a recipient still had no final status, by reason "
    "(expired: past expire_at and the grace; unknown_batch: Sinch answered 404).",
    ["reason"],
)
BACKLOG = Gauge(
    "smsgw_reconcile_backlog",
    "Messages awaiting a final delivery report (state=awaiting), and those due for a "
    "reconciliation check now (state=due).",
    ["state"],
    multiprocess_mode="livemostrecent",
)
