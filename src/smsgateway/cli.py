"""The ``smsgateway`` command: serve and migrate (more verbs arrive with their capabilities)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO, TypeVar

import asyncpg
import uvicorn
from pydantic import SecretStr, ValidationError

from smsgateway import __version__
from smsgateway.observability.logging import configure_logging, uvicorn_log_config
from smsgateway.settings import Settings, describe_settings_error
from smsgateway.store.embedded import EmbeddedPostgresUnavailableError, start_embedded_postgres

EXIT_CONFIG_ERROR = 2
T = TypeVar("T")


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the command line and runs one verb; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in describe_settings_error(exc):
            sys.stderr.write(line + "\n")
        return EXIT_CONFIG_ERROR
    overrides = {
        key: value
        for key in ("host", "port", "workers")
        if (value := getattr(args, key, None)) is not None
    }
    settings = settings.model_copy(update=overrides)
    configure_logging(settings.log_level)
    try:
        result: int = args.run(settings, args)
    except EmbeddedPostgresUnavailableError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsgateway", description=__doc__)
    parser.add_argument("--version", action="version", version=f"smsgateway {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True)

    serve = verbs.add_parser("serve", help="run the HTTP gateway")
    serve.add_argument("--host", help="interface to listen on (SMSGW_HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (PORT)")
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (SMSGW_WORKERS)")
    serve.add_argument(
        "--migrate", action="store_true", help="apply pending migrations before serving"
    )
    serve.set_defaults(run=_serve)

    migrate = verbs.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=_migrate)

    apikey = verbs.add_parser("apikey", help="create, list or revoke API keys")
    apikey_verbs = apikey.add_subparsers(dest="apikey_verb", required=True)
    create = apikey_verbs.add_parser("create", help="create a key; it is shown once")
    create.add_argument("--name", required=True, help="a unique name for the key")
    create.add_argument("--tenant", help="whose messages the key sees (default: the name)")
    create.add_argument("--rate", help="its own rate limit, e.g. 600/minute")
    create.set_defaults(run=_apikey_create)
    listing = apikey_verbs.add_parser("list", help="list keys (prefixes only)")
    listing.set_defaults(run=_apikey_list)
    revoke = apikey_verbs.add_parser("revoke", help="revoke a key by name or prefix")
    revoke.add_argument("key", help="the key's name or visible prefix")
    revoke.set_defaults(run=_apikey_revoke)
    return parser


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    embedded = settings.uses_embedded_database
    with _database(settings) as settings:
        if args.migrate:
            _apply_migrations(settings)
        development_key = _development_key(settings) if embedded and args.migrate else None
        _print_banner(settings, sys.stdout, embedded=embedded, development_key=development_key)
        _run_uvicorn(settings)
    return 0


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    with _database(settings) as settings:
        revision = _apply_migrations(settings)
    sys.stdout.write(f"database schema at {revision}\n")
    return 0


def _apikey_create(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.api_keys import InvalidRateLimitError, create_api_key
    from smsgateway.store.api_keys import ApiKeyNameTakenError

    try:
        created = _with_pool(
            settings,
            lambda pool: create_api_key(
                pool, name=args.name, tenant=args.tenant, rate_limit=args.rate
            ),
        )
    except InvalidRateLimitError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_CONFIG_ERROR
    except ApiKeyNameTakenError:
        sys.stderr.write(f"error: a key named {args.name!r} exists already\n")
        return 1
    record = created.record
    sys.stdout.write(
        f"{created.key}\n"
        f"# name={record.name} tenant={record.tenant} prefix={record.prefix}"
        f" rate={record.rate_limit or 'default'}\n"
        "# This is the only time the key is shown; it is stored as a hash.\n"
    )
    return 0


def _apikey_list(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.services.api_keys import list_api_keys

    for record in _with_pool(settings, list_api_keys):
        state = "revoked" if record.revoked_at else "active"
        sys.stdout.write(
            f"{record.prefix}…  {record.name:<20} tenant={record.tenant:<16}"
            f" rate={record.rate_limit or 'default':<12} {state}"
            f"  created {record.created_at:%Y-%m-%d %H:%M}\n"
        )
    return 0


def _apikey_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.api_keys import revoke_api_key

    record = _with_pool(settings, lambda pool: revoke_api_key(pool, args.key))
    if record is None:
        sys.stderr.write(f"error: no key named or prefixed {args.key!r}\n")
        return 1
    sys.stdout.write(f"revoked {record.prefix}… ({record.name}); it stops working within 30 s\n")
    return 0


def _development_key(settings: Settings) -> str | None:
    from smsgateway.services.api_keys import ensure_development_key

    created = _with_pool(settings, ensure_development_key)
    return None if created is None else created.key


def _with_pool(settings: Settings, use: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Runs one async store operation from the command line, inside its own event loop."""

    async def run() -> T:
        from smsgateway.store.pool import create_pool

        with _database(settings) as configured:
            assert configured.database_url is not None
            pool = await create_pool(
                configured.database_url.get_secret_value(),
                min_size=0,
                max_size=2,
                command_timeout=configured.db_command_timeout_seconds,
                connect_timeout=configured.db_connect_timeout_seconds,
            )
            try:
                return await use(pool)
            finally:
                await pool.close()

    return asyncio.run(run())


@contextmanager
def _database(settings: Settings) -> Iterator[Settings]:
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


def _apply_migrations(settings: Settings) -> str | None:
    from smsgateway.store.schema import head_revision, upgrade_to_head

    assert settings.database_url is not None
    upgrade_to_head(settings.migrations_dir, settings.database_url.get_secret_value())
    return head_revision(settings.migrations_dir)


def _run_uvicorn(settings: Settings) -> None:
    log_config = uvicorn_log_config(settings.log_level)
    if settings.workers == 1:
        from smsgateway.app import create_app

        config = uvicorn.Config(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=log_config,
            access_log=False,
        )
        _GracefulServer(config).run()
        return
    with _multiprocess_metrics_dir():
        os.environ.update(
            {"SMSGW_HOST": settings.host, "PORT": str(settings.port), "SMSGW_WORKERS": "1"}
        )
        uvicorn.run(
            "smsgateway.app:app_from_environment",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=log_config,
            access_log=False,
        )


class _GracefulServer(uvicorn.Server):
    """Shuts down on SIGINT or SIGTERM and returns, so that the embedded Postgres is stopped.

    Stock uvicorn re-raises the signal after its graceful shutdown; SIGTERM's default action
    would then end the process before our ``finally`` could stop the database.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


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


def _print_banner(
    settings: Settings, out: TextIO, *, embedded: bool, development_key: str | None
) -> None:
    from smsgateway.app import describe_sinch_mode

    base = f"http://{settings.host}:{settings.port}"
    database = f"embedded Postgres in {settings.data_dir}/pgdata" if embedded else "DATABASE_URL"
    out.write(
        "\n"
        f"  smsgateway {__version__} listening on {base}\n"
        f"  API docs:   {base}/docs  (ReDoc: {base}/redoc)\n"
        f"  Metrics:    {base}/metrics   Ready: {base}/readyz\n"
        f"  Database:   {database}\n"
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
