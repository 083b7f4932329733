"""The long-lived parts of a gateway process, built from settings: the pooled HTTP client,
the Sinch client and the dispatcher's configuration. ``app`` (serving HTTP) and the
``worker`` command (dispatching only) build them the same way."""

from __future__ import annotations

import functools
import logging
import uuid

import asyncpg
import httpx
from pydantic import SecretStr

from smsgateway.domain.reconciliation import ReconcilePolicy
from smsgateway.observability.logging import request_id_var
from smsgateway.observability.sinch_metrics import PrometheusSinchObserver
from smsgateway.services.callbacks import CallbackDeliverer, CallbackPolicy
from smsgateway.services.reconciliation import Reconciler
from smsgateway.services.velocity import (
    PostgresVelocityCounters,
    RedisVelocityCounters,
    VelocityCounters,
)
from smsgateway.services.webhook_access import WebhookAccess, WebhookPathSecret, webhook_url
from smsgateway.settings import Settings
from smsgateway.sinch import (
    NO_RETRY,
    AiohttpTransport,
    RawTransport,
    RetryPolicy,
    ShardedTransport,
    SinchClient,
)
from smsgateway.store.notifications import CALLBACK_CHANNEL, OUTBOX_CHANNEL, NotificationListener
from smsgateway.store.pool import create_pool
from smsgateway.store.redis_counters import RedisCounterStore
from smsgateway.workers.callbacks import CallbackWorker, CallbackWorkerConfig
from smsgateway.workers.outbox import DispatchConfig, OutboxWorker
from smsgateway.workers.reconciliation import ReconcileConfig, ReconcileWorker

logger = logging.getLogger(__name__)

# The simulator's built-in account (simulator.config.SimulatorConfig.service_plans).
SIMULATOR_PLAN_ID = "simulator-plan"
SIMULATOR_TOKEN = "simulator-token"
# The default originator `serve` gives its embedded simulator's plan: a batch without `from`
# is then sent from it, as from a Sinch plan with a default originator.
SIMULATOR_DEFAULT_FROM = "+15550009999"


def build_velocity_counters(settings: Settings) -> VelocityCounters:
    """Redis when one is configured for them (``Settings.velocity_counters_url``), else the
    Postgres counters of the guarded write. No connection is made here: the first accept
    makes it, and falls back to Postgres if it cannot."""
    url = settings.velocity_counters_url
    if url is None:
        return PostgresVelocityCounters()
    return RedisVelocityCounters(
        RedisCounterStore.from_url(
            url, timeout_seconds=settings.protection_counters_timeout_seconds
        )
    )


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    """The process's one pooled client for Sinch, on ``SMSGW_SINCH_TRANSPORT``.

    raw (the default: HTTP/1.1 on asyncio and httptools) costs about a quarter of aiohttp's CPU
    per request, and aiohttp 35-55 % less than httpx. On httpx the pool is sharded: httpcore
    re-scans its whole pool whenever a request starts or ends, so one big pool costs
    milliseconds of CPU per request at the concurrency the dispatcher runs.
    """
    transport: httpx.AsyncBaseTransport
    if settings.sinch_transport == "raw":
        transport = RawTransport(max_connections=settings.sinch_max_connections)
    elif settings.sinch_transport == "aiohttp":
        transport = AiohttpTransport(max_connections=settings.sinch_max_connections)
    else:
        transport = ShardedTransport(max_connections=settings.sinch_max_connections)
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(
            connect=settings.sinch_connect_timeout_seconds,
            read=settings.sinch_read_timeout_seconds,
            write=settings.sinch_write_timeout_seconds,
            pool=settings.sinch_pool_timeout_seconds,
        ),
    )


async def create_dispatch_pool(settings: Settings) -> asyncpg.Pool:
    """The dispatcher's own pool, whose commits do not wait for the disk (see create_pool)."""
    assert settings.database_url is not None
    return await create_pool(
        settings.database_url.get_secret_value(),
        min_size=0,
        # Half the API pool: a send holds a connection only between Sinch calls.
        max_size=max(2, settings.db_pool_max_size // 2),
        command_timeout=settings.db_command_timeout_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
        durable_commits=False,
    )


def dispatch_config(settings: Settings, path_secret: WebhookPathSecret) -> DispatchConfig:
    """The dispatcher's configuration; batches carry the webhook URL with ``path_secret``."""
    return DispatchConfig(
        batch_size=settings.dispatch_batch_size,
        concurrency=settings.dispatch_concurrency,
        lease_seconds=settings.dispatch_lease_seconds,
        poll_interval=settings.dispatch_poll_seconds,
        max_age=settings.dispatch_max_age_seconds,
        send_rate_per_second=settings.send_rate_per_second,
        dlr_callback_url_source=functools.partial(
            path_secret.batch_callback_url, settings.webhook_base_url
        ),
        # An OAuth2 token can expire between refreshes; an API token that fails is wrong.
        retry_unauthorized=settings.sinch_auth == "oauth2",
        sender_required=settings.sender_required,
        # Whether or not this process reconciles: a message submitted while reconciliation is
        # off still awaits its reports, and a reconciler (here later, or in another process)
        # must find it in awaiting_report.
        reconcile_after_seconds=settings.reconcile_after_seconds,
        unanswered_wait_seconds=(
            settings.sinch_read_timeout_seconds
            if settings.dispatch_unanswered_wait_seconds is None
            else settings.dispatch_unanswered_wait_seconds
        ),
        record_linger_seconds=settings.batch_linger_ms / 1000,
    )


def build_reconcile_worker(
    settings: Settings, pool: asyncpg.Pool, http: httpx.AsyncClient
) -> ReconcileWorker | None:
    """The delivery-report reconciliation worker, or None when ``SMSGW_RECONCILE=off``. Its
    Sinch client does not retry on its own: a failed check is asked again with backoff."""
    if settings.reconcile == "off":
        return None
    policy = ReconcilePolicy(
        first_check=settings.reconcile_after_seconds,
        max_interval=settings.reconcile_max_interval_seconds,
    )
    reconciler = Reconciler(pool, build_sinch_client(settings, http, retry_policy=NO_RETRY), policy)
    config = ReconcileConfig(
        batch_size=settings.reconcile_batch_size, concurrency=settings.reconcile_concurrency
    )
    return ReconcileWorker(reconciler, config)


def build_wakeup_listener(
    settings: Settings, outbox_worker: OutboxWorker, callback_worker: CallbackWorker | None
) -> NotificationListener | None:
    """The connection that wakes the workers when an accept or a status callback commits,
    or None with ``SMSGW_DISPATCH_LISTEN=off`` (the workers then only poll)."""
    if settings.dispatch_listen == "off":
        return None
    assert settings.database_url is not None
    listener = NotificationListener(
        settings.database_url.get_secret_value(),
        connect_timeout=settings.db_connect_timeout_seconds,
    )
    listener.subscribe(OUTBOX_CHANNEL, outbox_worker.wake)
    if callback_worker is not None:
        listener.subscribe(CALLBACK_CHANNEL, callback_worker.wake)
    return listener


def build_callback_http_client(settings: Settings) -> httpx.AsyncClient:
    """The client for callers' callback URLs: short timeouts, no redirects, and no proxy or
    .netrc from the environment (the target checks apply to the address actually called)."""
    return httpx.AsyncClient(
        # Sharded for the same reason as Sinch's client: one big httpcore pool re-scans
        # itself on every request (sharding it took the benchmark from ~340 to ~850 events/s).
        transport=ShardedTransport(max_connections=settings.callback_concurrency),
        timeout=httpx.Timeout(settings.callback_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
    )


def build_callback_worker(
    settings: Settings, pool: asyncpg.Pool, http: httpx.AsyncClient
) -> CallbackWorker | None:
    """The status-callback worker, or None (logged) without a signing secret: callbacks are
    never sent unsigned, so they stay queued until one is configured."""
    policy = CallbackPolicy.from_settings(settings)
    if not policy.enabled:
        logger.warning(
            "status callbacks are off: SMSGW_CALLBACK_SIGNING_SECRETS is not set "
            "(messages with a callback_url are refused)"
        )
        return None
    config = CallbackWorkerConfig(
        concurrency=settings.callback_concurrency,
        per_host=settings.callback_per_host_concurrency,
        batch_size=settings.callback_batch_size,
        # A claim must outlive the POST (its timeout) and the recording that follows it.
        lease_seconds=settings.callback_timeout_seconds + 30.0,
        poll_interval=settings.callback_poll_seconds,
    )
    return CallbackWorker(pool, CallbackDeliverer(pool, http, policy, config.worker_id), config)


def dlr_callback_url(settings: Settings, path_secret: str | None) -> str | None:
    """The ``callback_url`` batches carry: ``PUBLIC_BASE_URL/webhooks/sinch`` (plus
    ``/<path_secret>`` when one is in force), the one URL for everything Sinch posts. None with
    signing on: Sinch then calls the dashboard's URL and a batch cannot override it."""
    if not WebhookAccess.from_settings(settings).per_batch_callback:
        return None
    return webhook_url(settings.webhook_base_url, path_secret)


def webhook_path_secret(settings: Settings, pool: asyncpg.Pool) -> WebhookPathSecret:
    """The process's source of the path secret in force (configured, or generated once and
    kept in Postgres), read through ``pool``."""
    configured = _secret(settings.webhook_path_secret)
    return WebhookPathSecret(pool, WebhookAccess.from_settings(settings), configured)


def log_webhook_access(settings: Settings) -> None:
    """Says at start which authentication guards Sinch's webhooks; a WARNING when none does
    because SMSGW_WEBHOOK_AUTH=none says so (every start, so it is not forgotten)."""
    access = WebhookAccess.from_settings(settings)
    if access.is_open and access.open_by_choice:
        logger.warning(
            "Sinch webhooks accept unauthenticated calls (SMSGW_WEBHOOK_AUTH=none): anyone "
            "who reaches this gateway can post delivery reports and opt numbers out"
        )
        return
    logger.info("Sinch webhook authentication: %s", access.describe())


def describe_sinch_mode(settings: Settings) -> str:
    """One line for the banner and ``/readyz``: where messages go."""
    if settings.uses_simulator:
        return (
            f"SIMULATOR at {_simulator_url(settings)}: no Sinch credentials are configured, "
            "nothing reaches a real phone"
        )
    return f"Sinch, region {settings.sinch_region} ({settings.sinch_auth.replace('_', ' ')})"


def build_sinch_client(
    settings: Settings, http: httpx.AsyncClient, *, retry_policy: RetryPolicy | None = None
) -> SinchClient:
    """A Sinch client on the pooled ``http`` client. The dispatcher passes a policy without
    retries: it reschedules failed sends itself, with backoff, in the outbox."""
    observer = PrometheusSinchObserver()
    if settings.uses_simulator:
        return SinchClient.for_api_token(
            http,
            service_plan_id=settings.sinch_service_plan_id or SIMULATOR_PLAN_ID,
            api_token=_secret(settings.sinch_api_token) or SIMULATOR_TOKEN,
            region=settings.sinch_region,
            base_url=_simulator_url(settings),
            observer=observer,
            retry_policy=retry_policy,
            request_id_factory=_request_id,
        )
    if settings.sinch_auth == "oauth2":
        assert settings.sinch_project_id is not None
        assert settings.sinch_key_id is not None
        return SinchClient.for_oauth2(
            http,
            project_id=settings.sinch_project_id,
            key_id=settings.sinch_key_id,
            key_secret=_secret(settings.sinch_key_secret) or "",
            region=settings.sinch_region,
            base_url=settings.sinch_base_url,
            token_url=settings.sinch_oauth2_token_url,
            observer=observer,
            retry_policy=retry_policy,
            request_id_factory=_request_id,
        )
    assert settings.sinch_service_plan_id is not None
    return SinchClient.for_api_token(
        http,
        service_plan_id=settings.sinch_service_plan_id,
        api_token=_secret(settings.sinch_api_token) or "",
        region=settings.sinch_region,
        base_url=settings.sinch_base_url,
        observer=observer,
        retry_policy=retry_policy,
        request_id_factory=_request_id,
    )


def _simulator_url(settings: Settings) -> str:
    return settings.sinch_base_url or f"http://127.0.0.1:{settings.simulator_port}"


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


def _request_id() -> str:
    """Our request id travels to Sinch, so one id follows a message through both systems."""
    return request_id_var.get() or uuid.uuid4().hex


def simulator_url(settings: Settings) -> str:
    """Where the gateway sends when it uses the simulator (``settings.uses_simulator``)."""
    return _simulator_url(settings)
