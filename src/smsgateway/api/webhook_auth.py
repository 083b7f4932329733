"""Authenticating Sinch's calls to our webhooks: path secret, HTTP Basic, HMAC signature.

Each check is on when its setting is set, and a call must pass every check that is on. All
comparisons take constant time. A signed call is refused when its timestamp is further than
``max_age`` from our clock, or its nonce was seen before by any gateway process: once the
signature is good (never before, so unsigned noise writes nothing), the nonce is recorded in
Postgres (``services.webhook_nonces``), before the report is stored. Sinch signs every delivery
attempt anew, so a retry after a 503 carries a fresh nonce. No per-process memory sits in front:
it would only save a round trip for replays, which are rare.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from pydantic import SecretStr

from smsgateway.domain.webhook_signatures import (
    check_basic_credentials,
    refuse_reused_nonce,
    verify_sinch_signature,
)
from smsgateway.settings import Settings

PATH_SECRET_REFUSAL: Final = "bad_path_secret"
BASIC_REFUSAL: Final = "bad_basic_credentials"


@dataclass(frozen=True, slots=True)
class WebhookRefusal:
    """Why a call is refused: a stable ``reason`` and a short sentence for the 401 answer."""

    reason: str
    detail: str


class WebhookGuard:
    """The checks the settings switch on. ``first_use`` records a verified nonce and says
    whether it is new (``services.webhook_nonces.WebhookNonces.first_use``)."""

    def __init__(
        self,
        *,
        signing_secret: str | None,
        max_age_seconds: float,
        basic_user: str | None,
        basic_password: str | None,
        path_secret: str | None,
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
        self._path_secret = path_secret or None
        self._clock = clock
        self._first_use = first_use

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        clock: Callable[[], float],
        first_use: Callable[[str], Awaitable[bool]],
    ) -> WebhookGuard:
        return cls(
            signing_secret=_secret(settings.webhook_signing_secret),
            max_age_seconds=settings.webhook_signature_max_age_seconds,
            basic_user=settings.webhook_basic_user,
            basic_password=_secret(settings.webhook_basic_password),
            path_secret=_secret(settings.webhook_path_secret),
            clock=clock,
            first_use=first_use,
        )

    @property
    def wants_basic(self) -> bool:
        return self._basic is not None

    async def check(
        self, *, path_secret: str | None, headers: Mapping[str, str], body: bytes
    ) -> WebhookRefusal | None:
        """None when the call passes every check that is on; raises
        ``DatabaseUnavailableError`` when a verified nonce cannot be recorded now."""
        if self._path_secret is not None or path_secret is not None:
            expected = (self._path_secret or "").encode("utf-8")
            given = (path_secret or "").encode("utf-8")
            if self._path_secret is None or not hmac.compare_digest(expected, given):
                return WebhookRefusal(PATH_SECRET_REFUSAL, "The callback URL is not this one.")
        if self._basic is not None:
            user, password = self._basic
            if not check_basic_credentials(headers.get("authorization"), user, password):
                return WebhookRefusal(BASIC_REFUSAL, "HTTP Basic credentials are missing or wrong.")
        if self._signing_secret is not None:
            now = self._clock()
            verdict = verify_sinch_signature(
                body, headers, self._signing_secret, now, self._max_age
            )
            if (
                verdict.ok
                and verdict.nonce is not None
                and not await self._first_use(verdict.nonce)
            ):
                verdict = refuse_reused_nonce(verdict)
            if verdict.refusal is not None:
                return WebhookRefusal(verdict.refusal.value, _SIGNATURE_DETAILS[verdict.refusal])
        return None


_SIGNATURE_DETAILS: Final = {
    "missing_signature_header": "The x-sinch-webhook-signature headers are missing.",
    "unsupported_signature_algorithm": "The signature algorithm is not HmacSHA256.",
    "malformed_signature_header": "A x-sinch-webhook-signature header is malformed.",
    "bad_signature": "The signature does not match the body.",
    "stale_signature_timestamp": "The signature timestamp is too old.",
    "future_signature_timestamp": "The signature timestamp is too far ahead.",
    "signature_nonce_reused": "The signature nonce was used before.",
}


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()
