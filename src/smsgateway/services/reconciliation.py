"""Delivery-report reconciliation: ask Sinch about messages whose reports did not all arrive.

Even a gateway whose Sinch callbacks never arrive (a wrong ``PUBLIC_BASE_URL``, a firewall, a
lost webhook) converges: a message still ``submitted`` some time after the send is claimed
(``store.reconciliation``) and Sinch is asked, in one round:

1. ``GET .../batches/{id}/delivery_report?type=full``: one call settles every recipient it
   names (final, or still ``Queued``/``Dispatched``).
2. ``GET .../delivery_report/{msisdn}`` only for pending recipients the batch report does not
   name, at most ``ReconcilePolicy.max_lookups`` per round.

What Sinch says goes through the very path a webhook report takes (``store.reports``: the
monotonic merge, the ``delivery_report`` event, the caller's status callbacks); the event's
detail carries ``"source": "reconciliation"``. Only recipients without a final status are
updated: reconciliation fills gaps and never re-decides a final status a webhook gave.

Then the message is dropped (every recipient final), asked again later (``domain.
reconciliation``: backoff, Retry-After honoured), or given up (past its expiry, or a 404 for
the batch). Sinch failures never end the loop: 401 halts the round (logged once per round as an
operator alarm; the remaining messages of the round are not asked), 429 halts it too and its
Retry-After is honoured, 5xx and no answer back off. No database connection is held across a
Sinch call.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from smsgateway.domain.reconciliation import (
    CheckAgain,
    GiveUpReason,
    ReconcilePolicy,
    lookups_needed,
    plan_next_check,
)
from smsgateway.domain.status import RecipientReport, RecipientStatus, is_final
from smsgateway.observability import reconcile_metrics as metrics
from smsgateway.services.delivery_reports import (
    as_recipient_status,
    incoming_report,
    normalise_msisdn,
    payload_digest,
)
from smsgateway.services.delivery_timing import observe_report_timing
from smsgateway.sinch.errors import (
    SinchError,
    SinchNotFound,
    SinchNotSent,
    SinchOutcomeUnknown,
    SinchRateLimited,
    SinchRejected,
    SinchServerError,
    SinchUnauthorized,
)
from smsgateway.store import reconciliation as store
from smsgateway.store import reports
from smsgateway.store.reports import IncomingReport, RecipientUpdate

if TYPE_CHECKING:
    import asyncpg

    from smsgateway.sinch.client import SinchClient
    from smsgateway.sinch.models import BatchDeliveryReport
    from smsgateway.store.reconciliation import AwaitingClaim, Claimed

logger = logging.getLogger(__name__)

SOURCE: Final = "reconciliation"
"""``detail.source`` of the events reconciliation writes."""


class RoundOutcome(StrEnum):
    """What became of one message in a round; stable strings for metrics."""

    RESOLVED = "resolved"
    PENDING = "pending"
    GIVEN_UP = "given_up"
    ERROR = "error"
    LOST = "lost"


@dataclass(slots=True)
class Round:
    """State shared by the messages of one round: a 401 or 429 halts the round (the rest are
    not asked), and the 401 alarm is logged once per round."""

    halted_by: SinchError | None = None
    alarmed: bool = False


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    """Claims and reconciles messages with one pool and one Sinch client; safe to share."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        sinch: SinchClient,
        policy: ReconcilePolicy,
        *,
        lease_seconds: float = 120.0,
        random_source: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self._pool = pool
        self._sinch = sinch
        self._policy = policy
        self._lease = lease_seconds
        self._random = random_source
        self._clock = clock

    @property
    def policy(self) -> ReconcilePolicy:
        return self._policy

    async def claim(self, limit: int) -> Claimed:
        """Claims up to ``limit`` due messages (dropping, unasked, those final meanwhile)."""
        async with self._pool.acquire() as connection:
            claimed = await store.claim_due(connection, limit, self._lease)
        if claimed.settled:
            metrics.MESSAGES_CHECKED.labels("settled").inc(claimed.settled)
        return claimed

    async def refresh_backlog(self) -> store.Backlog:
        """Reads the backlog into the gauges."""
        async with self._pool.acquire() as connection:
            backlog = await store.backlog(connection)
        metrics.BACKLOG.labels("awaiting").set(backlog.awaiting)
        metrics.BACKLOG.labels("due").set(backlog.due)
        return backlog

    async def reconcile(self, claim: AwaitingClaim, round_: Round) -> RoundOutcome:
        """One round for one claimed message. Database errors propagate (the claim then
        expires with its lease and the message is asked again)."""
        outcome = await self._reconcile(claim, round_)
        metrics.MESSAGES_CHECKED.labels(outcome.value).inc()
        return outcome

    async def _reconcile(self, claim: AwaitingClaim, round_: Round) -> RoundOutcome:
        if round_.halted_by is not None:
            return await self._retry(claim, round_.halted_by)
        try:
            metrics.SINCH_CALLS.labels("batch_report").inc()
            report = await self._sinch.batch_delivery_report(claim.batch_id, report_type="full")
        except SinchNotFound:
            metrics.ERRORS.labels("not_found").inc()
            return await self._give_up(claim, GiveUpReason.UNKNOWN_BATCH, claim.pending)
        except SinchError as exc:
            self._note_error(exc, claim, round_)
            return await self._retry(claim, exc)
        answered = _answered(report, claim.pending)
        incoming: list[IncomingReport] = []
        if answered:
            incoming.append(_batch_report(report, claim, answered))
        failure: SinchError | None = None
        for msisdn in lookups_needed(claim.pending, answered, self._policy.max_lookups):
            # Half the lease at most: the claim must still be ours when the answers are applied.
            spent = time.monotonic() - claim.claimed_monotonic
            if round_.halted_by is not None or spent > self._lease / 2:
                break
            try:
                metrics.SINCH_CALLS.labels("recipient_report").inc()
                single = await self._sinch.recipient_delivery_report(claim.batch_id, msisdn)
            except SinchNotFound:
                # Sinch has no report for this recipient (yet): the next round asks again.
                metrics.ERRORS.labels("not_found").inc()
                continue
            except SinchError as exc:
                self._note_error(exc, claim, round_)
                failure = exc
                break
            answered[msisdn] = as_recipient_status(single.status)
            payload = single.model_dump(mode="json", by_alias=True, exclude_none=True)
            digest = payload_digest({"source": SOURCE, "report": payload})
            incoming.append(replace(incoming_report(single, payload, digest), source=SOURCE))
        if incoming:
            await self._apply(incoming)
        unresolved = tuple(m for m in claim.pending if not is_final(answered.get(m, _NOT_FINAL)))
        if not unresolved:
            return await self._finish(claim)
        if failure is not None:
            return await self._retry(claim, failure)
        return await self._check_again(claim, unresolved)

    async def _apply(self, incoming: list[IncomingReport]) -> None:
        async with self._pool.acquire() as connection:
            applied = await reports.record_reports(connection, incoming)
        observe_report_timing(applied, self._clock())
        for result in applied:
            for change in result.changes:
                if change.status_changed and is_final(change.state.status):
                    metrics.RECIPIENTS_RESOLVED.labels(change.state.status.value).inc()

    async def _finish(self, claim: AwaitingClaim) -> RoundOutcome:
        async with self._pool.acquire() as connection:
            done = await store.reschedule(connection, claim, self._clock())
        return RoundOutcome.LOST if done == "lost" else RoundOutcome.RESOLVED

    async def _check_again(self, claim: AwaitingClaim, unresolved: tuple[str, ...]) -> RoundOutcome:
        plan = plan_next_check(
            self._policy,
            rounds=claim.attempts,
            expires_at=claim.expires_at,
            now=self._clock(),
            random=self._random,
        )
        if not isinstance(plan, CheckAgain):
            return await self._give_up(claim, plan.reason, unresolved)
        async with self._pool.acquire() as connection:
            done = await store.reschedule(connection, claim, plan.due_at)
        return {"resolved": RoundOutcome.RESOLVED, "rescheduled": RoundOutcome.PENDING}.get(
            done, RoundOutcome.LOST
        )

    async def _retry(self, claim: AwaitingClaim, error: SinchError) -> RoundOutcome:
        retry_after = error.retry_after if isinstance(error, SinchRateLimited) else None
        plan = plan_next_check(
            self._policy,
            rounds=claim.attempts,
            expires_at=claim.expires_at,
            now=self._clock(),
            random=self._random,
            retry_after=retry_after,
        )
        if not isinstance(plan, CheckAgain):
            return await self._give_up(claim, plan.reason, claim.pending)
        async with self._pool.acquire() as connection:
            done = await store.reschedule(connection, claim, plan.due_at, error=_kind(error))
        return RoundOutcome.LOST if done == "lost" else RoundOutcome.ERROR

    async def _give_up(
        self, claim: AwaitingClaim, reason: GiveUpReason, unresolved: tuple[str, ...]
    ) -> RoundOutcome:
        detail: dict[str, Any] = {
            "source": SOURCE,
            "reason": reason.value,
            "batch_id": claim.batch_id,
            "rounds": claim.attempts,
            "expires_at": claim.expires_at.isoformat(),
            "unresolved": list(unresolved),
        }
        async with self._pool.acquire() as connection:
            held = await store.give_up(connection, claim, detail)
        if not held:
            return RoundOutcome.LOST
        metrics.GIVEN_UP.labels(reason.value).inc()
        logger.warning(
            "reconciliation gave up on message %s (batch %s, %s): %d recipient(s) without a "
            "final status after %d round(s)",
            claim.message_id,
            claim.batch_id,
            reason.value,
            len(unresolved),
            claim.attempts,
        )
        return RoundOutcome.GIVEN_UP

    @staticmethod
    def _note_error(error: SinchError, claim: AwaitingClaim, round_: Round) -> None:
        kind = _kind(error)
        metrics.ERRORS.labels(kind).inc()
        if isinstance(error, SinchUnauthorized | SinchRateLimited):
            round_.halted_by = round_.halted_by or error
        if isinstance(error, SinchUnauthorized):
            if not round_.alarmed:
                round_.alarmed = True
                logger.error(
                    "OPERATOR ALARM: Sinch refused the credentials (401) while reconciling "
                    "delivery reports; check SINCH_API_TOKEN / the OAuth2 key. This round is "
                    "halted and its messages are asked again later."
                )
            return
        logger.warning(
            "reconciliation of message %s (batch %s): %s; asked again later",
            claim.message_id,
            claim.batch_id,
            error,
        )


# A recipient Sinch said nothing about counts as not final.
_NOT_FINAL: Final = RecipientStatus.SUBMITTED


def _answered(report: BatchDeliveryReport, pending: tuple[str, ...]) -> dict[str, RecipientStatus]:
    """The status the batch report gives each of the ``pending`` recipients it names."""
    wanted = set(pending)
    answered: dict[str, RecipientStatus] = {}
    for group in report.statuses:
        status = as_recipient_status(group.status)
        for raw in group.recipients:
            msisdn = normalise_msisdn(raw)
            if msisdn in wanted:
                answered[msisdn] = status
    return answered


def _batch_report(
    report: BatchDeliveryReport, claim: AwaitingClaim, answered: dict[str, RecipientStatus]
) -> IncomingReport:
    """The batch report as the store takes a webhook's, narrowed to the pending recipients."""
    codes = {
        normalise_msisdn(raw): group.code for group in report.statuses for raw in group.recipients
    }
    payload = report.model_dump(mode="json", by_alias=True, exclude_none=True)
    digest = payload_digest({"source": SOURCE, "report": payload, "recipients": sorted(answered)})
    return IncomingReport(
        batch_id=claim.batch_id,
        message_ref=claim.message_id,
        client_reference=report.client_reference,
        report_type=report.type,
        payload=payload,
        dedupe_key=digest,
        updates=tuple(
            RecipientUpdate(msisdn, RecipientReport(status, codes.get(msisdn)))
            for msisdn, status in answered.items()
        ),
        source=SOURCE,
    )


def _kind(error: SinchError) -> str:
    if isinstance(error, SinchUnauthorized):
        return "unauthorized"
    if isinstance(error, SinchRateLimited):
        return "rate_limited"
    if isinstance(error, SinchServerError):
        return "server_error"
    if isinstance(error, SinchNotFound):
        return "not_found"
    if isinstance(error, SinchRejected):
        return "rejected"
    if isinstance(error, SinchNotSent | SinchOutcomeUnknown):
        return "no_answer"
    return "other"
