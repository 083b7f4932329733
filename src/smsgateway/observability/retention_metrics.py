"""Prometheus metrics of the retention job: what it deleted, what it applied, how each sweep went.

Label values are small fixed sets (the table names and steps below).
"""

from __future__ import annotations

from smsgateway.observability.metric_types import Counter

ROWS_DELETED = Counter(
    "smsgw_retention_deleted_total",
    "Rows the retention job deleted, by table (unmatched_report: past "
    "SMSGW_UNMATCHED_REPORT_RETENTION_DAYS; idempotency_key: past 24 hours; webhook_nonce: "
    "past twice the signature window; sms_log, inbound_message, callback_event: personal data "
    "past the tenant's SMSGW_DELETE_AFTER_DAYS or own window, cascading to a message's rows).",
    ["table"],
)
ROWS_REDACTED = Counter(
    "smsgw_retention_redacted_total",
    "Rows whose personal data the retention job redacted (body blanked, numbers masked), by "
    "table (sms_log with its recipients, events and callbacks; inbound_message; callback_event "
    "of tenants).",
    ["table"],
)
REPORTS_APPLIED = Counter(
    "smsgw_retention_reports_applied_total",
    "Kept delivery reports the retention job applied because their batch id had been recorded "
    "meanwhile (normally the dispatcher applies them at once).",
)
SWEEPS = Counter(
    "smsgw_retention_sweeps_total",
    "Retention sweeps, by result (ok, or error: a step failed and was logged; the others ran).",
    ["result"],
)
STEP_ERRORS = Counter(
    "smsgw_retention_step_errors_total",
    "Retention steps that failed, by step (apply_reports, unmatched_reports, idempotency_keys, "
    "webhook_nonces, protection_counters, personal_data_deleted, personal_data_redacted); the "
    "next sweep tries again.",
    ["step"],
)
