"""The application factory: routers, middleware, problem handlers and the lifespan's resources."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import BaseRoute

from smsgateway import __version__
from smsgateway.api import (
    callbacks,
    docs,
    events,
    health,
    inbound,
    legacy,
    messages,
    metrics,
    policies,
    problem_types,
    retention,
    webhooks,
)
from smsgateway.api.contract import install_contract
from smsgateway.api.deps import AppState
from smsgateway.api.middleware import (
    RequestContextMiddleware,
    RequestLimitsMiddleware,
)
from smsgateway.api.problems import install_problem_handlers
from smsgateway.api.report_lane import ReportLane
from smsgateway.api.send_lane import SEND_PATH, SendLane
from smsgateway.api.webhook_auth import WebhookGuard
from smsgateway.api.webhooks import SINCH_WEBHOOK_PATH
from smsgateway.components import (
    build_callback_http_client,
    build_callback_worker,
    build_http_client,
    build_reconcile_worker,
    build_sinch_client,
    build_velocity_counters,
    build_wakeup_listener,
    create_dispatch_pool,
    describe_sinch_mode,
    dispatch_config,
    log_webhook_access,
    webhook_path_secret,
)
from smsgateway.observability.metrics import is_multiprocess, mark_worker_dead
from smsgateway.observability.metrics import sample_worker_process as _sample_worker
from smsgateway.services.accept import AcceptService
from smsgateway.services.api_keys import ApiKeyAuthenticator
from smsgateway.services.callbacks import CallbackPolicy
from smsgateway.services.delivery_reports import DeliveryReportService
from smsgateway.services.drafting import MessagePolicy
from smsgateway.services.inbound import InboundService
from smsgateway.services.media_check import MediaCheck
from smsgateway.services.opt_outs import OptOutService
from smsgateway.services.protection import PolicyBook
from smsgateway.services.rate_limits import RateLimits
from smsgateway.services.retention import RetentionPolicy, RetentionSweeper
from smsgateway.services.sender_ownership import SenderOwnership
from smsgateway.services.sinch_callbacks import SinchCallbackService
from smsgateway.services.webhook_nonces import WebhookNonces
from smsgateway.settings import Settings
from smsgateway.sinch import NO_RETRY
from smsgateway.store.pool import create_pool
from smsgateway.store.schema import head_revision
from smsgateway.workers.outbox import OutboxWorker
from smsgateway.workers.retention import RetentionWorker

logger = logging.getLogger(__name__)

TITLE = "smsgateway"
_DESCRIPTION = """An async SMS gateway in front of the Sinch SMS REST API.

Every error answer is `application/problem+json` (RFC 9457) with a stable `code`.
Every response carries `X-Request-ID`; send your own to correlate logs."""
_PROCESS_SAMPLE_SECONDS = 5.0


class MissingDatabaseUrlError(RuntimeError):
    """``create_app`` needs a database URL; the CLI provides one in embedded mode."""


def create_app(settings: Settings, *, clock: Callable[[], float] = time.time) -> FastAPI:
    """Builds the gateway for ``settings``; nothing is opened until the lifespan starts.

    ``clock`` (Unix seconds) is what webhook signature timestamps are checked against.
    """
    if settings.database_url is None:
        raise MissingDatabaseUrlError(
            "DATABASE_URL is not set; run `smsgateway serve` (it starts the embedded database)"
        )
    schema_head = head_revision(settings.migrations_dir)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with _open_resources(settings, schema_head, clock) as state:
            yield {"app_state": state}

    app = FastAPI(
        title=TITLE,
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        # FastAPI's own OpenTelemetry hooks asked the environment for a tracer provider on every
        # request (~6 % of an accept's CPU); Prometheus at /metrics is what we export.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_problem_handlers(app)
    # Routes are matched in order, one by one: the busiest (sending, Sinch's callbacks) first.
    app.include_router(messages.router)
    app.include_router(policies.router)
    app.include_router(retention.router)
    app.include_router(webhooks.router)
    app.include_router(callbacks.router)
    app.include_router(events.router)
    app.include_router(inbound.router)
    app.include_router(legacy.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(problem_types.router)
    if settings.docs_enabled:
        docs.install_docs(app, title=TITLE)
    install_contract(app)
    if settings.send_lane == "on":
        app.add_middleware(
            SendLane,
            route=_route(messages.router, SEND_PATH, "POST"),
            handlers=app.exception_handlers,
        )
    if settings.report_lane == "on":
        app.add_middleware(
            ReportLane,
            route=_route(webhooks.router, SINCH_WEBHOOK_PATH, "POST"),
            secret_route=_route(webhooks.router, SINCH_WEBHOOK_PATH + "/{path_secret}", "POST"),
            handlers=app.exception_handlers,
        )
    # Added last is outermost: the request context wraps the body limit, so a 413 has an id.
    app.add_middleware(
        RequestLimitsMiddleware,
        max_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
    )
    app.add_middleware(RequestContextMiddleware)
    return app


def _route(router: APIRouter, path: str, method: str) -> BaseRoute:
    return next(
        route
        for route in router.routes
        if isinstance(route, APIRoute) and route.path == path and method in (route.methods or ())
    )


def app_from_environment() -> FastAPI:
    """The factory uvicorn workers call (``--factory``): settings from the environment."""
    return create_app(Settings())


@asynccontextmanager
async def _open_resources(
    settings: Settings, schema_head: str | None, clock: Callable[[], float]
) -> AsyncIterator[AppState]:
    assert settings.database_url is not None
    pool = await create_pool(
        settings.database_url.get_secret_value(),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        command_timeout=settings.db_command_timeout_seconds,
        connect_timeout=settings.db_connect_timeout_seconds,
    )
    http = build_http_client(settings)
    log_webhook_access(settings)
    path_secret = webhook_path_secret(settings, pool)
    policy = MessagePolicy.from_settings(settings)
    policies = PolicyBook(
        pool, policy.destinations, refresh_seconds=settings.policy_refresh_seconds
    )
    sampler = asyncio.create_task(_sample_process_periodically()) if is_multiprocess() else None
    # "process" is `serve`'s own layout (a dispatch process beside the API processes, which
    # it starts with "off"); an app built without `serve` dispatches itself rather than never.
    dispatch_pool = await create_dispatch_pool(settings) if settings.dispatcher != "off" else None
    worker = (
        OutboxWorker(
            dispatch_pool,
            build_sinch_client(settings, http, retry_policy=NO_RETRY),
            dispatch_config(settings, path_secret),
        )
        if dispatch_pool is not None
        else None
    )
    dispatching = asyncio.create_task(worker.run()) if worker is not None else None
    callback_http = build_callback_http_client(settings) if dispatch_pool is not None else None
    callback_worker = (
        build_callback_worker(settings, dispatch_pool, callback_http)
        if dispatch_pool is not None and callback_http is not None
        else None
    )
    calling_back = (
        asyncio.create_task(callback_worker.run()) if callback_worker is not None else None
    )
    listener = (
        build_wakeup_listener(settings, worker, callback_worker) if worker is not None else None
    )
    listening = asyncio.create_task(listener.run()) if listener is not None else None
    # The retention job runs where the dispatcher runs, on its pool.
    retention_worker = (
        RetentionWorker(
            RetentionSweeper(dispatch_pool, RetentionPolicy.from_settings(settings)),
            settings.retention_interval_seconds,
        )
        if dispatch_pool is not None
        else None
    )
    sweeping = asyncio.create_task(retention_worker.run()) if retention_worker is not None else None
    reconcile_worker = (
        build_reconcile_worker(settings, dispatch_pool, http) if dispatch_pool is not None else None
    )
    reconciling = asyncio.create_task(reconcile_worker.run()) if reconcile_worker else None
    delivery_reports = DeliveryReportService(pool, linger=settings.batch_linger_ms / 1000)
    inbound = InboundService(pool, settings.keywords, stop_scope=settings.stop_scope)
    media_check = MediaCheck.from_settings(settings) if settings.mms_check_media else None
    senders = SenderOwnership(pool, refresh_seconds=settings.policy_refresh_seconds)
    velocity = build_velocity_counters(settings)
    try:
        yield AppState(
            settings=settings,
            pool=pool,
            http=http,
            sinch=build_sinch_client(settings, http),
            authenticator=ApiKeyAuthenticator(pool),
            policy=policy,
            accept=AcceptService(
                pool,
                policy,
                policies=policies,
                time_zone=ZoneInfo(settings.spend_time_zone),
                media_check=media_check,
                senders=senders,
                velocity=velocity,
            ),
            policies=policies,
            senders=senders,
            rate_limits=RateLimits(settings.rate_limit, settings.rate_limit_storage_url),
            schema_head=schema_head,
            sinch_mode=describe_sinch_mode(settings),
            webhook_guard=WebhookGuard.from_settings(
                settings, path_secret, clock, WebhookNonces(pool).first_use
            ),
            delivery_reports=delivery_reports,
            inbound=inbound,
            opt_outs=OptOutService(pool),
            sinch_callbacks=SinchCallbackService(delivery_reports, inbound),
            callbacks=CallbackPolicy.from_settings(settings),
        )
    finally:
        if listener is not None and listening is not None:
            await listener.stop()
            await listening
        if reconcile_worker is not None and reconciling is not None:
            await reconcile_worker.stop(settings.dispatch_stop_seconds)
            await reconciling
        if retention_worker is not None and sweeping is not None:
            await retention_worker.stop(settings.dispatch_stop_seconds)
            await sweeping
        if callback_worker is not None and calling_back is not None:
            await callback_worker.stop(settings.dispatch_stop_seconds)
            await calling_back
        if callback_http is not None:
            await callback_http.aclose()
        if worker is not None and dispatching is not None:
            await worker.stop(settings.dispatch_stop_seconds)
            await dispatching
        if dispatch_pool is not None:
            await dispatch_pool.close()
        if media_check is not None:
            await media_check.aclose()
        await velocity.aclose()
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        await http.aclose()
        try:
            async with asyncio.timeout(settings.db_command_timeout_seconds):
                await pool.close()
        except TimeoutError:
            logger.warning("database pool did not close in time; terminating connections")
            pool.terminate()
        mark_worker_dead(os.getpid())


async def _sample_process_periodically() -> None:
    while True:
        _sample_worker()
        await asyncio.sleep(_PROCESS_SAMPLE_SECONDS)
