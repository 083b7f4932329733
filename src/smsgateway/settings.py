"""Every setting the gateway reads, validated once at start-up.

Names kept from the Express tutorial (``SINCH_SERVICE_PLAN_ID``, ``SINCH_API_TOKEN``,
``SINCH_NUMBER``, ``SINCH_REGION``, ``PORT``) and ``DATABASE_URL`` have no prefix; every other
setting is ``SMSGW_<NAME>``. ``.env.example`` documents each one.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse as parse_rate_limit
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from smsgateway.domain.destination_policy import (
    DEFAULT_REFUSED_TYPES,
    parse_countries,
    parse_number_types,
)
from smsgateway.domain.errors import DomainError
from smsgateway.domain.opt_out import (
    DEFAULT_HELP_KEYWORDS,
    DEFAULT_OPT_IN_KEYWORDS,
    DEFAULT_OPT_OUT_KEYWORDS,
    KeywordSet,
)
from smsgateway.domain.phone import parse_region
from smsgateway.domain.pricing import load_price_table
from smsgateway.domain.standard_webhooks import SigningSecret
from smsgateway.domain.tenancy import StopScope

SinchRegion = Literal["us", "eu", "au", "br", "ca"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_REPO_ROOT = Path(__file__).resolve().parents[2]
_PATH_SECRET = re.compile(r"[A-Za-z0-9_-]{24,256}")


def default_workers() -> int:
    """API workers when SMSGW_WORKERS is unset: one per CPU this process may use, less the one
    the dispatch process (``SMSGW_DISPATCHER=process``) takes, at least one and at most two.
    Measured end to end on two cores (bench/bench_end_to_end.py): one API worker beside the
    dispatch process kept the outbox empty, where two API workers took CPU the dispatcher
    needed and the outbox grew; more are unmeasured, and each brings a pool to Postgres."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus - 1, 2))


def _default_migrations_dir() -> Path:
    return _REPO_ROOT / "migrations"


_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class Settings(BaseSettings):
    """The gateway's configuration, from the environment and ``.env``."""

    model_config = SettingsConfigDict(
        env_prefix="SMSGW_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # `DATABASE_URL=` copied from .env.example means "not set", not "an empty URL".
        env_ignore_empty=True,
        populate_by_name=True,
        frozen=True,
    )

    # Names kept from the Express tutorial.
    sinch_service_plan_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SINCH_SERVICE_PLAN_ID", "sinch_service_plan_id"),
    )
    sinch_api_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SINCH_API_TOKEN", "sinch_api_token")
    )
    sinch_number: str | None = Field(
        default=None, validation_alias=AliasChoices("SINCH_NUMBER", "sinch_number")
    )
    sinch_region: SinchRegion = Field(
        default="us", validation_alias=AliasChoices("SINCH_REGION", "sinch_region")
    )
    sinch_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("SINCH_BASE_URL", "sinch_base_url")
    )
    # OAuth2 client credentials (us and eu only), instead of the service plan id and token.
    sinch_project_id: str | None = Field(
        default=None, validation_alias=AliasChoices("SINCH_PROJECT_ID", "sinch_project_id")
    )
    sinch_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("SINCH_KEY_ID", "sinch_key_id")
    )
    sinch_key_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SINCH_KEY_SECRET", "sinch_key_secret")
    )
    sinch_oauth2_token_url: str = "https://auth.sinch.com/oauth2/token"
    # auto: use the built-in simulator when no Sinch credentials are configured.
    sinch_simulator: Literal["auto", "on", "off"] = "auto"
    simulator_port: int = Field(default=8001, ge=1, le=65535)
    port: int = Field(default=8000, ge=1, le=65535, validation_alias=AliasChoices("PORT", "port"))

    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "database_url")
    )

    host: str = "127.0.0.1"
    workers: int = Field(default_factory=default_workers, ge=1, le=64)
    data_dir: Path = Path(".smsgateway")
    migrations_dir: Path = Field(default_factory=_default_migrations_dir)

    # 0 connects lazily: the gateway starts (and reports not ready) while Postgres is down.
    db_pool_min_size: int = Field(default=0, ge=0)
    db_pool_max_size: int = Field(default=20, ge=1)
    db_command_timeout_seconds: float = Field(default=5.0, gt=0)
    db_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    readiness_timeout_seconds: float = Field(default=1.0, gt=0)

    sinch_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    sinch_read_timeout_seconds: float = Field(default=10.0, gt=0)
    sinch_write_timeout_seconds: float = Field(default=10.0, gt=0)
    sinch_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    # At least SMSGW_DISPATCH_CONCURRENCY, or sends wait for a connection.
    sinch_max_connections: int = Field(default=256, ge=1)
    # The pooled client's transport: HTTP/1.1 written and parsed by the gateway itself (raw),
    # about 0.1 ms of CPU per request against 0.35-0.5 ms through aiohttp's pool.
    sinch_transport: Literal["raw", "aiohttp", "httpx"] = "raw"

    # Messages: national numbers need a region; a message costing more parts is refused.
    default_region: str | None = None
    max_segments: int = Field(default=10, ge=1, le=255)
    refuse_fixed_line: bool = False
    # Senders callers may put in `from` besides SINCH_NUMBER; empty: only SINCH_NUMBER.
    allowed_senders: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # A JSON price table ({"currency", "prices": {calling code: price per segment}}) for
    # cost estimates; unset: no estimate.
    price_table_file: Path | None = None

    # Destination policy for tenants with none of their own (`smsgateway policy set`):
    # ISO 3166 alpha-2 lists, comma-separated. Allowed empty: every country not blocked.
    # Monitored countries are sent to and recorded. Refused number types default to the
    # ranges SMS pumping aims at (domain/destination_policy.py); `monitor` mode refuses
    # nothing and records what it would have refused.
    allowed_countries: Annotated[list[str], NoDecode] = Field(default_factory=list)
    blocked_countries: Annotated[list[str], NoDecode] = Field(default_factory=list)
    monitored_countries: Annotated[list[str], NoDecode] = Field(default_factory=list)
    refused_number_types: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: sorted(str(kind) for kind in DEFAULT_REFUSED_TYPES)
    )
    destination_policy_mode: Literal["enforce", "monitor"] = "enforce"
    # Tenants whose API keys may read and change policies at /v1/admin/policies (empty: none;
    # the CLI `smsgateway policy` always can).
    policy_admin_tenants: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # How long a process keeps the tenants' policies and the sender assignments before
    # reading them again.
    policy_refresh_seconds: float = Field(default=5.0, gt=0, le=3600)
    # The calendar that spend caps reset on (IANA name).
    spend_time_zone: str = "UTC"
    # Where velocity counters live: unset follows RATE_LIMIT_STORAGE_URL when that is a Redis
    # (one shared store for every counter of requests and messages); `postgres` keeps them in
    # Postgres even then; redis://... names a Redis of their own. Spend caps are always in
    # Postgres. See velocity_counters_url.
    protection_counters_url: str | None = None
    # How long one Redis call for the velocity counters may take before the accept falls back
    # to the Postgres counters (and Redis is left alone for a few seconds).
    protection_counters_timeout_seconds: float = Field(default=0.25, gt=0, le=10)

    # The outbox dispatcher. process: `serve` runs it in a process of its own beside the API
    # workers (an API process's accepts would starve a dispatcher sharing its event loop);
    # on: inside every API worker; off: not in `serve` (run `smsgateway worker`).
    dispatcher: Literal["process", "on", "off"] = "process"
    # How Sinch reaches this gateway's webhooks (delivery reports); default http://HOST:PORT.
    # With real Sinch credentials it must be set to a public http(s) URL (services/go_live.py).
    public_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("PUBLIC_BASE_URL", "public_base_url")
    )
    # Let PUBLIC_BASE_URL name a private, loopback or link-local host (Sinch reaches the
    # gateway through a private link); without it such a URL stops start-up.
    allow_private_public_base_url: bool = False
    # The service plan has an automatic default originator, so batches may go without `from`;
    # false: a message with no sender is refused (sender_required) on a real Sinch account.
    sinch_default_originator: bool = False
    # Sinch webhooks (one URL, /webhooks/sinch, for every kind): each check is on when set,
    # and a call must pass every check that is on. The HMAC secret Sinch signs callbacks with:
    webhook_signing_secret: SecretStr | None = None
    # The window for counting replays: a correctly signed callback whose timestamp is further
    # than this from our clock, or whose nonce any process saw within it, is still applied
    # (idempotently) and only counted; nonces are kept in Postgres for twice this long.
    webhook_signature_max_age_seconds: float = Field(default=300.0, gt=0, le=3600)
    # HTTP Basic credentials provisioned on the callback URL at Sinch.
    webhook_basic_user: str | None = None
    webhook_basic_password: SecretStr | None = None
    # An unguessable path segment: callbacks go to /webhooks/sinch/<secret>. Unset with real
    # Sinch credentials and no other check: one is generated once and kept in Postgres.
    webhook_path_secret: SecretStr | None = None
    # auto: with real Sinch credentials, webhooks are never open (a path secret is generated
    # when no check is configured); none: accept unauthenticated callbacks (warned at start).
    webhook_auth: Literal["auto", "none"] = "auto"
    # Inbound keywords (the whole body, any case and spacing), comma-separated.
    opt_out_keywords: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_OPT_OUT_KEYWORDS)
    )
    opt_in_keywords: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_OPT_IN_KEYWORDS)
    )
    help_keywords: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_HELP_KEYWORDS)
    )
    # What an inbound STOP (or START) covers: `sender`, the number it was sent to (US CTIA:
    # an opt-out is per number or short code); `tenant`, every number of the tenant that owns
    # that number (for tenants whose numbers are all one program). See domain/tenancy.py.
    stop_scope: StopScope = StopScope.SENDER
    # Messages per second handed to Sinch across all workers (a batch to N recipients counts
    # N, as Sinch counts); match your Sinch plan. Unset: no cap.
    send_rate_per_second: float | None = Field(default=None, gt=0)
    # Sends in flight per dispatching process. A send holds its slot for Sinch's answer and the
    # batched write that records it: at 64, one dispatch process sent ~830/s against a Sinch
    # answering in 50 ms while accepts came at 1,300/s; at 256 it kept up (1,384/s, end to
    # end, bench/bench_end_to_end.py). SMSGW_SEND_RATE_PER_SECOND is the cap on the rate.
    dispatch_concurrency: int = Field(default=256, ge=1, le=1024)
    dispatch_batch_size: int = Field(default=256, ge=1, le=1000)
    dispatch_lease_seconds: float = Field(default=60.0, ge=5)
    dispatch_poll_seconds: float = Field(default=0.1, gt=0, le=10)
    # After a send Sinch did not answer, the next try (which looks the batch up before sending
    # again) waits at least this long: a Sinch slow enough to time out may still be working on
    # the request, and a look-up made before it finishes would send the message twice.
    # Default: the read timeout.
    dispatch_unanswered_wait_seconds: float | None = Field(default=None, ge=0, le=600)
    # Delivery reports and the records of sends wait this long for company before their
    # round trip when fewer than 16 are waiting (store.batching's linger): fewer, larger
    # batches at a moderate load, for a few ms that no caller waits on. 0: no wait.
    batch_linger_ms: float = Field(default=5.0, ge=0, le=1000)
    # Wake the dispatcher and the callback worker the moment work commits (Postgres
    # LISTEN/NOTIFY on one extra connection per process); the polls above stay as the safety
    # net. Off for a pooler that cannot LISTEN (PgBouncer in transaction mode): polling only.
    dispatch_listen: Literal["on", "off"] = "on"
    # `smsgateway worker` serves /metrics, /healthz and /readyz on this port (on SMSGW_HOST);
    # unset: none. A port already in use refuses the start.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # On shutdown, sends under way get this long to finish; the rest are released.
    dispatch_stop_seconds: float = Field(default=10.0, ge=0, le=120)
    # A message Sinch keeps refusing for transient reasons is given up after this long.
    dispatch_max_age_seconds: float = Field(default=3 * 24 * 3600, gt=0)

    # MMS (services/media_check.py): fetch the media's headers before accepting, since Sinch
    # fetches it itself and refuses a chunked answer or an unsupported type only in a report.
    mms_check_media: bool = False
    mms_check_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    # Let media URLs name private, loopback and link-local hosts (tests only: Sinch cannot
    # fetch from them).
    mms_media_allow_private: bool = False

    # Status callbacks to callers (workers/callbacks.py), signed the Standard Webhooks way with
    # each of these whsec_ secrets (two while rotating); none: callbacks are off (no
    # callback_url accepted, nothing sent unsigned). Whitespace- or comma-separated.
    callback_signing_secrets: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # The pre-Standard-Webhooks setting: only read to refuse it, so that an upgrade does not
    # silently turn callbacks off.
    callback_signing_secret: SecretStr | None = Field(default=None, exclude=True)
    # Let callbacks go to private, loopback and link-local addresses (tests, the simulator).
    callback_allow_private_targets: bool = False
    callback_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # Per worker process: POSTs at once, and at once to one host (host:port).
    callback_concurrency: int = Field(default=32, ge=1, le=1024)
    callback_per_host_concurrency: int = Field(default=4, ge=1, le=1024)
    callback_batch_size: int = Field(default=100, ge=1, le=1000)
    callback_poll_seconds: float = Field(default=0.2, gt=0, le=10)
    # Retries: full jitter from the base delay, doubling up to the maximum, until max_age
    # after the event was queued (then the event is failed).
    callback_retry_base_seconds: float = Field(default=10.0, gt=0)
    callback_retry_max_seconds: float = Field(default=3600.0, gt=0)
    callback_max_age_seconds: float = Field(default=24 * 3600.0, gt=0)

    # The retention job, run wherever the dispatcher runs (services/retention.py).
    unmatched_report_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="Delivery reports that matched no message (kept early, or unreadable) are "
        "deleted once older than this many days.",
    )
    retention_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="How often the retention job runs: it applies kept reports whose batch is "
        "now known, and deletes old unmatched reports, expired idempotency keys and webhook "
        "nonces past twice the signature window.",
    )
    retention_pause_ms: int = Field(
        default=100,
        ge=0,
        le=60000,
        description="The retention job's pause, in milliseconds, after each statement that "
        "redacted or deleted personal data (at most 1,000 messages), so that a sweep over "
        "millions of rows leaves the database to accepts and dispatch in between; 0 sweeps "
        "flat out.",
    )
    redact_after_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        description="A message's body and numbers (and an inbound message's) are redacted "
        "this many days after its last change (its final status), once nothing is pending for "
        "it; unset keeps them. A tenant's own window (PUT /v1/admin/retention/{tenant}) "
        "replaces it.",
    )
    delete_after_days: int | None = Field(
        default=None,
        ge=1,
        le=36500,
        description="Messages unchanged for this many days, with nothing pending (and inbound "
        "messages this old), are deleted; unset keeps them. A tenant's own window replaces it.",
    )

    # Delivery-report reconciliation, run wherever the dispatcher runs
    # (services/reconciliation.py).
    reconcile: Literal["on", "off"] = Field(
        default="on",
        description="Ask Sinch for the delivery reports of messages whose reports have not all "
        "arrived (lost webhooks, an unreachable PUBLIC_BASE_URL).",
    )
    reconcile_after_seconds: float = Field(
        default=900.0,
        ge=1,
        le=86400,
        description="The first check, this long after the send. Sinch normally reports within "
        "seconds to minutes; 15 minutes leaves webhooks (and Sinch's own retries of them) time "
        "to arrive, so a healthy gateway makes almost no checks.",
    )
    reconcile_max_interval_seconds: float = Field(
        default=3600.0,
        ge=1,
        le=86400,
        description="The longest wait between two checks of one message (they double from "
        "SMSGW_RECONCILE_AFTER_SECONDS up to it).",
    )
    reconcile_batch_size: int = Field(
        default=100,
        ge=1,
        le=1000,
        description="Messages claimed per reconciliation round, per process.",
    )
    reconcile_concurrency: int = Field(
        default=8,
        ge=1,
        le=256,
        description="Messages asked about at once, per process.",
    )

    # Requests per API key (a key's own limit wins), e.g. 600/minute or 20/second; also per
    # client address for requests without a valid key.
    rate_limit: str = "600/minute"
    # Where the counters live: unset keeps them per process; redis://host:6379 shares them.
    rate_limit_storage_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("RATE_LIMIT_STORAGE_URL", "rate_limit_storage_url"),
    )

    # POST /send-sms (the tutorial's) waits this long for Sinch to accept the message.
    legacy_wait_seconds: float = Field(default=10.0, gt=0, le=60)

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # All request headers together; more is answered 431 (a header is no place for data).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    log_level: LogLevel = "INFO"
    docs_enabled: bool = True
    # POST /v1/messages through the send lane (api/send_lane.py), which answers it without
    # FastAPI's routing; off sends it through the general route, for comparison.
    send_lane: Literal["on", "off"] = "on"
    # POST /webhooks/sinch[/<secret>] through the report lane (api/report_lane.py), likewise.
    report_lane: Literal["on", "off"] = "on"

    @field_validator("log_level", "webhook_auth", mode="before")
    @classmethod
    def _normalise_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.strip().lower()

    @field_validator(
        "allowed_senders",
        "opt_out_keywords",
        "opt_in_keywords",
        "help_keywords",
        "allowed_countries",
        "blocked_countries",
        "monitored_countries",
        "refused_number_types",
        "policy_admin_tenants",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: object) -> object:
        # A comma-separated list in the environment, e.g. "+12025550123,ACME".
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("callback_signing_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        # base64 has neither spaces nor commas, so either separates secrets.
        if isinstance(value, str):
            return value.replace(",", " ").split()
        return value

    @field_validator("callback_signing_secrets")
    @classmethod
    def _check_callback_secrets(cls, value: list[SecretStr]) -> list[SecretStr]:
        texts = [secret.get_secret_value() for secret in value]
        for place, text in enumerate(texts, start=1):
            try:
                SigningSecret.parse(text)
            except ValueError as exc:
                raise ValueError(
                    f"secret {place}: {exc} (`smsgateway callback-secret` makes one)"
                ) from exc
        if len(set(texts)) != len(texts):
            raise ValueError("a secret is listed twice")
        return value

    @field_validator("callback_signing_secret")
    @classmethod
    def _refuse_old_callback_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raise ValueError(
                "callbacks are now signed the Standard Webhooks way: set "
                "SMSGW_CALLBACK_SIGNING_SECRETS to a whsec_ secret (`smsgateway "
                "callback-secret` makes one) and unset this"
            )
        return value

    @field_validator("allowed_countries", "blocked_countries", "monitored_countries")
    @classmethod
    def _check_countries(cls, value: list[str], info: ValidationInfo) -> list[str]:
        try:
            return sorted(parse_countries(value, field=str(info.field_name)))
        except DomainError as exc:
            raise ValueError(exc.message) from None

    @field_validator("refused_number_types")
    @classmethod
    def _check_number_types(cls, value: list[str]) -> list[str]:
        try:
            return sorted(str(kind) for kind in parse_number_types(value, field="types"))
        except DomainError as exc:
            raise ValueError(exc.message) from None

    @field_validator("protection_counters_url")
    @classmethod
    def _check_protection_counters_url(cls, value: str | None) -> str | None:
        if value in (None, "", "postgres"):
            return value or None
        if not value.startswith(_REDIS_SCHEMES):
            raise ValueError("SMSGW_PROTECTION_COUNTERS_URL is `postgres` or a redis:// URL")
        return value

    @field_validator("spend_time_zone")
    @classmethod
    def _check_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"{value!r} is not an IANA time zone (e.g. Europe/Stockholm)"
            ) from None
        return value

    @field_validator("default_region", mode="before")
    @classmethod
    def _check_default_region(cls, value: object) -> object:
        if not isinstance(value, str) or not value.strip():
            return None if isinstance(value, str) else value
        try:
            return parse_region(value)
        except DomainError as exc:
            raise ValueError(f"{value!r} is not an ISO 3166 region code such as US or SE") from exc

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        try:
            parse_rate_limit(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate limit such as 600/minute") from exc
        return value

    @field_validator("price_table_file")
    @classmethod
    def _check_price_table(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        try:
            load_price_table(value.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ValueError(f"cannot read {value}: {exc.strerror}") from exc
        except DomainError as exc:
            raise ValueError(f"{value} is not a valid price table: {exc.message}") from exc
        return value

    @field_validator("sinch_region", mode="before")
    @classmethod
    def _lower_region(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("webhook_path_secret")
    @classmethod
    def _check_path_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _PATH_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("must be 24 to 256 characters of A-Z, a-z, 0-9, '-' and '_'")
        return value

    @model_validator(mode="after")
    def _check_webhook_settings(self) -> Settings:
        if (self.webhook_basic_user is None) != (self.webhook_basic_password is None):
            raise ValueError(
                "SMSGW_WEBHOOK_BASIC_USER and SMSGW_WEBHOOK_BASIC_PASSWORD go together: set both"
            )
        if self.webhook_auth == "none" and self.webhook_checks_configured:
            raise ValueError(
                "SMSGW_WEBHOOK_AUTH=none contradicts the webhook check that is set "
                "(SMSGW_WEBHOOK_SIGNING_SECRET, _BASIC_USER/_PASSWORD or _PATH_SECRET): unset one"
            )
        try:
            KeywordSet.of(self.opt_out_keywords, self.opt_in_keywords, self.help_keywords)
        except ValueError as exc:
            raise ValueError(
                f"SMSGW_OPT_OUT_KEYWORDS/SMSGW_OPT_IN_KEYWORDS/SMSGW_HELP_KEYWORDS: {exc}"
            ) from exc
        return self

    @model_validator(mode="after")
    def _check_redis_installed(self) -> Settings:
        # Found at start, in one line, rather than as an ImportError at the first accept.
        wants_redis = self.velocity_counters_url is not None or (
            self.rate_limit_storage_url or ""
        ).startswith(_REDIS_SCHEMES)
        if wants_redis and importlib.util.find_spec("redis") is None:
            raise ValueError(
                "RATE_LIMIT_STORAGE_URL / SMSGW_PROTECTION_COUNTERS_URL name a Redis, but the "
                "redis package is not installed: pip install 'sinch-smsgateway[redis]'"
            )
        return self

    @model_validator(mode="after")
    def _check_reconcile_settings(self) -> Settings:
        if self.reconcile_max_interval_seconds < self.reconcile_after_seconds:
            raise ValueError(
                "SMSGW_RECONCILE_MAX_INTERVAL_SECONDS must be at least "
                "SMSGW_RECONCILE_AFTER_SECONDS"
            )
        return self

    @property
    def velocity_counters_url(self) -> str | None:
        """The Redis that holds the velocity counters, or None: Postgres holds them."""
        configured = self.protection_counters_url
        if configured == "postgres":
            return None
        if configured is not None:
            return configured
        shared = self.rate_limit_storage_url
        return shared if shared is not None and shared.startswith(_REDIS_SCHEMES) else None

    @property
    def webhook_checks_configured(self) -> bool:
        """Whether the operator set any check on Sinch's webhooks (signature, Basic, path)."""
        return (
            self.webhook_signing_secret is not None
            or self.webhook_basic_user is not None
            or self.webhook_path_secret is not None
        )

    @property
    def keywords(self) -> KeywordSet:
        """The inbound keyword lists, normalised."""
        return KeywordSet.of(self.opt_out_keywords, self.opt_in_keywords, self.help_keywords)

    @model_validator(mode="after")
    def _check_sinch_credentials(self) -> Settings:
        if self.sinch_auth == "oauth2" and self.sinch_region not in ("us", "eu"):
            raise ValueError(
                "SINCH_PROJECT_ID/SINCH_KEY_ID/SINCH_KEY_SECRET (OAuth2) work only with "
                f"SINCH_REGION us or eu, not {self.sinch_region}; use SINCH_SERVICE_PLAN_ID "
                "and SINCH_API_TOKEN there"
            )
        if self.sinch_simulator == "off" and self.sinch_auth == "none":
            raise ValueError(
                "SMSGW_SINCH_SIMULATOR=off needs Sinch credentials: SINCH_SERVICE_PLAN_ID and "
                "SINCH_API_TOKEN, or SINCH_PROJECT_ID, SINCH_KEY_ID and SINCH_KEY_SECRET"
            )
        return self

    @property
    def sinch_auth(self) -> Literal["api_token", "oauth2", "none"]:
        """Which Sinch credentials are configured; the API token wins when both are."""
        if self.sinch_service_plan_id and self.sinch_api_token:
            return "api_token"
        if self.sinch_project_id and self.sinch_key_id and self.sinch_key_secret:
            return "oauth2"
        return "none"

    @property
    def uses_simulator(self) -> bool:
        """The gateway talks to the built-in simulator instead of Sinch."""
        return self.sinch_simulator == "on" or (
            self.sinch_simulator == "auto" and self.sinch_auth == "none"
        )

    @property
    def sender_required(self) -> bool:
        """Every batch needs a ``from``: a real Sinch account whose plan has no declared
        default originator. The simulator behaves as if its plan had one."""
        return not self.uses_simulator and not self.sinch_default_originator

    @property
    def webhook_base_url(self) -> str:
        """Where Sinch sends callbacks for this gateway."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @property
    def callback_private_targets_allowed(self) -> bool:
        """Callbacks may go to private addresses: when allowed, and always with the simulator
        (no real Sinch account means a development or test set-up)."""
        return self.callback_allow_private_targets or self.uses_simulator

    @property
    def callback_secrets(self) -> tuple[SigningSecret, ...]:
        """The callback signing secrets, parsed; empty when callbacks are off."""
        return tuple(
            SigningSecret.parse(secret.get_secret_value())
            for secret in self.callback_signing_secrets
        )

    @property
    def uses_embedded_database(self) -> bool:
        """No ``DATABASE_URL``: the gateway starts its own Postgres under ``data_dir``."""
        return self.database_url is None


def describe_settings_error(error: ValidationError) -> list[str]:
    """One line per wrong setting, naming the environment variable and what is allowed."""
    lines = []
    for item in error.errors(include_url=False):
        if not item["loc"]:
            # A rule across several settings: its message names them; the input is not shown.
            lines.append(f"configuration error: {_reason(item['msg'])}")
            continue
        name = _env_name(str(item["loc"][0]))
        given = item.get("input")
        shown = "" if _is_secret_name(name) else f"={given!r}"
        allowed = _allowed_values(item)
        reason = f"allowed values: {allowed}" if allowed else _reason(item["msg"])
        lines.append(f"configuration error: {name}{shown} is not valid; {reason}")
    return lines


def _reason(message: str) -> str:
    return message.removeprefix("Value error, ")


def _env_name(field_or_alias: str) -> str:
    if field_or_alias.isupper():
        return field_or_alias
    field = Settings.model_fields.get(field_or_alias)
    alias = field.validation_alias if field is not None else None
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    return f"SMSGW_{field_or_alias.upper()}"


def _is_secret_name(name: str) -> bool:
    return any(word in name for word in ("TOKEN", "SECRET", "PASSWORD", "DATABASE_URL", "KEY"))


def _allowed_values(item: object) -> str | None:
    ctx = item.get("ctx") if isinstance(item, dict) else None
    expected = ctx.get("expected") if isinstance(ctx, dict) else None
    return str(expected).replace("'", "") if expected else None
