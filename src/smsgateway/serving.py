"""What ``smsgateway serve`` runs: the embedded Postgres and the Sinch simulator when needed,
migrations, then uvicorn; and, on SIGINT or SIGTERM, a clean stop of all of them.

This is process supervision only; the application itself is built by ``app.create_app``.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import asyncpg
import httpx
import uvicorn
import uvloop
from pydantic import SecretStr

from smsgateway import __version__
from smsgateway.http_server import (
    balances_own_sockets,
    freeze_startup_heap,
    run_single,
    run_workers,
    stop_with_supervisor,
)
from smsgateway.observability.logging import uvicorn_log_config
from smsgateway.ports import PortInUseError, ensure_port_free
from smsgateway.settings import Settings
from smsgateway.store.embedded import start_embedded_postgres

if TYPE_CHECKING:
    from smsgateway.services.config_check import CheckReport

T = TypeVar("T")
logger = logging.getLogger(__name__)

_SIMULATOR_START_SECONDS = 30.0


# What the simulator's /_admin/health names itself (simulator/admin.py, HEALTH_SERVICE).
_SIMULATOR_HEALTH_SERVICE = "smsgateway-simulator"


class SimulatorStartError(RuntimeError):
    """The simulator process did not answer in time."""


class NoSinchError(RuntimeError):
    """``smsgateway worker`` has neither Sinch credentials nor a simulator to send to."""


@dataclass(frozen=True)
class ServeOptions:
    migrate: bool


def serve(settings: Settings, options: ServeOptions, out: TextIO) -> None:
    """Runs the gateway until SIGINT/SIGTERM, with whatever it needs started beside it."""
    # Before anything starts: a port in use is refused at once, not after the database is up.
    ensure_port_free(settings.host, settings.port)
    embedded = settings.uses_embedded_database
    with database(settings) as settings, sinch_endpoint(settings) as settings:
        if options.migrate:
            apply_migrations(settings)
        development_key = _development_key(settings) if embedded and options.migrate else None
        print_banner(settings, out, embedded=embedded, development_key=development_key)
        run_uvicorn(settings)


@contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Yields settings with a database URL, starting the embedded Postgres when none is set."""
    if not settings.uses_embedded_database:
        yield settings
        return
    embedded = start_embedded_postgres(settings.data_dir)
    # Worker processes read their settings from the environment.
    os.environ["DATABASE_URL"] = embedded.dsn
    try:
        yield settings.model_copy(update={"database_url": SecretStr(embedded.dsn)})
    finally:
        embedded.stop()


@contextmanager
def sinch_endpoint(settings: Settings) -> Iterator[Settings]:
    """Yields settings pointing at Sinch, or at a simulator process started here for them (or
    at ours already running on the simulator port, started by another gateway)."""
    if not settings.uses_simulator:
        yield settings
        return
    from smsgateway.components import SIMULATOR_DEFAULT_FROM
    from smsgateway.services.webhook_access import webhook_url

    base_url = f"http://127.0.0.1:{settings.simulator_port}"
    if simulator_answers(base_url):
        logger.warning("using the simulator already running at %s", base_url)
        yield _pointed_at_simulator(settings, base_url)
        return
    try:
        ensure_port_free("127.0.0.1", settings.simulator_port)
    except PortInUseError as exc:
        raise PortInUseError(
            f"the simulator's port {settings.simulator_port} is taken by a program that is not "
            "the smsgateway simulator; set SMSGW_SIMULATOR_PORT to a free port"
        ) from exc
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "smsgateway",
            "simulator",
            "--port",
            str(settings.simulator_port),
            "--default-from",
            SIMULATOR_DEFAULT_FROM,
            # The plan's callback URL, as an operator sets it in Sinch's dashboard: the one
            # webhook that takes every kind (injected inbound messages go there too).
            "--callback-url",
            webhook_url(settings.webhook_base_url, None),
        ],
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_for_simulator(base_url, process)
        yield _pointed_at_simulator(settings, base_url)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pointed_at_simulator(settings: Settings, base_url: str) -> Settings:
    from smsgateway.components import SIMULATOR_PLAN_ID, SIMULATOR_TOKEN

    # Worker processes read their settings from the environment.
    os.environ.update(
        {
            "SINCH_BASE_URL": base_url,
            "SINCH_SERVICE_PLAN_ID": SIMULATOR_PLAN_ID,
            "SINCH_API_TOKEN": SIMULATOR_TOKEN,
            "SMSGW_SINCH_SIMULATOR": "on",
        }
    )
    return settings.model_copy(
        update={
            "sinch_base_url": base_url,
            "sinch_service_plan_id": SIMULATOR_PLAN_ID,
            "sinch_api_token": SecretStr(SIMULATOR_TOKEN),
            "sinch_simulator": "on",
        }
    )


def simulator_answers(base_url: str) -> bool:
    """Whether the smsgateway simulator, not just any HTTP server, answers at ``base_url``."""
    try:
        response = httpx.get(f"{base_url}/_admin/health", timeout=0.5)
        health = response.json()
    except (httpx.HTTPError, ValueError):
        return False
    return (
        response.status_code == 200
        and isinstance(health, dict)
        and health.get("service") == _SIMULATOR_HEALTH_SERVICE
    )


def run_worker(settings: Settings, out: TextIO) -> None:
    """Dispatches the outbox and delivers status callbacks until SIGINT or SIGTERM; then
    finishes or releases. No API: with ``SMSGW_WORKER_METRICS_PORT`` it serves ``/metrics``
    and health there, the port bound first so that a taken one refuses the start
    (``EndpointPortInUseError``). Without Sinch credentials it sends to a simulator that must
    be running already (``serve`` starts one), and says so on ``out``."""
    from smsgateway.observability.worker_endpoint import bind_endpoint_socket

    # The port first: a taken one is refused before anything else is said or started.
    endpoint_socket = (
        None
        if settings.worker_metrics_port is None
        else bind_endpoint_socket(settings.host, settings.worker_metrics_port)
    )
    try:
        if settings.uses_simulator:
            from smsgateway.components import describe_sinch_mode, simulator_url

            base_url = simulator_url(settings)
            if not simulator_answers(base_url):
                raise NoSinchError(
                    "no Sinch credentials are set (SINCH_SERVICE_PLAN_ID and SINCH_API_TOKEN) "
                    f"and no smsgateway simulator answers at {base_url}; set them, or start "
                    "`smsgateway serve` or `smsgateway simulator` there first"
                )
            out.write(f"worker: {describe_sinch_mode(settings)}\n")
            out.flush()
        with database(settings) as configured:
            uvloop.run(_dispatch_until_stopped(configured, endpoint_socket))
    finally:
        if endpoint_socket is not None:
            endpoint_socket.close()


async def _dispatch_until_stopped(
    settings: Settings, endpoint_socket: socket.socket | None = None
) -> None:
    from smsgateway.components import (
        build_callback_http_client,
        build_callback_worker,
        build_http_client,
        build_reconcile_worker,
        build_sinch_client,
        build_wakeup_listener,
        create_dispatch_pool,
        dispatch_config,
        log_webhook_access,
        webhook_path_secret,
    )
    from smsgateway.observability.worker_endpoint import WorkerEndpoint
    from smsgateway.services.readiness import check_readiness
    from smsgateway.services.retention import RetentionPolicy, RetentionSweeper
    from smsgateway.sinch import NO_RETRY
    from smsgateway.store.schema import head_revision
    from smsgateway.workers.outbox import OutboxWorker
    from smsgateway.workers.retention import RetentionWorker

    pool = await create_dispatch_pool(settings)
    http = build_http_client(settings)
    log_webhook_access(settings)
    worker = OutboxWorker(
        pool,
        build_sinch_client(settings, http, retry_policy=NO_RETRY),
        dispatch_config(settings, webhook_path_secret(settings, pool)),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    callback_http = build_callback_http_client(settings)
    callback_worker = build_callback_worker(settings, pool, callback_http)
    retention_worker = RetentionWorker(
        RetentionSweeper(pool, RetentionPolicy.from_settings(settings)),
        settings.retention_interval_seconds,
    )
    listener = build_wakeup_listener(settings, worker, callback_worker)
    listening = None if listener is None else asyncio.create_task(listener.run())
    running = asyncio.create_task(worker.run())
    calling_back = None if callback_worker is None else asyncio.create_task(callback_worker.run())
    sweeping = asyncio.create_task(retention_worker.run())
    reconcile_worker = build_reconcile_worker(settings, pool, http)
    reconciling = None if reconcile_worker is None else asyncio.create_task(reconcile_worker.run())
    endpoint = None
    if endpoint_socket is not None:
        schema_head = head_revision(settings.migrations_dir)

        async def ready() -> str | None:
            readiness = await check_readiness(pool, schema_head, settings.readiness_timeout_seconds)
            return None if readiness.ready else readiness.reason

        endpoint = WorkerEndpoint(endpoint_socket, ready)
        await endpoint.start()
    logger.info("outbox worker started", extra={"worker": worker.config.worker_id})
    try:
        await stop.wait()
    finally:
        if endpoint is not None:
            await endpoint.stop()
        if listener is not None and listening is not None:
            await listener.stop()
            await listening
        if reconcile_worker is not None and reconciling is not None:
            await reconcile_worker.stop(settings.dispatch_stop_seconds)
            await reconciling
        await retention_worker.stop(settings.dispatch_stop_seconds)
        await sweeping
        if callback_worker is not None and calling_back is not None:
            await callback_worker.stop(settings.dispatch_stop_seconds)
            await calling_back
        await callback_http.aclose()
        await worker.stop(settings.dispatch_stop_seconds)
        await running
        await http.aclose()
        await pool.close()
        logger.info("outbox worker stopped", extra={"worker": worker.config.worker_id})


def _wait_for_simulator(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _SIMULATOR_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SimulatorStartError(f"the simulator exited with {process.returncode}")
        if simulator_answers(base_url):
            return
        time.sleep(0.05)
    raise SimulatorStartError(f"the simulator did not answer at {base_url} in time")


def apply_migrations(settings: Settings) -> str | None:
    from smsgateway.store.schema import head_revision, upgrade_to_head

    assert settings.database_url is not None
    upgrade_to_head(settings.migrations_dir, settings.database_url.get_secret_value())
    return head_revision(settings.migrations_dir)


def with_pool(settings: Settings, use: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Runs one async store operation from the command line, inside its own event loop."""

    async def run(configured: Settings) -> T:
        from smsgateway.store.errors import CONNECT_ERRORS, SchemaNotMigratedError, unreachable
        from smsgateway.store.pool import create_pool

        assert configured.database_url is not None
        dsn = configured.database_url.get_secret_value()
        pool = await create_pool(
            dsn,
            min_size=0,
            max_size=2,
            command_timeout=configured.db_command_timeout_seconds,
            connect_timeout=configured.db_connect_timeout_seconds,
        )
        try:
            return await use(pool)
        except CONNECT_ERRORS as exc:
            raise unreachable(dsn, exc) from exc
        except asyncpg.UndefinedTableError as exc:
            raise SchemaNotMigratedError(
                "the database has no gateway tables yet: run `smsgateway migrate` "
                "(or `smsgateway serve --migrate`) first"
            ) from exc
        finally:
            await pool.close()

    with database(settings) as configured:
        return asyncio.run(run(configured))


def run_check(settings: Settings) -> CheckReport:
    """``smsgateway check``: the configuration checks, with the parts they call built here
    (the database is started first when it is the embedded one)."""
    from smsgateway.components import build_http_client, build_sinch_client
    from smsgateway.services.config_check import check_configuration
    from smsgateway.services.webhook_access import PathSecretSource, WebhookAccess, webhook_url
    from smsgateway.sinch import NO_RETRY
    from smsgateway.store.schema import head_revision

    async def run(configured: Settings) -> CheckReport:
        http = build_http_client(configured)
        try:
            sinch = (
                None
                if configured.uses_simulator
                else build_sinch_client(configured, http, retry_policy=NO_RETRY)
            )
            # The URL to give Sinch, its path secret (configured, or generated and kept in
            # Postgres) always shown masked: a stand-in serves for the generated one.
            access = WebhookAccess.from_settings(configured)
            path_secret: str | None = None
            if access.path_secret is PathSecretSource.GENERATED:
                path_secret = "generated-and-kept-in-postgres"
            elif configured.webhook_path_secret is not None:
                path_secret = configured.webhook_path_secret.get_secret_value()
            return await check_configuration(
                configured,
                sinch=sinch,
                webhook_url=webhook_url(configured.webhook_base_url, path_secret),
                secrets=() if path_secret is None else (path_secret,),
                schema_head=head_revision(configured.migrations_dir),
            )
        finally:
            await http.aclose()

    with database(settings) as configured:
        return asyncio.run(run(configured))


def _development_key(settings: Settings) -> str | None:
    from smsgateway.services.api_keys import ensure_development_key

    created = with_pool(settings, ensure_development_key)
    return None if created is None else created.key


def run_uvicorn(settings: Settings) -> None:
    log_config = uvicorn_log_config(settings.log_level)
    dispatch_process = settings.dispatcher == "process"
    if settings.workers == 1 and not dispatch_process:
        from smsgateway.app import create_app

        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=log_config,
            access_log=False,
        )
        run_single(config)
        return
    with _multiprocess_metrics_dir():
        os.environ.update(
            {"SMSGW_HOST": settings.host, "PORT": str(settings.port), "SMSGW_WORKERS": "1"}
        )
        if dispatch_process:
            # The API workers leave the outbox to the dispatch process.
            os.environ["SMSGW_DISPATCHER"] = "off"
        if dispatch_process or balances_own_sockets():
            exit_code = run_workers(
                settings, log_config, _dispatch_process_main if dispatch_process else None
            )
            if exit_code:
                raise SystemExit(exit_code)
            return
        uvicorn.run(
            "smsgateway.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=log_config,
            access_log=False,
        )


def _dispatch_process_main(log_config: dict[str, Any], supervisor: int) -> None:
    """The dispatch process ``serve`` runs beside its API workers (``SMSGW_DISPATCHER=process``):
    what ``smsgateway worker`` runs, on the settings ``serve`` put in the environment; its
    metrics join the API workers' (one multiprocess directory), so ``/metrics`` shows them."""
    stop_with_supervisor(supervisor)
    import smsgateway.components  # noqa: F401  (its heap is to be frozen before dispatching)

    logging.config.dictConfig(log_config)
    freeze_startup_heap()
    uvloop.run(_dispatch_until_stopped(Settings()))


@contextmanager
def _multiprocess_metrics_dir() -> Iterator[None]:
    """Workers share metrics through files; the variable must exist before prometheus_client
    is imported in any of them, so it is set here, in the parent, before they start."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="smsgw-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


def print_banner(
    settings: Settings, out: TextIO, *, embedded: bool, development_key: str | None
) -> None:
    from smsgateway.components import describe_sinch_mode

    base = f"http://{settings.host}:{settings.port}"
    database_text = (
        f"embedded Postgres in {settings.data_dir}/pgdata" if embedded else "DATABASE_URL"
    )
    out.write(
        "\n"
        f"  smsgateway {__version__} listening on {base}\n"
        f"  API docs:   {base}/docs  (ReDoc: {base}/redoc)\n"
        f"  Metrics:    {base}/metrics   Ready: {base}/readyz\n"
        f"  Database:   {database_text}\n"
        f"  Sinch:      {describe_sinch_mode(settings)}\n"
        f"  Try:        curl -s {base}/readyz\n"
    )
    if development_key is not None:
        out.write(
            f"  Dev key:    {development_key}\n"
            "              (created on this first start and shown only now; more keys:\n"
            "               .venv/bin/smsgateway apikey create --name NAME)\n"
        )
    out.write("\n")
    out.flush()
