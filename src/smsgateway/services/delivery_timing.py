"""Times the way from submission to delivery reports into the end-to-end histograms.

One place for both ways reports arrive (Sinch's webhook and reconciliation), so they are
counted alike: per recipient, the first report the gateway applies after submission, and the
moment the recipient reaches a final status.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from smsgateway.domain.status import RecipientChange, RecipientStatus, is_final
from smsgateway.observability.delivery_timing_metrics import (
    SUBMITTED_TO_FINAL,
    SUBMITTED_TO_FIRST_REPORT,
)
from smsgateway.store.report_ledger import AppliedReport


def observe_report_timing(results: Iterable[AppliedReport], now: datetime) -> None:
    """Observes, for each applied report with a known submission time, its recipients'
    first report and final status; ``now`` is when the reports were applied."""
    for result in results:
        if result.submitted_at is None:
            continue
        elapsed = max(0.0, (now - result.submitted_at).total_seconds())
        for change in result.changes:
            if is_first_report(change):
                SUBMITTED_TO_FIRST_REPORT.observe(elapsed)
            if is_final(change.state.status) and not is_final(change.previous.status):
                SUBMITTED_TO_FINAL.labels(change.state.status.value).observe(elapsed)


def is_first_report(change: RecipientChange) -> bool:
    """Whether ``change`` is the first thing Sinch reported about the recipient: before it,
    the recipient was as the dispatcher left it (submitted, nothing stamped by Sinch)."""
    previous = change.previous
    return previous.status is RecipientStatus.SUBMITTED and previous.at is None
