"""Hand one claimed message to Sinch, exactly once, and record what happened.

The message id travels to Sinch as ``client_reference``. Any try after the first may follow a
send that reached Sinch (a crash after Sinch accepted, an unknown outcome), so it first asks
Sinch for a batch with that reference and records it instead of sending again. No database
connection is held across a Sinch call or a throttle wait; if the database fails midway, the
claim is left to expire and a later try resolves it the same way.

Outcomes: accepted → ``submitted``; refused for good (4xx, 401 unless configured otherwise) →
``rejected`` with Sinch's code and text; transient failures → back in the outbox with backoff,
until ``expire_at`` or the maximum age → ``failed``; past ``expire_at`` before sending →
``expired``. Recipients who opted out after the message was accepted are marked ``opted_out``
just before the send and left out of the batch; when nobody is left, the message ends
``rejected`` (code ``opted_out``) without a Sinch call. Every recipient status an outcome
changes queues a status callback to the caller, in the transaction that changes it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import asyncpg
from pydantic import ValidationError

from smsgateway.domain.backoff import BackoffPolicy, GiveUp, plan_retry
from smsgateway.domain.parameters import parameters_for
from smsgateway.observability import dispatch_metrics as metrics
from smsgateway.observability.masking import mask_webhook_secrets
from smsgateway.observability.media_metrics import MESSAGES_SENT_BY_KIND
from smsgateway.observability.report_metrics import RECIPIENTS_OPTED_OUT
from smsgateway.services.media import rich_batch_request
from smsgateway.sinch.client import LOOKUP_MARGIN
from smsgateway.sinch.errors import (
    SinchError,
    SinchHTTPError,
    SinchNotSent,
    SinchOutcomeUnknown,
    SinchRateLimited,
    SinchRejected,
    SinchServerError,
    SinchUnauthorized,
)
from smsgateway.sinch.models import Batch, DeliveryReportType, SendBatchRequest
from smsgateway.store import dispatch as store
from smsgateway.store import outbox, reports, throttle
from smsgateway.store.batching import BatchCall, BatchLookup
from smsgateway.store.errors import CONNECTION_ERRORS, DatabaseUnavailableError

if TYPE_CHECKING:
    from smsgateway.sinch.client import SinchClient
    from smsgateway.store.dispatch import OutgoingMessage
    from smsgateway.store.outbox import Claim
    from smsgateway.store.pool import Connection

logger = logging.getLogger(__name__)

# The send must end well inside the lease, so no other worker can start while it may be live.
_SEND_SHARE_OF_LEASE = 0.8
# A message read with its claim is used if its send starts within this long; a claim that
# waited longer for a slot reads it again, so that a recipient's opt-out meanwhile counts.
_HELD_FRESH_SECONDS = 1.0

_REPORT_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    DatabaseUnavailableError,
    *CONNECTION_ERRORS,
)


class DispatchOutcome(StrEnum):
    SUBMITTED = "submitted"
    RESOLVED = "resolved"  # an earlier try had reached Sinch: its batch was recorded
    REJECTED = "rejected"
    OPTED_OUT = "opted_out"  # every recipient left had opted out: ended rejected, unsent
    EXPIRED = "expired"
    FAILED = "failed"
    RETRY = "retry"
    SKIPPED = "skipped"  # no longer pending (cancelled, already recorded): nothing to send
    LOST_CLAIM = "lost_claim"  # another worker holds the message now


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """How messages are sent: where Sinch reports go, the lease, retries and the send cap.

    ``dlr_callback_url`` is the gateway's own Sinch webhook (``None``: the plan's default);
    ``dlr_callback_url_source``, when set, is asked instead (once per send; it caches), for a
    URL whose path secret is read from the database. ``send_rate_per_second`` caps messages
    (recipients) per second across all workers on the database, ``None`` for no cap;
    ``send_burst`` is the bucket's size.
    ``retry_unauthorized`` treats a 401 as transient instead of rejecting the message.
    ``sender_required``: the plan has no declared default originator, so a message without a
    sender (accepted before that was so) ends ``rejected`` unsent rather than going without
    ``from``.
    ``reconcile_after_seconds``: when set, a submitted message that asked for delivery reports
    is scheduled for reconciliation that long after the send (``services.reconciliation``).
    ``unanswered_wait_seconds``: the least wait before the next try of a send Sinch did not
    answer (its outcome unknown), so that the look-up it starts with sees a batch a slow Sinch
    created late.
    ``record_linger_seconds``: how long recording a send waits for others to share its round
    trip (``store.batching``); it delays the outbox row's deletion and the ``submitted``
    status, not the message.
    """

    dlr_callback_url: str | None = None
    dlr_callback_url_source: Callable[[], Awaitable[str | None]] | None = None
    lease_seconds: float = 60.0
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    send_rate_per_second: float | None = None
    send_burst: float | None = None
    throttle_name: str = "sinch"
    retry_unauthorized: bool = False
    sender_required: bool = False
    reconcile_after_seconds: float | None = None
    unanswered_wait_seconds: float = 0.0
    record_linger_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        if self.send_rate_per_second is not None and self.send_rate_per_second <= 0:
            raise ValueError("send_rate_per_second must be positive (or None for no cap)")
        if self.send_burst is not None and self.send_burst <= 0:
            raise ValueError("send_burst must be positive")

    @property
    def burst(self) -> float:
        """The bucket size: ``send_burst``, else one second's worth (at least one message)."""
        if self.send_burst is not None:
            return self.send_burst
        return max(1.0, self.send_rate_per_second or 1.0)

    @property
    def max_throttle_wait(self) -> float:
        # A reserved slot must leave most of the lease for the send itself.
        return self.lease_seconds / 4


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    """Sends claimed messages with one pool and one Sinch client; safe to share across tasks.

    ``random``, ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        sinch: SinchClient,
        policy: DispatchPolicy,
        *,
        random: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._pool = pool
        self._sinch = sinch
        self._policy = policy
        self._random = random
        self._clock = clock
        self._sleep = sleep
        # Concurrent sends load their messages, record their batches (when no callbacks are
        # to be queued) and look for early reports together: one statement for all waiting.
        # Recording and the look come after the message went to Sinch, so they linger for more
        # company (store.batching).
        self._loads: BatchCall[uuid.UUID, OutgoingMessage | None] = BatchCall(pool, _load_many)
        self._submissions: BatchCall[store.Submission, bool] = BatchCall(
            pool, store.record_submitted_many, linger=policy.record_linger_seconds
        )
        self._kept: BatchLookup[str] = BatchLookup(
            pool, reports.kept_batches, linger=policy.record_linger_seconds
        )
        # Messages read with their claims (store.dispatch.claim_and_load), by claim token.
        self._held: dict[uuid.UUID, OutgoingMessage | None] = {}

    @property
    def policy(self) -> DispatchPolicy:
        return self._policy

    def hold(self, claimed: store.ClaimedMessage) -> None:
        """Keeps the message its claim read, for ``dispatch`` to use instead of loading it."""
        self._held[claimed.claim.claim_token] = claimed.message

    def forget(self, claim: Claim) -> None:
        """Drops what ``hold`` kept for ``claim`` (dispatched, failed or given back)."""
        self._held.pop(claim.claim_token, None)

    async def _message_for(self, claim: Claim) -> OutgoingMessage | None:
        """The claimed message: as its claim read it, while that is fresh; else loaded now."""
        if claim.claim_token in self._held:
            held = self._held.pop(claim.claim_token)
            if time.monotonic() - claim.claimed_monotonic < _HELD_FRESH_SECONDS:
                return held
        return await self._loads.call(claim.message_id)

    async def dispatch(self, claim: Claim) -> DispatchOutcome:
        """Sends (or resolves, ends or reschedules) the claimed message; one try.

        Database errors propagate: the caller logs them and the claim expires by itself.
        """
        message = await self._message_for(claim)
        if message is None or not message.is_pending:
            # Cancelled or recorded meanwhile: the outbox row has nothing left to do.
            async with self._pool.acquire() as connection:
                await outbox.complete(connection, claim.message_id, claim.claim_token)
            return DispatchOutcome.SKIPPED
        if not message.recipients:
            return await self._end(
                claim,
                message,
                "failed",
                "no_recipients",
                "No recipient is left to send to.",
                {},
                cost_nothing=claim.attempts == 1,
            )
        if message.expire_at is not None and message.expire_at <= self._clock():
            return await self._end(
                claim,
                message,
                "expired",
                "expired_before_send",
                "expire_at passed before the message could be sent.",
                {"expire_at": message.expire_at.isoformat()},
                # A first try only: an earlier one may have reached Sinch (looked up below).
                cost_nothing=claim.attempts == 1,
            )
        if claim.attempts > 1:
            # Before the opt-out check: a batch an earlier try created went to everyone in it.
            outcome = await self._resolve_earlier_try(claim, message)
            if outcome is not None:
                return outcome

        if message.opted_out:
            outcome = await self._leave_out_opted_out(claim, message)
            if outcome is not None:
                return outcome

        if message.sender is None and self._policy.sender_required:
            return await self._end(
                claim,
                message,
                "rejected",
                "sender_required",
                "The message has no sender and the Sinch plan no declared default originator.",
                {},
                cost_nothing=True,
            )
        source = self._policy.dlr_callback_url_source
        callback_url = self._policy.dlr_callback_url if source is None else await source()
        try:
            request = self._request(message, callback_url)
        except ValidationError as exc:
            return await self._end(
                claim,
                message,
                "rejected",
                "invalid_request",
                f"The message cannot be expressed as a Sinch batch: {exc.error_count()} error(s).",
                {},
                cost_nothing=True,
            )
        await self._wait_for_send_slot(len(request.to))
        if not self._surely_held(claim):
            async with self._pool.acquire() as connection:
                if not await outbox.extend_lease(connection, claim, self._policy.lease_seconds):
                    metrics.LOST_CLAIMS.inc()
                    logger.warning("message %s: claim lost before sending; not sent", message.id)
                    return DispatchOutcome.LOST_CLAIM
        return await self._send(claim, message, request)

    async def _apply_early_reports(self, batch_id: str) -> None:
        """Applies the delivery reports kept because they came before ``batch_id`` was known.

        It must look after the batch id is committed (``store.reports`` tells why), and it
        almost never finds any, so concurrent sends share one look. A failure loses nothing:
        the reports stay kept, for the batch's next report or the retention job to apply.
        """
        try:
            if batch_id not in await self._kept.lookup((batch_id,)):
                return
            async with self._pool.acquire() as connection:
                await reports.apply_unmatched(connection, batch_id)
        except _REPORT_ERRORS:
            logger.warning(
                "batch %s: early delivery reports left for later", batch_id, exc_info=True
            )

    def _surely_held(self, claim: Claim) -> bool:
        """Whether the claim is young enough that no other worker can have it and the send's
        whole timeout still fits in its lease; then renewing it would be a round trip (7 % of
        a send's CPU) for nothing. A claim that waited (for a slot, the rate cap, a lookup)
        is renewed, and refused if it was lost."""
        young_for = self._policy.lease_seconds * (1 - _SEND_SHARE_OF_LEASE) / 2
        return time.monotonic() - claim.claimed_monotonic < young_for

    async def _leave_out_opted_out(
        self, claim: Claim, message: OutgoingMessage
    ) -> DispatchOutcome | None:
        """Marks the recipients who opted out since accept; an outcome if that ended the
        message (or the claim was lost), None when the others are still to be sent."""
        async with self._pool.acquire() as connection:
            marked = await store.record_opted_out(
                connection,
                claim,
                message.opted_out,
                route=message.callback_route,
                event={"reason": "opted_out_before_send", "attempt": claim.attempts},
            )
        if marked is None:
            metrics.LOST_CLAIMS.inc()
            return DispatchOutcome.LOST_CLAIM
        RECIPIENTS_OPTED_OUT.inc(len(marked.recipients))
        if marked.ended_as is None:
            return None
        metrics.MESSAGES_FAILED.labels(store.OPTED_OUT_CODE).inc()
        logger.info("message %s: %s, every recipient opted out", message.id, marked.ended_as)
        return DispatchOutcome.OPTED_OUT

    async def _send(
        self, claim: Claim, message: OutgoingMessage, request: SendBatchRequest
    ) -> DispatchOutcome:
        try:
            async with asyncio.timeout(self._policy.lease_seconds * _SEND_SHARE_OF_LEASE):
                batch = await self._sinch.send_batch(request)
        except TimeoutError:
            return await self._retry(claim, message, "timeout", "send timed out inside the lease")
        except SinchRateLimited as exc:
            return await self._retry(claim, message, "rate_limited", str(exc), exc.retry_after)
        except SinchRejected as exc:
            return await self._reject(claim, message, exc)
        except SinchUnauthorized as exc:
            if self._policy.retry_unauthorized:
                return await self._retry(claim, message, "unauthorized", str(exc))
            logger.error("Sinch refused our credentials (401): check SINCH_* settings")
            return await self._reject(claim, message, exc)
        except SinchError as exc:
            return await self._retry(claim, message, _transient_reason(exc), str(exc))
        return await self._record(claim, message, batch, resolved_by_lookup=batch.found_by_lookup)

    async def _resolve_earlier_try(
        self, claim: Claim, message: OutgoingMessage
    ) -> DispatchOutcome | None:
        """The batch an earlier try created, recorded; None if Sinch has none (send now)."""
        try:
            batch = await self._sinch.find_batch(
                str(message.id), start_date=message.created_at - LOOKUP_MARGIN
            )
        except SinchError as exc:
            metrics.LOOKUPS.labels("error").inc()
            return await self._retry(claim, message, "lookup_failed", str(exc))
        if batch is None:
            metrics.LOOKUPS.labels("none").inc()
            return None
        metrics.LOOKUPS.labels("found").inc()
        logger.info("message %s: earlier try had created batch %s", message.id, batch.id)
        return await self._record(claim, message, batch, resolved_by_lookup=True)

    async def _wait_for_send_slot(self, recipients: int) -> None:
        rate = self._policy.send_rate_per_second
        if rate is None:
            return
        waited = 0.0
        while True:
            async with self._pool.acquire() as connection:
                reservation = await throttle.reserve(
                    connection,
                    name=self._policy.throttle_name,
                    rate=rate,
                    burst=self._policy.burst,
                    tokens=recipients,
                    max_wait=self._policy.max_throttle_wait,
                )
            if reservation.wait_seconds > 0:
                await self._sleep(reservation.wait_seconds)
                waited += reservation.wait_seconds
            if reservation.granted:
                break
        if waited > 0:
            metrics.THROTTLE_WAITS.inc()
            metrics.THROTTLE_WAIT_SECONDS.observe(waited)

    async def _record(
        self, claim: Claim, message: OutgoingMessage, batch: Batch, *, resolved_by_lookup: bool
    ) -> DispatchOutcome:
        if message.callback_route is None:
            held = await self._submissions.call(
                store.Submission(
                    claim, batch.id, resolved_by_lookup, self._policy.reconcile_after_seconds
                )
            )
        else:
            async with self._pool.acquire() as connection:
                held = await store.record_submitted(
                    connection,
                    claim,
                    batch_id=batch.id,
                    resolved_by_lookup=resolved_by_lookup,
                    route=message.callback_route,
                    reconcile_after=self._policy.reconcile_after_seconds,
                )
        await self._apply_early_reports(batch.id)
        if not held:
            logger.warning("message %s: batch %s recorded from a lost claim", message.id, batch.id)
        via = "lookup" if resolved_by_lookup else "send"
        metrics.MESSAGES_SENT.labels(via).inc()
        MESSAGES_SENT_BY_KIND.labels(message.kind).inc()
        recipients = len(batch.to)
        metrics.RECIPIENTS_SENT.inc(recipients)
        metrics.SEGMENTS_SENT.inc(recipients * message.segment_count)
        if not resolved_by_lookup:
            due = max(message.created_at, message.send_at or message.created_at)
            metrics.DISPATCH_LATENCY.observe(max(0.0, (self._clock() - due).total_seconds()))
        return DispatchOutcome.RESOLVED if resolved_by_lookup else DispatchOutcome.SUBMITTED

    async def _reject(
        self, claim: Claim, message: OutgoingMessage, exc: SinchHTTPError
    ) -> DispatchOutcome:
        code = exc.code or f"http_{exc.status}"
        # Sinch's text may quote the batch, callback_url included: never show its secret.
        text = None if exc.text is None else mask_webhook_secrets(exc.text)
        return await self._end(
            claim,
            message,
            "rejected",
            code,
            text or mask_webhook_secrets(str(exc)),
            {"http_status": exc.status, "code": exc.code, "text": text},
            cost_nothing=True,
        )

    async def _retry(
        self,
        claim: Claim,
        message: OutgoingMessage,
        reason: str,
        error: str,
        retry_after: float | None = None,
    ) -> DispatchOutcome:
        error = mask_webhook_secrets(error)
        plan = plan_retry(
            self._policy.backoff,
            attempts=claim.attempts,
            accepted_at=message.created_at,
            expire_at=message.expire_at,
            now=self._clock(),
            random=self._random,
            retry_after=retry_after,
            min_delay=(
                self._policy.unanswered_wait_seconds if reason in _UNANSWERED_REASONS else 0.0
            ),
        )
        if isinstance(plan, GiveUp):
            return await self._end(
                claim,
                message,
                "failed",
                plan.reason.value,
                f"Gave up after {claim.attempts} attempt(s); last error: {error}",
                {"reason": reason, "error": error},
                cost_nothing=reason in _NOTHING_SENT_REASONS,
            )
        event: dict[str, Any] = {"reason": reason, "error": error, "attempt": claim.attempts}
        if retry_after is not None:
            event["retry_after"] = retry_after
        async with self._pool.acquire() as connection:
            due_at = await store.record_retry(
                connection,
                claim,
                delay_seconds=plan.delay,
                error=error,
                event=event,
                # Until the next try has looked, cancelling could not answer truly.
                keep_claim=reason in _UNANSWERED_REASONS,
            )
        if due_at is None:
            metrics.LOST_CLAIMS.inc()
            return DispatchOutcome.LOST_CLAIM
        metrics.RETRIES.labels(reason).inc()
        logger.warning(
            "message %s: attempt %d failed (%s: %s); next try in %.1f s",
            claim.message_id,
            claim.attempts,
            reason,
            error,
            plan.delay,
        )
        return DispatchOutcome.RETRY

    async def _end(
        self,
        claim: Claim,
        message: OutgoingMessage,
        status: store.FinalStatus,
        code: str,
        detail: str,
        event: dict[str, Any],
        *,
        cost_nothing: bool,
    ) -> DispatchOutcome:
        """Ends the message unsent; ``cost_nothing`` when no attempt can have reached Sinch
        (an earlier try was looked up and had not, and this one was refused or never made),
        so its spend is given back to its tenant's caps."""
        async with self._pool.acquire() as connection:
            held = await store.record_final(
                connection,
                claim,
                status=status,
                code=code,
                detail=detail,
                event={"code": code, "attempt": claim.attempts, **event},
                route=message.callback_route,
                give_back_spend=cost_nothing,
            )
        if not held:
            metrics.LOST_CLAIMS.inc()
            return DispatchOutcome.LOST_CLAIM
        metrics.MESSAGES_FAILED.labels(code if status == "failed" else status).inc()
        logger.info("message %s: %s (%s)", claim.message_id, status, code)
        return DispatchOutcome(status)

    def _request(self, message: OutgoingMessage, callback_url: str | None) -> SendBatchRequest:
        if message.kind != "text":
            return rich_batch_request(message, callback_url)
        return SendBatchRequest(
            to=list(message.sendable),
            from_=message.sender,
            body=message.body,
            delivery_report=DeliveryReportType(message.delivery_report),
            expire_at=message.expire_at,
            callback_url=callback_url,
            client_reference=str(message.id),
            parameters=None
            if message.parameters is None
            else parameters_for(message.parameters, message.sendable),
            max_number_of_message_parts=message.max_segments,
        )


_NOTHING_SENT_REASONS = frozenset({"rate_limited", "not_sent", "unauthorized"})
"""Retry reasons where Sinch surely created no batch (a timeout, a 5xx or a lost answer
may have): giving up after one of them gives the spend back."""
_UNANSWERED_REASONS = frozenset({"outcome_unknown", "timeout"})
"""Retry reasons where Sinch may have the request and still be working on it."""


def _transient_reason(exc: SinchError) -> str:
    if isinstance(exc, SinchServerError):
        return "server_error"
    if isinstance(exc, SinchNotSent):
        return "not_sent"
    if isinstance(exc, SinchOutcomeUnknown):
        return "outcome_unknown"
    return "sinch_error"


async def _load_many(
    connection: Connection, message_ids: list[uuid.UUID]
) -> list[OutgoingMessage | None]:
    loaded = await store.load_outgoing_many(connection, message_ids)
    return [loaded.get(message_id) for message_id in message_ids]
