"""Authenticating Sinch's calls to our webhooks: path secret, HTTP Basic, HMAC signature.

Which checks are on is ``services.webhook_access.WebhookAccess`` (secure by default with real
Sinch credentials), and a call must pass every check that is on. All comparisons take
constant time. Only a missing or wrong credential is refused (401, which Sinch never retries).

A correctly signed call is always let through, even with a timestamp further than ``max_age``
from our clock or a nonce some gateway process has seen: Sinch retries for ~22 h 45 min,
nothing says a retry is signed anew, and storing a report or an MO twice is a no-op. Such a
call is counted (``smsgw_webhook_signature_replays_total{reason}``) and logged at INFO. Nonces
of fresh calls are recorded in Postgres (``services.webhook_nonces``) to count reuse across
processes; a nonce that cannot be recorded is skipped (logged), so it never changes the answer.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

from smsgateway.domain.webhook_signatures import (
    check_basic_credentials,
    mark_reused_nonce,
    verify_sinch_signature,
)
from smsgateway.observability.report_metrics import WEBHOOK_SIGNATURE_REPLAYS
from smsgateway.services.webhook_access import WebhookAccess, WebhookPathSecret
from smsgateway.settings import Settings

logger = logging.getLogger(__name__)

PATH_SECRET_REFUSAL: Final = "bad_path_secret"
BASIC_REFUSAL: Final = "bad_basic_credentials"


@dataclass(frozen=True, slots=True)
class WebhookRefusal:
    """Why a call is refused: a stable ``reason`` and a short sentence for the 401 answer."""

    reason: str
    detail: str


class WebhookGuard:
    """The checks in force. ``path_secret`` gives the path secret (configured or generated);
    ``first_use`` records a verified nonce and says whether it is new
    (``services.webhook_nonces.WebhookNonces.first_use``)."""

    def __init__(
        self,
        *,
        signing_secret: str | None,
        max_age_seconds: float,
        basic_user: str | None,
        basic_password: str | None,
        path_secret: WebhookPathSecret,
        clock: Callable[[], float],
        first_use: Callable[[str], Awaitable[bool]],
    ) -> None:
        self._signing_secret = signing_secret or None
        self._max_age = max_age_seconds
        self._basic = (
            (basic_user, basic_password)
            if basic_user is not None and basic_password is not None
            else None
        )
        self._path_secret = path_secret
        self._clock = clock
        self._first_use = first_use

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        path_secret: WebhookPathSecret,
        clock: Callable[[], float],
        first_use: Callable[[str], Awaitable[bool]],
    ) -> WebhookGuard:
        return cls(
            signing_secret=_secret(settings.webhook_signing_secret),
            max_age_seconds=settings.webhook_signature_max_age_seconds,
            basic_user=settings.webhook_basic_user,
            basic_password=_secret(settings.webhook_basic_password),
            path_secret=path_secret,
            clock=clock,
            first_use=first_use,
        )

    @property
    def access(self) -> WebhookAccess:
        return self._path_secret.access

    @property
    def wants_basic(self) -> bool:
        return self._basic is not None

    async def check(
        self, *, path_secret: str | None, headers: Mapping[str, str], body: bytes
    ) -> WebhookRefusal | None:
        """None when the call passes every check that is on; raises
        ``DatabaseUnavailableError`` when a generated path secret cannot be read yet."""
        if self.access.has_path_secret or path_secret is not None:
            # A call without any secret is refused before the database is asked.
            expected = (
                await self._path_secret.get()
                if self.access.has_path_secret and path_secret is not None
                else None
            )
            given = (path_secret or "").encode("utf-8")
            if expected is None or not hmac.compare_digest(expected.encode("utf-8"), given):
                return WebhookRefusal(PATH_SECRET_REFUSAL, "The callback URL is not this one.")
        if self._basic is not None:
            user, password = self._basic
            if not check_basic_credentials(headers.get("authorization"), user, password):
                return WebhookRefusal(BASIC_REFUSAL, "HTTP Basic credentials are missing or wrong.")
        if self._signing_secret is not None:
            verdict = verify_sinch_signature(
                body, headers, self._signing_secret, self._clock(), self._max_age
            )
            if verdict.refusal is not None:
                return WebhookRefusal(verdict.refusal.value, _SIGNATURE_DETAILS[verdict.refusal])
            if verdict.replay is None and verdict.nonce is not None:
                try:
                    if not await self._first_use(verdict.nonce):
                        verdict = mark_reused_nonce(verdict)
                except Exception:
                    # Counting replays must never fail a report that can be stored: the report
                    # itself answers 503 if Postgres is really away.
                    logger.warning(
                        "signed Sinch callback: its nonce could not be recorded", exc_info=True
                    )
            if verdict.replay is not None:
                WEBHOOK_SIGNATURE_REPLAYS.labels(verdict.replay.value).inc()
                logger.info(
                    "signed Sinch callback accepted despite a replay sign",
                    extra={"reason": verdict.replay.value, "detail": verdict.detail},
                )
        return None


_SIGNATURE_DETAILS: Final = {
    "missing_signature_header": "The x-sinch-webhook-signature headers are missing.",
    "unsupported_signature_algorithm": "The signature algorithm is not HmacSHA256.",
    "malformed_signature_header": "A x-sinch-webhook-signature header is malformed.",
    "bad_signature": "The signature does not match the body.",
}


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
