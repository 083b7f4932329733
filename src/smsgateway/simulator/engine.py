"""The simulated Sinch account: batches, inbounds, and the callbacks they trigger.

State lives in memory with O(1) lookups: batches by id, batch ids by account and by
client_reference. Statuses are computed from each recipient's plan when asked, so only
callbacks need timers.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Collection
from typing import TypeVar

from smsgateway.simulator.auth import Authenticator
from smsgateway.simulator.batches import Batch
from smsgateway.simulator.callback_plan import CallbackPlanner
from smsgateway.simulator.callbacks import CallbackDispatcher
from smsgateway.simulator.config import Outcome, SimulatorConfig
from smsgateway.simulator.encoding import PartCount, count_parts
from smsgateway.simulator.errors import SimulatorError, not_found
from smsgateway.simulator.faults import FaultInjector, MessageRateLimiter
from smsgateway.simulator.ids import new_id
from smsgateway.simulator.lifecycle import (
    OUTCOME_STATUS,
    TOO_MANY_PARTS,
    UNMATCHED_DEFAULT_ORIGINATOR,
    UNMATCHED_PARAMETER,
    RecipientPlan,
    normalise_msisdn,
    pick_outcome,
    plan_recipient,
    unit_draw,
)
from smsgateway.simulator.reports import batch_report, recipient_report
from smsgateway.simulator.rich import (
    MMS_NOT_SUPPORTED,
    MMS_REGIONS,
    mms_destination_served,
    mms_final_status,
)
from smsgateway.simulator.times import format_instant
from smsgateway.simulator.validation import MAX_EXPIRY_S, BatchRequest, render_body

T = TypeVar("T")


def page_of(items: list[T], page: int, page_size: int) -> list[T]:
    return items[page * page_size : (page + 1) * page_size]


class Simulator:
    """Every operation of the simulated API, on in-memory state."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        # Seeded: outcomes repeat across runs. Unseeded: a random salt per app.
        self._salt = str(config.seed) if config.seed is not None else secrets.token_hex(8)
        self._planner = CallbackPlanner(config, self._salt)
        self.auth = Authenticator(config)
        self.faults = FaultInjector(config.faults, config.seed)
        self.limiter = MessageRateLimiter()
        secret = config.signing_secret
        self.callbacks = CallbackDispatcher(
            retry_base_s=config.callback_retry_base_s,
            max_retries=config.callback_max_retries,
            timeout_s=config.callback_timeout_s,
            concurrency=config.callback_concurrency,
            signing_secret=secret.get_secret_value() if secret is not None else None,
            log_limit=config.callback_log_limit,
        )
        self.overrides: dict[str, Outcome] = {}
        self._batches: dict[str, Batch] = {}
        self._batch_ids: dict[str, list[str]] = {}
        self._by_reference: dict[str, list[str]] = {}
        self._inbounds: dict[str, tuple[str, dict[str, object]]] = {}
        self._inbound_ids: dict[str, list[str]] = {}
        self.reset_overrides()

    async def start(self) -> None:
        await self.callbacks.start()

    async def aclose(self) -> None:
        await self.callbacks.aclose()

    async def reset(self) -> None:
        """Forget every batch, inbound, token and callback; faults back to the config's."""
        await self.callbacks.cancel_all()
        self.callbacks.clear_log()
        self._batches.clear()
        self._batch_ids.clear()
        self._by_reference.clear()
        self._inbounds.clear()
        self._inbound_ids.clear()
        self.faults.reset()
        self.limiter.reset()
        self.auth.reset()
        self.reset_overrides()

    def reset_overrides(self) -> None:
        self.set_overrides(self.config.outcome_overrides)

    def set_overrides(self, overrides: dict[str, Outcome]) -> None:
        self.overrides = {normalise_msisdn(key): value for key, value in overrides.items()}

    def create_batch(self, account_id: str, request: BatchRequest, now: float) -> Batch:
        """Accept a batch: check it, apply the mps cap, plan recipients, schedule callbacks."""
        recipients: dict[str, str] = {}
        for recipient in request.to:
            recipients.setdefault(normalise_msisdn(recipient), recipient)
        # No sender and no default originator: Sinch accepts the batch and each message ends
        # Aborted with 410 ("unmatched default originator"); see _plan.
        sender = request.sender or self.config.default_from
        if request.kind == "mt_media" and self.config.region not in MMS_REGIONS:
            raise SimulatorError(
                403,
                "unprovisioned_region",
                f"MMS (mt_media) is sent from accounts in region us only, not "
                f"{self.config.region}.",
            )
        report_url = self._report_url(request)
        cap = self.faults.settings.mps_cap
        if cap is not None:
            wait = self.limiter.acquire(account_id, len(recipients), cap, now)
            if wait is not None:
                raise SimulatorError(
                    429,
                    "too_many_requests",
                    f"Above the simulated cap of {cap:g} messages per second.",
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
        send_time = request.send_at if request.send_at is not None else now
        batch = Batch(
            id=new_id(now),
            account_id=account_id,
            to=request.to,
            sender=sender,
            body=request.body,
            delivery_report=request.delivery_report,
            created_at=now,
            modified_at=now,
            send_at=request.send_at,
            expire_at=request.expire_at or send_time + MAX_EXPIRY_S,
            callback_url=request.callback_url,
            client_reference=request.client_reference,
            parameters=request.parameters,
            max_number_of_message_parts=request.max_number_of_message_parts,
            options=request.options,
            recipients={},
            report_url=report_url,
            kind=request.kind,
            media=request.media,
            udh=request.udh,
            strict_validation=request.strict_validation,
        )
        shared = _rich_parts(request) or (None if request.parameters else count_parts(request.body))
        for digits, recipient in recipients.items():
            batch.recipients[digits] = self._plan(batch, digits, recipient, shared)

        self._batches[batch.id] = batch
        self._batch_ids.setdefault(account_id, []).append(batch.id)
        if batch.client_reference is not None:
            self._by_reference.setdefault(batch.client_reference, []).append(batch.id)
        if report_url is not None:
            self.callbacks.schedule(batch.id, report_url, self._planner.lifecycle(batch))
        return batch

    def dry_run(
        self, request: BatchRequest, *, per_recipient: bool, listed: int
    ) -> dict[str, object]:
        """Parts per recipient, by the simulator's own GSM-7/UCS-2 counting; nothing is sent."""
        rows: list[dict[str, object]] = []
        total = 0
        shared = None if request.parameters else count_parts(request.body)
        for recipient in request.to:
            text, _ = render_body(request.body, request.parameters, recipient)
            count = shared or count_parts(text)
            total += count.parts
            if per_recipient and len(rows) < listed:
                rows.append(
                    {
                        "recipient": normalise_msisdn(recipient),
                        "number_of_parts": count.parts,
                        "body": text,
                        "encoding": count.dry_run_encoding,
                    }
                )
        answer: dict[str, object] = {
            "number_of_recipients": len(request.to),
            "number_of_messages": total,
        }
        if per_recipient:
            answer["per_recipient"] = rows
        return answer

    def get_batch(self, account_id: str, batch_id: str) -> Batch:
        batch = self._batches.get(batch_id)
        if batch is None or batch.account_id != account_id:
            raise not_found(f"Batch {batch_id}")
        return batch

    def list_batches(
        self,
        account_id: str,
        *,
        page: int,
        page_size: int,
        client_reference: str | None = None,
        senders: Collection[str] = (),
        start: float | None = None,
        end: float | None = None,
    ) -> dict[str, object]:
        """Newest first, filtered; `client_reference` uses its index."""
        if client_reference is not None:
            ids = self._by_reference.get(client_reference, [])
        else:
            ids = self._batch_ids.get(account_id, [])
        matching = [
            batch
            for batch in (self._batches[batch_id] for batch_id in reversed(ids))
            if batch.account_id == account_id
            and (not senders or batch.sender in senders)
            and (start is None or batch.created_at >= start)
            and (end is None or batch.created_at < end)
        ]
        listed = [batch.to_wire() for batch in page_of(matching, page, page_size)]
        # Sinch's `page_size` is the number of entries on this page, not the size asked for.
        return {"count": len(matching), "page": page, "page_size": len(listed), "batches": listed}

    def cancel_batch(self, account_id: str, batch_id: str, now: float) -> Batch:
        """Cancel a batch before its send time; afterwards the answer is 409."""
        batch = self.get_batch(account_id, batch_id)
        if batch.canceled_at is not None:
            return batch
        if now >= batch.send_time:
            raise SimulatorError(
                409,
                "batch_already_sent",
                f"Batch {batch_id} was already sent; it cannot be canceled.",
            )
        batch.canceled_at = now
        batch.modified_at = now
        self.callbacks.cancel_schedule(batch.id)
        if batch.report_url is not None:
            self.callbacks.schedule(
                batch.id, batch.report_url, self._planner.cancellation(batch, now)
            )
        return batch

    def batch_delivery_report(
        self,
        account_id: str,
        batch_id: str,
        *,
        full: bool,
        statuses: Collection[str] = (),
        codes: Collection[int] = (),
        now: float,
    ) -> dict[str, object]:
        batch = self.get_batch(account_id, batch_id)
        wanted = {status.lower() for status in statuses}
        entries = [
            (plan.recipient, status)
            for plan, status, _ in batch.statuses_at(now)
            if (not wanted or status.name.lower() in wanted) and (not codes or status.code in codes)
        ]
        return batch_report(batch, entries, full=full)

    def recipient_delivery_report(
        self, account_id: str, batch_id: str, msisdn: str, now: float
    ) -> dict[str, object]:
        batch = self.get_batch(account_id, batch_id)
        plan = batch.recipients.get(normalise_msisdn(msisdn))
        if plan is None:
            raise not_found(f"Recipient {msisdn} of batch {batch_id}")
        status, at = plan.status_at(now, batch.canceled_at)
        return recipient_report(
            batch, plan, status, at, recipient=plan.recipient, operator=self.config.operator_id
        )

    def list_delivery_reports(
        self,
        account_id: str,
        *,
        page: int,
        page_size: int,
        now: float,
        start: float | None = None,
        end: float | None = None,
        statuses: Collection[str] = (),
        codes: Collection[int] = (),
        client_reference: str | None = None,
    ) -> dict[str, object]:
        """Recipients' final reports, newest batch first; Sinch lists the last 24 h by default."""
        since = start if start is not None else now - 24 * 3600
        wanted = {status.lower() for status in statuses}
        reports: list[dict[str, object]] = []
        for batch_id in reversed(self._batch_ids.get(account_id, [])):
            batch = self._batches[batch_id]
            if client_reference is not None and batch.client_reference != client_reference:
                continue
            for plan, status, at in batch.statuses_at(now):
                if status.name in ("Queued", "Dispatched") or at < since:
                    continue
                if (end is not None and at >= end) or (codes and status.code not in codes):
                    continue
                if wanted and status.name.lower() not in wanted:
                    continue
                reports.append(
                    recipient_report(
                        batch,
                        plan,
                        status,
                        at,
                        recipient=plan.recipient,
                        operator=self.config.operator_id,
                    )
                )
        listed = page_of(reports, page, page_size)
        return {
            "count": len(reports),
            "page": page,
            "page_size": len(listed),
            "delivery_reports": listed,
        }

    def inject_inbound(
        self,
        *,
        account_id: str | None,
        url: str | None,
        sender: str,
        to: str,
        body: str,
        client_reference: str | None,
    ) -> tuple[dict[str, object], str]:
        """Record an MO text and POST it (to `url`, the inbound URL or the plan's callback URL)."""
        # Sinch POSTs MOs to the plan's one callback URL; inbound_url overrides it here.
        target = url or self.config.inbound_url or self.config.default_callback_url
        if target is None:
            raise SimulatorError(
                400,
                "missing_inbound_url",
                "No url given, and neither an inbound URL nor a plan callback URL is configured.",
            )
        account = account_id or next(iter(self.config.service_plans), "")
        now = time.time()
        payload: dict[str, object] = {
            "type": "mo_text",
            "id": new_id(now),
            "from": sender,
            "to": to,
            "body": body,
            "received_at": format_instant(now),
            "operator_id": self.config.operator_id,
            "sent_at": format_instant(now),
        }
        if client_reference is not None:
            payload["client_reference"] = client_reference
        inbound_id = str(payload["id"])
        self._inbounds[inbound_id] = (account, payload)
        self._inbound_ids.setdefault(account, []).append(inbound_id)
        self.callbacks.send(target, payload)
        return payload, target

    def list_inbounds(self, account_id: str, *, page: int, page_size: int) -> dict[str, object]:
        ids = list(reversed(self._inbound_ids.get(account_id, [])))
        listed = [self._inbounds[i][1] for i in page_of(ids, page, page_size)]
        return {"count": len(ids), "page": page, "page_size": len(listed), "inbounds": listed}

    def get_inbound(self, account_id: str, inbound_id: str) -> dict[str, object]:
        found = self._inbounds.get(inbound_id)
        if found is None or found[0] != account_id:
            raise not_found(f"Inbound {inbound_id}")
        return found[1]

    def batch_ids_for(self, client_reference: str) -> list[str]:
        return list(self._by_reference.get(client_reference, []))

    def stats(self) -> dict[str, object]:
        return {
            "batches": len(self._batches),
            "batches_by_client_reference": {
                reference: len(ids) for reference, ids in self._by_reference.items()
            },
            "inbounds": len(self._inbounds),
            "callback_attempts": len(self.callbacks.attempts),
            "callback_outcomes": dict(self.callbacks.outcomes),
            "faults_injected": dict(self.faults.injected),
        }

    def _report_url(self, request: BatchRequest) -> str | None:
        if request.delivery_report == "none":
            return None
        config = self.config
        # With signing on, Sinch calls the dashboard's URL and ignores per-batch overrides.
        if config.signing_secret is not None and config.default_callback_url is not None:
            return config.default_callback_url
        url = request.callback_url or config.default_callback_url
        if url is None:
            raise SimulatorError(
                403,
                "missing_callback_url",
                "delivery_report is set but there is no callback_url for the batch or the plan.",
            )
        return url

    def _plan(
        self, batch: Batch, digits: str, recipient: str, shared: PartCount | None
    ) -> RecipientPlan:
        key = batch.outcome_key
        if shared is not None:
            count, missing = shared, False
        else:
            text, missing = render_body(batch.body, batch.parameters, recipient)
            count = count_parts(text)
        max_parts = batch.max_number_of_message_parts
        if batch.sender is None:
            final, refused = UNMATCHED_DEFAULT_ORIGINATOR, True
        elif batch.is_mms and not mms_destination_served(digits):
            final, refused = MMS_NOT_SUPPORTED, True
        elif missing:
            final, refused = UNMATCHED_PARAMETER, True
        elif max_parts is not None and count.parts > max_parts:
            final, refused = TOO_MANY_PARTS, True
        else:
            outcome = self.overrides.get(digits)
            if outcome is None:
                draw = unit_draw(self._salt, key, digits, "outcome")
                outcome = pick_outcome(draw, self.config.outcome_mix)
            final, refused = OUTCOME_STATUS[outcome], False
            if batch.media is not None:
                final = mms_final_status(batch.media.url, final)
        jitter = unit_draw(self._salt, key, digits, "jitter") * self.config.delivery_jitter_s
        return plan_recipient(
            recipient=recipient,
            parts=count.parts,
            encoding=count.encoding,
            send_time=batch.send_time,
            expire_at=batch.expire_at,
            final=final,
            refused=refused,
            delay=self.config.delivery_delay_s,
            jitter=jitter,
        )


def _rich_parts(request: BatchRequest) -> PartCount | None:
    """The parts of an MMS (one) or a binary message (by its UDH); None for text."""
    if request.kind == "mt_media":
        return PartCount("MMS", len(request.body), 1)
    if request.kind == "mt_binary":
        return PartCount("BINARY", request.binary_parts, request.binary_parts)
    return None
