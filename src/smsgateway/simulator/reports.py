"""Delivery-report payloads, shared by the callbacks and the delivery-report endpoints."""

from __future__ import annotations

from collections.abc import Iterable

from smsgateway.simulator.batches import Batch
from smsgateway.simulator.lifecycle import OPERATOR_STATUSES, RecipientPlan, Status
from smsgateway.simulator.times import format_instant, format_seconds


def recipient_report(
    batch: Batch, plan: RecipientPlan, status: Status, at: float, *, recipient: str, operator: str
) -> dict[str, object]:
    """A `recipient_delivery_report_sms` for one status of one recipient."""
    payload: dict[str, object] = {
        "type": "recipient_delivery_report_mms"
        if batch.is_mms
        else "recipient_delivery_report_sms",
        "batch_id": batch.id,
        "recipient": recipient,
        "code": status.code,
        "status": status.name,
        "at": format_instant(at),
    }
    if status.name in OPERATOR_STATUSES:
        payload["operator_status_at"] = format_seconds(at)
    if batch.client_reference is not None:
        payload["client_reference"] = batch.client_reference
    if batch.sender is not None:
        payload["applied_originator"] = batch.sender
    payload["number_of_message_parts"] = plan.parts
    if not batch.is_mms:
        payload["encoding"] = plan.encoding
    if status.name in OPERATOR_STATUSES:
        payload["operator"] = operator
    return payload


def batch_report(
    batch: Batch, entries: Iterable[tuple[str, Status]], *, full: bool
) -> dict[str, object]:
    """A `delivery_report_sms`: recipients counted by (status, code); `full` lists them."""
    groups: dict[Status, list[str]] = {}
    for recipient, status in entries:
        groups.setdefault(status, []).append(recipient)
    statuses: list[dict[str, object]] = []
    for status in sorted(groups, key=lambda item: (item.code, item.name)):
        entry: dict[str, object] = {
            "code": status.code,
            "status": status.name,
            "count": len(groups[status]),
        }
        if full:
            entry["recipients"] = groups[status]
        statuses.append(entry)
    payload: dict[str, object] = {
        "type": f"delivery_report_{'mms' if batch.is_mms else 'sms'}",
        "batch_id": batch.id,
        "total_message_count": len(batch.recipients),
    }
    if batch.client_reference is not None:
        payload["client_reference"] = batch.client_reference
    payload["statuses"] = statuses
    return payload
