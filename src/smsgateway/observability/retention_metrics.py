"""Prometheus metrics of the retention job: what it deleted, what it applied, how each sweep went.

Label values are small fixed sets (the table names and steps below).
"""

from __future__ import annotations

from prometheus_client import Counter

ROWS_DELETED = Counter(
    "smsgw_retention_deleted_total",
    "Rows the retention job deleted, by table (unmatched_report: past "
    "SMSGW_UNMATCHED_REPORT_RETENTION_DAYS; idempotency_key: past 24 hours; webhook_nonce: "
    "past twice the signature window).",
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
    "webhook_nonces); the next sweep tries again.",
    ["step"],
)
