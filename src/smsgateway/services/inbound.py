"""Receive Sinch's inbound (MO) messages: store each once, act on opt-out keywords.

``mo_text`` bodies that are, as a whole, an opt-out keyword (STOP, ...) opt the sender out;
an opt-in keyword (START, ...) opts them back in; HELP is recorded as such (answering it is a
later feature). ``mo_binary``, ``mo_media`` and types Sinch adds later are stored as received,
never read for keywords. An opt-out covers the number the subscriber wrote to, or every
sender of that number's tenant when the operator says so (``domain.tenancy.StopScope``).
Each inbound belongs to the tenant owning the number it was sent to (admin keys only when
none does).
A callback repeated with the same Sinch ``id`` is stored once and acted on once. ``from`` and
``to`` are stored as ``phone.normalise_address`` reads them (E.164 with ``+`` for a number, as
Sinch may leave it out; short codes and alphanumeric ids as given), and list filters are read
the same way, so ``+1415...`` and ``1415...`` find the same messages.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

import asyncpg
from pydantic import ValidationError

from smsgateway.domain.inbound import SINCH_INBOUND_TYPES
from smsgateway.domain.opt_out import KeywordKind, KeywordSet, normalise_keyword
from smsgateway.domain.phone import normalise_address
from smsgateway.domain.tenancy import StopScope
from smsgateway.observability import report_metrics as metrics
from smsgateway.services.delivery_reports import payload_digest, read_json_object
from smsgateway.sinch.models import INBOUND_MESSAGE_ADAPTER, MoText
from smsgateway.store import inbound as store
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.inbound import InboundFilter, InboundRecord, NewInbound
from smsgateway.store.opt_outs import OptChange

ACQUIRE_TIMEOUT_SECONDS = 1.0

_E164: Final = re.compile(r"\+[1-9][0-9]{1,14}")


@dataclass(frozen=True, slots=True)
class InboundReceipt:
    """``duplicate``: this Sinch id was stored before; ``opt_out`` the change made, if any."""

    id: uuid.UUID | None
    duplicate: bool
    keyword: KeywordKind | None = None
    opted_out: bool | None = None


def inbound_from_payload(
    payload: dict[str, Any], keywords: KeywordSet, now: datetime
) -> NewInbound:
    """A callback body in the store's terms; lenient, since every inbound must be kept."""
    try:
        parsed = INBOUND_MESSAGE_ADAPTER.validate_python(payload)
    except ValidationError:
        parsed = None
    if parsed is not None:
        is_text = isinstance(parsed, MoText)
        return NewInbound(
            sinch_id=parsed.id,
            type=parsed.type,
            sender=normalise_address(parsed.from_),
            recipient=normalise_address(parsed.to),
            body=parsed.body if is_text else None,
            keyword=_keyword(parsed.body, keywords) if is_text else None,
            client_reference=parsed.client_reference,
            operator_id=parsed.operator_id,
            received_at=_aware(parsed.received_at),
            sent_at=None if parsed.sent_at is None else _aware(parsed.sent_at),
            payload=payload,
        )
    # Without a usable id, the payload's digest keeps repeats idempotent all the same.
    sinch_id = _text(payload.get("id")) or f"sha256:{payload_digest(payload)}"
    sender = _text(payload.get("from"))
    recipient = _text(payload.get("to"))
    return NewInbound(
        sinch_id=sinch_id,
        type=_text(payload.get("type")) or "unknown",
        sender=None if sender is None else normalise_address(sender),
        recipient=None if recipient is None else normalise_address(recipient),
        body=None,
        keyword=None,
        client_reference=_text(payload.get("client_reference")),
        operator_id=_text(payload.get("operator_id")),
        received_at=_timestamp(payload.get("received_at")) or now,
        sent_at=_timestamp(payload.get("sent_at")),
        payload=payload,
    )


def opt_change_of(inbound: NewInbound) -> OptChange | None:
    """The opt-out or opt-in an inbound asks for, if any (a sender that is not E.164, such as
    an alphanumeric id, cannot be opted out)."""
    if inbound.keyword not in (KeywordKind.OPT_OUT, KeywordKind.OPT_IN):
        return None
    if inbound.sender is None or not _E164.fullmatch(inbound.sender):
        return None
    return OptChange(
        msisdn=inbound.sender,
        opted_out=inbound.keyword == KeywordKind.OPT_OUT,
        changed_at=inbound.received_at,
        source="inbound",
        keyword=normalise_keyword(inbound.body or "").upper(),
    )


class InboundService:
    """Stores inbound messages and applies their keywords; one per process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        keywords: KeywordSet,
        *,
        stop_scope: StopScope = StopScope.SENDER,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._pool = pool
        self._keywords = keywords
        self._stop_scope = stop_scope
        self._clock = clock or _utcnow

    async def receive(self, body: bytes) -> InboundReceipt:
        """Stores the inbound in ``body``; raises ``UnreadablePayloadError`` for a body that is
        not a JSON object and ``DatabaseUnavailableError`` when Postgres cannot take it now."""
        return await self.receive_payload(read_json_object(body))

    async def receive_payload(self, payload: dict[str, Any]) -> InboundReceipt:
        """``receive`` for a body already read (``read_json_object``)."""
        inbound = inbound_from_payload(payload, self._keywords, self._clock())
        change = opt_change_of(inbound)
        try:
            async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
                stored = await store.record_inbound(connection, inbound, change, self._stop_scope)
        except UNAVAILABLE_ERRORS as exc:
            raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc
        if stored.duplicate:
            metrics.INBOUND_DUPLICATES.inc()
            return InboundReceipt(None, duplicate=True)
        kind = inbound.type if inbound.type in SINCH_INBOUND_TYPES else "other"
        metrics.INBOUND_MESSAGES.labels(kind, inbound.keyword or "none").inc()
        if stored.opt_out is not None:
            action = "opt_out" if stored.opt_out.opted_out else "opt_in"
            metrics.OPT_OUT_CHANGES.labels(action, "inbound").inc()
        return InboundReceipt(
            stored.id,
            duplicate=False,
            keyword=None if inbound.keyword is None else KeywordKind(inbound.keyword),
            opted_out=None if stored.opt_out is None else stored.opt_out.opted_out,
        )


async def find_inbound(pool: asyncpg.Pool, where: InboundFilter) -> list[InboundRecord]:
    """Inbound messages matching ``where`` (its addresses read as stored ones are, its
    ``tenant`` the viewer's), newest first."""
    where = replace(
        where,
        sender=None if where.sender is None else normalise_address(where.sender),
        recipient=None if where.recipient is None else normalise_address(where.recipient),
    )
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            return await store.list_inbound(connection, where)
    except UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _keyword(body: str, keywords: KeywordSet) -> str | None:
    kind = keywords.classify(body)
    return None if kind is None else kind.value


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return _aware(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
