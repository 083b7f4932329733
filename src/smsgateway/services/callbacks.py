"""Status callbacks to callers: which URLs may receive them, how each is signed and POSTed,
and what an answer means for the event.

Rules (also in the README and ``.env.example``):

- **Body.** The event's stored payload as compact JSON with sorted keys, the same bytes on
  every attempt: ``id`` (stable, also the ``webhook-id`` header), ``type``
  (``recipient.status_changed``), ``message_id``, ``client_reference``, ``recipient``,
  ``status``, ``previous_status``, ``code`` (Sinch's), ``status_at`` and
  ``operator_status_at`` (Sinch's times; all three null for the gateway's own changes, such as
  ``submitted`` or ``cancelled``), ``message_status``, ``sequence`` (1, 2, ... per message) and
  ``created_at`` (when the gateway recorded the change).
- **Signature.** Standard Webhooks (``domain.standard_webhooks``): ``webhook-id`` is the
  event's id, the same on every attempt and replay; ``webhook-timestamp`` is fresh per attempt;
  ``webhook-signature`` holds one ``v1,<base64>`` per configured secret. Receivers verify with
  any ``standardwebhooks`` library. Without ``SMSGW_CALLBACK_SIGNING_SECRETS`` callbacks are
  off: a ``callback_url`` is refused at accept, the worker does not run, and nothing is ever
  sent unsigned.
- **Outcome.** A 2xx delivers the event. Anything else (another status, a redirect, a timeout,
  a connection error, a refused target) is retried with full-jitter backoff (a receiver's
  ``Retry-After`` is honoured up to the maximum delay) until ``max_age`` after the event was
  queued; the last try is at that horizon, then the event is ``failed``.
- **Targets.** http(s) only; private, loopback and link-local targets are refused unless
  allowed (``domain.callback_targets``). Host names are resolved here, at delivery, and the
  call goes to an address that was checked (TLS still verifies the name), so DNS cannot
  re-point a checked name between check and call. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import httpx

from smsgateway import __version__
from smsgateway.domain.backoff import BackoffPolicy, GiveUp, plan_retry
from smsgateway.domain.callback_targets import check_callback_url, is_refused_address
from smsgateway.domain.standard_webhooks import SigningSecret, webhook_headers
from smsgateway.observability import callback_metrics as metrics
from smsgateway.settings import Settings
from smsgateway.store import callbacks as store
from smsgateway.store.callbacks import (
    AttemptOutcome,
    AttemptRecord,
    CallbackClaim,
    CallbackEvent,
    ReplayRefusal,
)

NOT_CONFIGURED: Final = "callbacks_not_configured"
# Enough of an answer to see it end; the rest is not read (and the connection not reused).
_MAX_ANSWER_BYTES: Final = 64 * 1024

logger = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """How callbacks are sent; ``secrets`` empty means callbacks are off."""

    secrets: tuple[SigningSecret, ...] = ()
    allow_private: bool = False
    timeout_seconds: float = 5.0
    backoff: BackoffPolicy = field(
        default_factory=lambda: BackoffPolicy(
            base_delay=10.0,
            max_delay=3600.0,
            max_retry_after=3600.0,
            max_age=timedelta(hours=24),
        )
    )

    @property
    def enabled(self) -> bool:
        return bool(self.secrets)

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackPolicy:
        return cls(
            secrets=settings.callback_secrets,
            allow_private=settings.callback_private_targets_allowed,
            timeout_seconds=settings.callback_timeout_seconds,
            backoff=BackoffPolicy(
                base_delay=settings.callback_retry_base_seconds,
                max_delay=settings.callback_retry_max_seconds,
                max_retry_after=settings.callback_retry_max_seconds,
                max_age=timedelta(seconds=settings.callback_max_age_seconds),
            ),
        )


def callback_url_refusal(url: str, policy: CallbackPolicy) -> str | None:
    """Why ``url`` may not be a callback URL (a stable code), or None if it may."""
    if not policy.enabled:
        return NOT_CONFIGURED
    refusal = check_callback_url(url, allow_private=policy.allow_private)
    return None if refusal is None else refusal.value


def callback_body(payload: dict[str, Any]) -> bytes:
    """The bytes POSTed (and signed) for an event: the same on every attempt."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


async def list_callbacks(
    pool: asyncpg.Pool, tenant: str, message_id: uuid.UUID
) -> list[CallbackEvent] | None:
    """The message's callback events with their attempts; None if it is not ``tenant``'s."""
    async with pool.acquire() as connection:
        return await store.list_events(connection, tenant, message_id)


async def replay_callback(
    pool: asyncpg.Pool, tenant: str, message_id: uuid.UUID, event_id: uuid.UUID
) -> ReplayRefusal | None:
    """Queues a delivered or failed event again, due now, same id; None when done."""
    async with pool.acquire() as connection:
        return await store.replay_event(connection, tenant, message_id, event_id)


class TargetRefusedError(Exception):
    """The URL's host resolved to an address callbacks may not go to."""


async def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (TCP), through the event loop's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class CallbackDeliverer:
    """POSTs one claimed event and records what came of it; one per worker."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        policy: CallbackPolicy,
        worker_id: str,
        *,
        random_source: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
        resolve: Resolver = resolve_addresses,
    ) -> None:
        if not policy.enabled:
            raise ValueError("callbacks need SMSGW_CALLBACK_SIGNING_SECRETS")
        self._pool = pool
        self._http = http
        self._policy = policy
        self._worker_id = worker_id
        self._random = random_source
        self._clock = clock
        self._resolve = resolve
        self._headers = {
            "content-type": "application/json",
            "user-agent": f"smsgateway/{__version__} (status callbacks)",
        }

    async def deliver(self, claim: CallbackClaim) -> AttemptOutcome:
        """One attempt: POST, then record it (delivered, retry later, or failed)."""
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()
        status_code, error, label, retry_after = await self._post(claim)
        elapsed = time.perf_counter() - started
        metrics.CALLBACK_ATTEMPTS.labels(label).inc()
        metrics.CALLBACK_ATTEMPT_SECONDS.labels(label).observe(elapsed)
        if label == "delivered":
            record = AttemptRecord(
                AttemptOutcome.DELIVERED, status_code, None, elapsed * 1000, attempted_at
            )
        else:
            plan = plan_retry(
                self._policy.backoff,
                attempts=max(1, claim.attempts),
                accepted_at=claim.queued_at,
                expire_at=None,
                now=datetime.now(UTC),
                random=self._random,
                retry_after=retry_after,
            )
            if isinstance(plan, GiveUp):
                record = AttemptRecord(
                    AttemptOutcome.FAILED, status_code, error, elapsed * 1000, attempted_at
                )
            else:
                record = AttemptRecord(
                    AttemptOutcome.RETRY,
                    status_code,
                    error,
                    elapsed * 1000,
                    attempted_at,
                    retry_in_seconds=plan.delay,
                )
        async with self._pool.acquire() as connection:
            held = await store.record_attempt(connection, claim, record, self._worker_id)
        if not held:
            metrics.CALLBACK_LOST_CLAIMS.inc()
            logger.warning(
                "callback event %s: claim lost before its attempt was recorded", claim.id
            )
        elif record.outcome is AttemptOutcome.DELIVERED:
            metrics.CALLBACK_EVENTS_FINISHED.labels("delivered").inc()
            lag = (datetime.now(UTC) - claim.created_at).total_seconds()
            metrics.CALLBACK_DELIVERY_LAG.observe(max(0.0, lag))
        elif record.outcome is AttemptOutcome.FAILED:
            metrics.CALLBACK_EVENTS_FINISHED.labels("failed").inc()
            logger.warning(
                "callback event %s of message %s failed after %d attempt(s): %s",
                claim.id,
                claim.message_id,
                claim.attempts,
                error or f"HTTP {status_code}",
            )
        return record.outcome

    async def _post(self, claim: CallbackClaim) -> tuple[int | None, str | None, str, float | None]:
        """(status code, error, metric outcome, Retry-After seconds) of one POST."""
        body = callback_body(claim.payload)
        # The event's id on every attempt and replay, so receivers can drop repeats by it.
        headers = {
            **self._headers,
            **webhook_headers(str(claim.id), int(self._clock()), body, self._policy.secrets),
        }
        try:
            url, extensions = await self._target(claim.url, headers)
        except TargetRefusedError as exc:
            return None, str(exc), "refused_target", None
        except (OSError, ValueError) as exc:
            return None, f"cannot resolve the host: {exc}", "network_error", None
        try:
            async with asyncio.timeout(self._policy.timeout_seconds):
                async with self._http.stream(
                    "POST", url, content=body, headers=headers, extensions=extensions
                ) as response:
                    read = 0
                    async for chunk in response.aiter_raw():
                        read += len(chunk)
                        if read >= _MAX_ANSWER_BYTES:
                            break
        except (TimeoutError, httpx.TimeoutException):
            return None, f"no answer within {self._policy.timeout_seconds:g} s", "timeout", None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], "network_error", None
        status = response.status_code
        if 200 <= status < 300:
            return status, None, "delivered", None
        return status, f"HTTP {status}", "http_error", _retry_after(response)

    async def _target(self, url: str, headers: dict[str, str]) -> tuple[httpx.URL, dict[str, Any]]:
        """The URL to connect to: with private targets refused, the host is resolved and every
        address checked, and the call pinned to one of them (Host and SNI keep the name)."""
        target = httpx.URL(url)
        if self._policy.allow_private:
            return target, {}
        host = target.host
        port = target.port or (443 if target.scheme == "https" else 80)
        addresses = await self._resolve(host, port)
        if not addresses or any(
            is_refused_address(address, allow_private=False) for address in addresses
        ):
            raise TargetRefusedError(f"{host} resolves to a refused (non-public) address")
        headers["host"] = target.netloc.decode("ascii")
        extensions: dict[str, Any] = {}
        if target.scheme == "https":
            extensions["sni_hostname"] = host
        return target.copy_with(host=addresses[0]), extensions


def _retry_after(response: httpx.Response) -> float | None:
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None
