"""Accept a message: check it, store it with its recipients and outbox entry, then say yes.

Nothing is acknowledged before it is committed. Concurrent accepts share one statement and one
commit (group commit); a request with an Idempotency-Key takes its own transaction so that the
key and the message are stored together or not at all. Recipients who opted out (STOP) are
stored with status ``opted_out`` and left out of the Sinch batch; if all of them did, the
message is stored ``rejected`` and never queued for sending.

The caller's protection policy (services/protection.py) refuses recipients by country and
number type with the draft, and its velocity and spend counters are taken in the write that
stores the message (store/protection.py), so a refused message takes nothing. With Redis
configured for them (services/velocity.py), the velocity counters are taken there first, all
or nothing, and given back if the write then does not store the message.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from zoneinfo import ZoneInfo

import asyncpg

from smsgateway.domain.errors import DomainError
from smsgateway.domain.ids import time_ordered_id
from smsgateway.domain.protection import ProtectionPolicy
from smsgateway.domain.schedule import plan_schedule
from smsgateway.observability.media_metrics import MESSAGES_ACCEPTED_BY_KIND
from smsgateway.observability.report_metrics import RECIPIENTS_OPTED_OUT
from smsgateway.observability.sending_metrics import (
    IDEMPOTENT_REPLAYS,
    MESSAGES_ACCEPTED,
    RECIPIENTS_ACCEPTED,
)
from smsgateway.services.drafting import DraftRequest, MessageDraft, MessagePolicy, draft_message
from smsgateway.services.media_check import MediaCheck
from smsgateway.services.protection import (
    LimitedRecipient,
    PolicyBook,
    count_policy_hits,
    count_warnings,
    draws_for,
    preview_limits,
    refusal_for,
)
from smsgateway.services.sender_ownership import SenderOwnership
from smsgateway.services.velocity import PostgresVelocityCounters, VelocityCounters
from smsgateway.store.api_keys import ApiKeyRecord
from smsgateway.store.batching import BatchCall
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.idempotency import insert_accepted_once
from smsgateway.store.messages import (
    MessageRecord,
    NewMessage,
    OptOutsFoundError,
    get_message,
)
from smsgateway.store.protection import (
    GuardedMessage,
    GuardOutcome,
    GuardRefusedError,
    write_guarded,
    write_guarded_one,
)


class IdempotencyKeyReusedError(DomainError):
    """The same Idempotency-Key came with a different request."""

    default_code = "idempotency_key_reused"


@dataclass(frozen=True)
class AcceptRequest:
    """A validated ``POST /v1/messages`` body, in the service's terms."""

    draft: DraftRequest
    client_reference: str | None
    send_at: datetime | None
    expire_at: datetime | None
    callback_url: str | None
    delivery_report: str
    fingerprint: bytes | None
    """A digest of the request as sent, to tell an idempotent replay from a reused key;
    needed only with an Idempotency-Key."""


@dataclass(frozen=True)
class Accepted:
    """The stored message; ``replayed`` when an Idempotency-Key returned an earlier one."""

    message: MessageRecord | NewMessage
    replayed: bool = False


@dataclass(frozen=True)
class Preview:
    """What accepting a message now would do: its draft (refusals by number and destination
    policy included), and the recipients its velocity limits or spend caps would refuse."""

    draft: MessageDraft
    limited: tuple[LimitedRecipient, ...]


@dataclass(frozen=True)
class _Attempt:
    """One message's way through ``accept``: what it was drafted from, and the recipients
    found opted out so far (marked, and left out of its draws, on the next write)."""

    request: AcceptRequest
    key: ApiKeyRecord
    protection: ProtectionPolicy
    draft: MessageDraft
    now: datetime
    message_id: uuid.UUID
    opted_out: frozenset[str] = field(default_factory=frozenset)


def fingerprint(canonical_json: bytes) -> bytes:
    return hashlib.sha256(canonical_json).digest()


class AcceptService:
    """The accept use case; one per process, sharing one ``BatchWriter``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        policy: MessagePolicy,
        *,
        policies: PolicyBook | None = None,
        time_zone: ZoneInfo | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        random_bytes: Callable[[int], bytes] = os.urandom,
        acquire_timeout: float = 1.0,
        media_check: MediaCheck | None = None,
        senders: SenderOwnership | None = None,
        velocity: VelocityCounters | None = None,
    ) -> None:
        self._pool = pool
        self._velocity: VelocityCounters = velocity or PostgresVelocityCounters()
        self._senders = senders or SenderOwnership(pool, acquire_timeout=acquire_timeout)
        self._media_check = media_check
        self._policy = policy
        self._policies = policies or PolicyBook(pool, policy.destinations)
        self._time_zone = time_zone or ZoneInfo("UTC")
        self._clock = clock
        self._random_bytes = random_bytes
        self._acquire_timeout = acquire_timeout
        # One batch in flight at a time: accepts arriving meanwhile wait and go together in
        # the next. With two in flight, batches at a moderate load (2,000/s offered) were so
        # small that each accept cost 30 % more CPU, and the p99 swung from 44 to 114 ms
        # between runs; with one, 30-40 ms (bench_accept.py --rate 2000).
        # The protection counters (velocity, spend) are taken in the same round trips.
        self._writer: BatchCall[GuardedMessage, GuardOutcome] = BatchCall(
            pool, write_guarded, max_concurrent_batches=1, acquire_timeout=acquire_timeout
        )

    async def accept(
        self, request: AcceptRequest, key: ApiKeyRecord, idempotency_key: str | None
    ) -> Accepted:
        """Stores the message and returns it; raises ``DomainError`` for what cannot be sent
        and ``DatabaseUnavailableError`` when Postgres cannot take it now."""
        protection = await self._policies.policy_for(key)
        draft = draft_message(request.draft, self._policy, protection.destinations)
        count_policy_hits(draft.policy_hits)
        draft.recipients.raise_if_refused()
        await self._senders.check(draft.sender, key, default=request.draft.sender is None)
        if draft.content is not None and self._media_check is not None:
            await self._media_check.check_draft(draft.content)
        now = self._clock()
        attempt = _Attempt(
            request=request,
            key=key,
            protection=protection,
            draft=draft,
            now=now,
            message_id=time_ordered_id(int(now.timestamp() * 1000), self._random_bytes(10)),
        )
        # The write checks opt-outs itself (one round trip, not a look-up and then a write):
        # assumed none, and a write that finds some stores nothing, so the message is drafted
        # again with them marked, its draws without them, and written again.
        while True:
            outcome = await self._store(attempt, idempotency_key)
            if isinstance(outcome, Accepted):
                return outcome
            # The write looks only at recipients not marked yet, so each pass marks more: the
            # loop ends within as many passes as the message has recipients.
            assert not outcome <= attempt.opted_out, "the write found no new opt-out"
            RECIPIENTS_OPTED_OUT.inc(len(outcome))
            attempt = replace(attempt, opted_out=attempt.opted_out | outcome)

    async def _store(
        self, attempt: _Attempt, idempotency_key: str | None
    ) -> Accepted | frozenset[str]:
        """Takes the message's counters and stores it; returns the recipients the write found
        opted out instead when it found any (it then stored and kept nothing)."""
        request, draft, now = attempt.request, attempt.draft, attempt.now
        message = self._new_message(attempt)
        draws = draws_for(
            attempt.protection,
            key=attempt.key,
            recipients=draft.recipients.accepted,
            opted_out=attempt.opted_out,
            segments=draft.segments,
            price_table=self._policy.price_table,
            now=now,
            time_zone=self._time_zone,
            segments_by_recipient=draft.rendered_segments,
        )
        velocity = tuple(draw for draw in draws if draw.is_velocity)
        taken = await self._velocity.take(velocity) if velocity else None
        if taken is not None and not taken.passed:
            raise refusal_for(taken, draft.recipients.accepted, now=now, time_zone=self._time_zone)
        # Taken outside the write: the write takes only the rest (spend), and what was taken
        # is given back unless the write stores the message.
        taken_outside = velocity if taken is not None else ()
        guarded = GuardedMessage(
            message,
            tuple(draw for draw in draws if not draw.is_velocity) if taken_outside else draws,
            tuple(hit for hit in draft.policy_hits if not hit.enforced),
            request.callback_url or attempt.key.default_callback_url,
        )
        stored = False
        try:
            if idempotency_key is None:
                outcome = await self._writer.call(guarded)
                if outcome.opted_out:
                    return outcome.opted_out
                if not outcome.stored:
                    assert outcome.verdict is not None
                    raise refusal_for(
                        outcome.verdict,
                        draft.recipients.accepted,
                        now=now,
                        time_zone=self._time_zone,
                    )
                stored = True
                count_warnings(outcome.verdict)
                _count_accepted(message)
                return Accepted(message)
            if request.fingerprint is None:
                raise ValueError("an idempotent accept needs the request's fingerprint")
            try:
                accepted = await self._accept_once(
                    guarded, attempt.key, idempotency_key, request.fingerprint
                )
            except GuardRefusedError as exc:
                raise refusal_for(
                    exc.verdict, draft.recipients.accepted, now=now, time_zone=self._time_zone
                ) from None
            except OptOutsFoundError as exc:
                return exc.found[message.id]
            stored = not accepted.replayed  # a replay stored nothing new: it takes nothing
            return accepted
        finally:
            if taken_outside and not stored:
                await self._velocity.give_back(taken_outside)

    def _new_message(self, attempt: _Attempt) -> NewMessage:
        request, draft = attempt.request, attempt.draft
        schedule = plan_schedule(attempt.now, request.send_at, request.expire_at)
        everyone_opted_out = len(attempt.opted_out) == len(draft.recipients.e164s)
        return NewMessage(
            id=attempt.message_id,
            tenant=attempt.key.tenant,
            api_key_id=attempt.key.id,
            sender=None if draft.sender is None else draft.sender.value,
            body=draft.stored_body,
            encoding=draft.encoding,
            segment_count=draft.segments,
            character_count=draft.characters,
            recipients=draft.recipients.e164s,
            client_reference=request.client_reference,
            status="rejected" if everyone_opted_out else schedule.status,
            delivery_report=request.delivery_report,
            send_at=request.send_at,
            expire_at=request.expire_at,
            callback_url=request.callback_url,
            parameters=draft.parameters,
            max_segments=request.draft.max_segments,
            created_at=attempt.now,
            due_at=schedule.due_at,
            opted_out=attempt.opted_out,
            kind=draft.kind,
            content=None if draft.content is None else draft.content.stored_content(),
        )

    async def preview(self, request: DraftRequest, key: ApiKeyRecord) -> Preview:
        """Drafts the message as ``accept`` would and reads the counters it would take, without
        storing, taking or locking anything; raises ``DomainError`` as ``accept`` does."""
        protection = await self._policies.policy_for(key)
        draft = draft_message(request, self._policy, protection.destinations)
        limited = await preview_limits(
            self._pool,
            self._velocity,
            protection,
            key=key,
            recipients=draft.recipients.accepted,
            segments=draft.segments,
            price_table=self._policy.price_table,
            now=self._clock(),
            time_zone=self._time_zone,
            segments_by_recipient=draft.rendered_segments,
        )
        return Preview(draft, limited)

    async def _accept_once(
        self, guarded: GuardedMessage, key: ApiKeyRecord, idempotency_key: str, digest: bytes
    ) -> Accepted:
        message = guarded.message
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as connection:
                existing = await insert_accepted_once(
                    connection,
                    message,
                    api_key_id=key.id,
                    idempotency_key=idempotency_key,
                    request_hash=digest,
                    write=partial(write_guarded_one, item=guarded),
                )
                if existing is None:
                    _count_accepted(message)
                    return Accepted(message)
                if existing.request_hash != digest:
                    raise IdempotencyKeyReusedError(
                        "This Idempotency-Key was used with a different request in the last "
                        "24 hours; use a new key for a new message.",
                        field="Idempotency-Key",
                    )
                stored = await get_message(connection, key.tenant, existing.message_id)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        assert stored is not None, "an idempotency key always points at a stored message"
        IDEMPOTENT_REPLAYS.inc()
        return Accepted(stored, replayed=True)


def _count_accepted(message: NewMessage) -> None:
    MESSAGES_ACCEPTED.inc()
    MESSAGES_ACCEPTED_BY_KIND.labels(message.kind).inc()
    RECIPIENTS_ACCEPTED.inc(len(message.recipients))
