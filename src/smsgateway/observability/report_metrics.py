"""Prometheus metrics of Sinch's callbacks: delivery reports, inbound messages and opt-outs."""

from __future__ import annotations

from smsgateway.observability.metric_types import Counter

REPORTS_RECEIVED = Counter(
    "smsgw_delivery_reports_received_total",
    "Delivery reports received from Sinch and stored, by report type, status and outcome "
    "(applied, unchanged, duplicate, unknown_batch, unprocessable).",
    ["type", "status", "outcome"],
)
REPORTS_UNKNOWN_BATCH = Counter(
    "smsgw_delivery_reports_unknown_batch_total",
    "Delivery reports for a batch no message has (yet): kept, and applied when its id is recorded.",
)
REPORTS_APPLIED_LATE = Counter(
    "smsgw_delivery_reports_applied_late_total",
    "Kept delivery reports applied once their batch id was recorded.",
)
STATUS_REGRESSIONS_REFUSED = Counter(
    "smsgw_delivery_report_regressions_refused_total",
    "Recipient status changes a report asked for and the gateway refused, by reason "
    "(final_already: an intermediate after a final; earlier_stage; superseded: an older final).",
    ["reason"],
)
WEBHOOK_AUTH_REFUSALS = Counter(
    "smsgw_webhook_auth_refusals_total",
    "Sinch webhook calls refused with 401, by webhook and reason.",
    ["webhook", "reason"],
)
WEBHOOK_SIGNATURE_REPLAYS = Counter(
    "smsgw_webhook_signature_replays_total",
    "Correctly signed Sinch callbacks that may be replays, applied (idempotently) all the same, "
    "by reason (stale_timestamp, future_timestamp, nonce_reused).",
    ["reason"],
)
INBOUND_MESSAGES = Counter(
    "smsgw_inbound_messages_total",
    "Inbound (MO) messages stored, by type and keyword (none, opt_out, opt_in, help).",
    ["type", "keyword"],
)
INBOUND_DUPLICATES = Counter(
    "smsgw_inbound_duplicates_total",
    "Inbound callbacks whose Sinch id was already stored (nothing done again).",
)
OPT_OUT_CHANGES = Counter(
    "smsgw_opt_out_changes_total",
    "Numbers opting out or back in, by action (opt_out, opt_in) and source (inbound, api).",
    ["action", "source"],
)
RECIPIENTS_OPTED_OUT = Counter(
    "smsgw_recipients_opted_out_total",
    "Recipients of accepted messages refused because they opted out (never sent to Sinch).",
)
