"""Which callbacks a batch produces and when, per its `delivery_report` mode.

`summary`/`full`: one `delivery_report_sms` when every recipient is final. `per_recipient`:
a `recipient_delivery_report_sms` per status change; `per_recipient_final`: the final one only.
Duplicates, reordering and recipients without their `+` are drawn from the seed, so a seeded
run repeats exactly.
"""

from __future__ import annotations

from smsgateway.simulator.batches import Batch
from smsgateway.simulator.callbacks import ScheduledCallback
from smsgateway.simulator.config import SimulatorConfig
from smsgateway.simulator.lifecycle import CANCELLED, RecipientPlan, Status, unit_draw
from smsgateway.simulator.reports import batch_report, recipient_report


class CallbackPlanner:
    """Turns a batch into scheduled callback payloads."""

    def __init__(self, config: SimulatorConfig, salt: str) -> None:
        self._config = config
        self._salt = salt

    def lifecycle(self, batch: Batch) -> list[ScheduledCallback]:
        """The callbacks of a batch's whole life, at the times its statuses change."""
        mode = batch.delivery_report
        gap = self._gap()
        scheduled: list[ScheduledCallback] = []
        if mode in ("summary", "full"):
            entries = [
                (self._wire_recipient(batch, digits), plan.final)
                for digits, plan in batch.recipients.items()
            ]
            payload = batch_report(batch, entries, full=mode == "full")
            scheduled.append(ScheduledCallback(batch.completed_at, payload))
            if self._duplicated(batch, "batch"):
                scheduled.append(ScheduledCallback(batch.completed_at + gap, payload))
            return scheduled
        for digits, plan in batch.recipients.items():
            steps = plan.transitions() if mode == "per_recipient" else [(plan.final_at, plan.final)]
            draw = unit_draw(self._salt, batch.outcome_key, digits, "order")
            reorder = len(steps) > 1 and draw < self._config.out_of_order_probability
            for index, (at, status) in enumerate(steps):
                # Reordered: the intermediate statuses arrive after the final one, newest first.
                fire_at = plan.final_at + gap * (len(steps) - 1 - index) if reorder else at
                scheduled.extend(
                    self._recipient_callbacks(batch, digits, plan, status, at, fire_at)
                )
        return scheduled

    def _recipient_callbacks(
        self,
        batch: Batch,
        digits: str,
        plan: RecipientPlan,
        status: Status,
        at: float,
        fire_at: float,
    ) -> list[ScheduledCallback]:
        payload = recipient_report(
            batch,
            plan,
            status,
            at,
            recipient=self._wire_recipient(batch, digits),
            operator=self._config.operator_id,
        )
        scheduled = [ScheduledCallback(fire_at, payload)]
        if self._duplicated(batch, digits, status.name):
            scheduled.append(ScheduledCallback(fire_at + self._gap(), payload))
        return scheduled

    def cancellation(self, batch: Batch, now: float) -> list[ScheduledCallback]:
        """A cancelled batch reports Cancelled (407) for every recipient, at once."""
        if batch.delivery_report in ("summary", "full"):
            entries = [
                (self._wire_recipient(batch, digits), CANCELLED) for digits in batch.recipients
            ]
            payload = batch_report(batch, entries, full=batch.delivery_report == "full")
            return [ScheduledCallback(now, payload)]
        return [
            callback
            for digits, plan in batch.recipients.items()
            for callback in self._recipient_callbacks(batch, digits, plan, CANCELLED, now, now)
        ]

    def _wire_recipient(self, batch: Batch, digits: str) -> str:
        """Sometimes without the `+`, like real Sinch; stable per batch and recipient."""
        draw = unit_draw(self._salt, batch.outcome_key, digits, "plus")
        return digits if draw < self._config.recipient_without_plus_probability else "+" + digits

    def _duplicated(self, batch: Batch, *parts: str) -> bool:
        draw = unit_draw(self._salt, batch.outcome_key, *parts, "duplicate")
        return draw < self._config.duplicate_probability

    def _gap(self) -> float:
        """How far a duplicate or a reordered callback trails its original."""
        return max(self._config.delivery_delay_s / 4, 0.005)
