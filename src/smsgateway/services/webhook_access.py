"""Which authentication guards Sinch's webhooks, and the path secret in force.

Secure by default: with real Sinch credentials the webhooks are never open by accident. The
checks the operator configured (HMAC signature, HTTP Basic, path secret) are on; when none is,
a path secret is generated once (``secrets.token_urlsafe``) and kept in Postgres
(``gateway_secret``), so that every process, every restart and ``smsgateway webhooks`` agree
on the one URL Sinch calls. Only ``SMSGW_WEBHOOK_AUTH=none`` opens them, and every start says
so in a WARNING. Against the built-in simulator (no credentials, nothing reaches a phone) the
webhooks stay open with no setting, so ``make run`` works as it always has.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import asyncpg

from smsgateway.settings import Settings
from smsgateway.store.errors import UNAVAILABLE_ERRORS, DatabaseUnavailableError
from smsgateway.store.gateway_secrets import ensure_secret

GENERATED_PATH_SECRET: Final = "webhook_path_secret"
"""The ``gateway_secret`` row holding the generated path secret."""

ACQUIRE_TIMEOUT_SECONDS = 1.0
WEBHOOK_PATH: Final = "/webhooks/sinch"
"""The one URL Sinch calls for everything it posts (path secret appended when in force)."""

# Postgres could not answer now, but may in a moment.
_TRANSIENT_ERRORS: Final[tuple[type[BaseException], ...]] = (
    *UNAVAILABLE_ERRORS,
    asyncpg.QueryCanceledError,
    asyncpg.TooManyConnectionsError,
)


class PathSecretSource(StrEnum):
    """Where the path secret in force comes from."""

    CONFIGURED = "configured"  # SMSGW_WEBHOOK_PATH_SECRET
    GENERATED = "generated"  # generated once, kept in Postgres
    NONE = "none"  # no path secret: the bare /webhooks/sinch


@dataclass(frozen=True, slots=True)
class WebhookAccess:
    """The checks in force on Sinch's webhooks, decided from the settings alone."""

    signing: bool
    basic_user: str | None
    path_secret: PathSecretSource
    simulator: bool
    open_by_choice: bool  # SMSGW_WEBHOOK_AUTH=none

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookAccess:
        if settings.webhook_path_secret is not None:
            path_secret = PathSecretSource.CONFIGURED
        elif (
            settings.webhook_auth == "none"
            or settings.uses_simulator
            or settings.webhook_checks_configured
        ):
            path_secret = PathSecretSource.NONE
        else:
            path_secret = PathSecretSource.GENERATED
        return cls(
            signing=settings.webhook_signing_secret is not None,
            basic_user=settings.webhook_basic_user,
            path_secret=path_secret,
            simulator=settings.uses_simulator,
            open_by_choice=settings.webhook_auth == "none",
        )

    @property
    def is_open(self) -> bool:
        """No check at all: anyone who can reach the gateway can post reports and STOPs."""
        return not self.signing and self.basic_user is None and not self.has_path_secret

    @property
    def has_path_secret(self) -> bool:
        return self.path_secret is not PathSecretSource.NONE

    @property
    def per_batch_callback(self) -> bool:
        """Whether batches carry our webhook URL as ``callback_url``. Not with signing on:
        Sinch then calls the URL set in its dashboard and cannot be overridden per batch, so
        the dashboard URL is the only one in use, and the batch says nothing untrue."""
        return not self.signing

    def describe(self) -> str:
        """One line: which authentication is in force (never a secret)."""
        checks = []
        if self.signing:
            checks.append("HMAC signature (x-sinch-webhook-signature)")
        if self.basic_user is not None:
            checks.append(f"HTTP Basic (user {self.basic_user!r})")
        if self.path_secret is PathSecretSource.CONFIGURED:
            checks.append("path secret (SMSGW_WEBHOOK_PATH_SECRET)")
        elif self.path_secret is PathSecretSource.GENERATED:
            checks.append("path secret (generated, kept in Postgres)")
        if checks:
            return " + ".join(checks)
        if self.open_by_choice:
            return "NONE (SMSGW_WEBHOOK_AUTH=none): anyone reaching the gateway can post"
        return "none (simulator: no Sinch credentials, nothing reaches a real phone)"


def generate_path_secret() -> str:
    """A fresh path secret: 43 URL-safe characters (256 bits), as the setting accepts."""
    return secrets.token_urlsafe(32)


class WebhookPathSecret:
    """The path secret in force, read once per process: the configured one, or the generated
    one from Postgres (created by the first process that asks). One per process."""

    def __init__(
        self, pool: asyncpg.Pool, access: WebhookAccess, configured: str | None = None
    ) -> None:
        self._pool = pool
        self._access = access
        self._value = configured if access.path_secret is PathSecretSource.CONFIGURED else None
        self._lock = asyncio.Lock()

    @property
    def access(self) -> WebhookAccess:
        return self._access

    async def get(self) -> str | None:
        """The secret, or None when no path secret is in force; raises
        ``DatabaseUnavailableError`` while a generated one cannot be read yet."""
        if self._value is not None or self._access.path_secret is not PathSecretSource.GENERATED:
            return self._value
        async with self._lock:
            if self._value is None:
                self._value = await load_generated_path_secret(self._pool)
        return self._value

    async def batch_callback_url(self, base_url: str) -> str | None:
        """The ``callback_url`` each batch carries: the one webhook URL with the path secret
        in force; None with signing on (``WebhookAccess.per_batch_callback``)."""
        if not self._access.per_batch_callback:
            return None
        return webhook_url(base_url, await self.get())


async def load_generated_path_secret(pool: asyncpg.Pool) -> str:
    """The generated path secret, created now if no process created it before."""
    try:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as connection:
            return await ensure_secret(connection, GENERATED_PATH_SECRET, generate_path_secret())
    except _TRANSIENT_ERRORS as exc:
        raise DatabaseUnavailableError(str(exc) or type(exc).__name__) from exc


def webhook_url(base_url: str, path_secret: str | None) -> str:
    """The one URL Sinch calls: ``<base>/webhooks/sinch`` (``/<secret>`` when one is in force)."""
    url = base_url.rstrip("/") + WEBHOOK_PATH
    return url if path_secret is None else f"{url}/{path_secret}"
