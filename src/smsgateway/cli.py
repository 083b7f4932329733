"""The ``smsgateway`` command: serve, worker, check, webhooks, simulator, migrate, apikey,
segments, callback-secret; each verb calls one function."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import sys
from collections.abc import Sequence

from pydantic import ValidationError
from pydantic_settings import SettingsError

from smsgateway import __version__
from smsgateway.domain.standard_webhooks import SigningSecret
from smsgateway.observability.logging import configure_logging
from smsgateway.settings import Settings, describe_settings_error
from smsgateway.store.embedded import EmbeddedPostgresUnavailableError
from smsgateway.store.errors import DatabaseUnreachableError, SchemaNotMigratedError

EXIT_CONFIG_ERROR = 2
EXIT_CHECK_FAILED = 1

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Parses the command line and runs one verb; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verb == "callback-secret":
        # Reads no configuration: it is how a refused callback secret setting gets fixed.
        return _callback_secret(args)
    # `check` reports a bad setting as a failed check (exit 1) rather than as a refusal.
    checking = args.verb == "check"
    refused, prefix = (
        (EXIT_CHECK_FAILED, "fail  settings: ") if checking else (EXIT_CONFIG_ERROR, "")
    )
    out = sys.stdout if checking else sys.stderr
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in describe_settings_error(exc):
            out.write(prefix + line + "\n")
        return refused
    except SettingsError as exc:
        out.write(f"{prefix}configuration error: {exc}\n")
        return refused
    overrides = {
        key: value
        for key in ("host", "port", "workers")
        if (value := getattr(args, key, None)) is not None
    }
    settings = settings.model_copy(update=overrides)
    configure_logging(settings.log_level)
    if getattr(args, "goes_live", False) and not _may_go_live(settings):
        return EXIT_CONFIG_ERROR
    try:
        result: int = args.run(settings, args)
    except (
        EmbeddedPostgresUnavailableError,
        DatabaseUnreachableError,
        SchemaNotMigratedError,
    ) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return result


def _may_go_live(settings: Settings) -> bool:
    """The go-live rules for ``serve`` and ``worker``: one line on stderr and False when they
    must not start; a warning logged when no message could get a sender."""
    from smsgateway.services.go_live import sender_warning, start_up_refusal

    refusal = start_up_refusal(settings)
    if refusal is not None:
        sys.stderr.write(refusal + "\n")
        return False
    warning = sender_warning(settings)
    if warning is not None:
        logger.warning(warning)
    return True


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
    serve.set_defaults(run=_serve, goes_live=True)

    worker = verbs.add_parser(
        "worker", help="dispatch the outbox to Sinch without serving HTTP (scale-out)"
    )
    worker.set_defaults(run=_worker, goes_live=True)

    check = verbs.add_parser(
        "check",
        help="check the configuration, the database and (with real credentials) one "
        "harmless authenticated call to Sinch; exit 1 if a check failed",
    )
    check.set_defaults(run=_check)

    segments = verbs.add_parser(
        "segments", help="print a message's encoding and part count as JSON (stdin or --text)"
    )
    segments.add_argument("--text", help="the message; without it, stdin is read")
    segments.add_argument("--parts", action="store_true", help="include the text of each part")
    segments.add_argument(
        "--smart-encoding", action="store_true", help="replace look-alikes to stay in GSM-7"
    )
    segments.set_defaults(run=_segments)

    simulator = verbs.add_parser(
        "simulator",
        help="run the built-in Sinch simulator",
        description="A fake Sinch SMS REST API for your own Sinch-based apps. Each option can "
        "also come from the environment variable shown (the flag wins); without any, it serves "
        "the built-in plan simulator-plan with the token simulator-token.",
    )
    simulator.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    simulator.add_argument("--port", type=int, help="port (SMSGW_SIMULATOR_PORT, 8001)")
    _simulator_option(simulator, "--service-plan-id", "the service plan id the API answers for")
    _simulator_option(simulator, "--api-token", "that plan's API token (Authorization: Bearer)")
    _simulator_option(
        simulator,
        "--callback-url",
        "the plan's callback URL: delivery reports of batches without their own callback_url, "
        "and inbound messages, are POSTed there",
    )
    _simulator_option(
        simulator,
        "--default-from",
        "the plan's default originator; without it a batch without `from` ends Aborted (410)",
    )
    _simulator_option(
        simulator, "--signing-secret", "HMAC-sign every callback with this secret, as Sinch does"
    )
    _simulator_option(simulator, "--project-id", "OAuth2: the project id the API answers for")
    _simulator_option(simulator, "--key-id", "OAuth2: the access key id (client id)")
    _simulator_option(simulator, "--key-secret", "OAuth2: the access key secret")
    _simulator_option(
        simulator, "--inbound-url", "where injected inbound messages go instead of --callback-url"
    )
    _simulator_option(simulator, "--seed", "makes each recipient's outcome repeatable", kind=int)
    _simulator_option(
        simulator, "--delivery-delay", "seconds from send to the final report", kind=float
    )
    _simulator_option(
        simulator,
        "--callback-retry-base",
        "seconds before a failed callback's first retry, doubling after (Sinch: 5)",
        kind=float,
    )
    simulator.set_defaults(run=_simulator)

    webhooks = verbs.add_parser(
        "webhooks", help="print the webhook URL and credentials to configure at Sinch"
    )
    webhooks.set_defaults(run=_webhooks)

    verbs.add_parser(
        "callback-secret",
        help="print a new status-callback signing secret (whsec_..., 32 random bytes) for "
        "SMSGW_CALLBACK_SIGNING_SECRETS",
    )

    migrate = verbs.add_parser("migrate", help="apply pending database migrations")
    migrate.set_defaults(run=_migrate)

    apikey = verbs.add_parser("apikey", help="create, list or revoke API keys")
    apikey_verbs = apikey.add_subparsers(dest="apikey_verb", required=True)
    create = apikey_verbs.add_parser("create", help="create a key; it is shown once")
    create.add_argument("--name", required=True, help="a unique name for the key")
    create.add_argument("--tenant", help="whose messages the key sees (default: the name)")
    create.add_argument("--rate", help="its own rate limit, e.g. 600/minute")
    create.add_argument(
        "--callback-url",
        help="where status callbacks go for messages that name no callback_url (http/https)",
    )
    create.set_defaults(run=_apikey_create)
    listing = apikey_verbs.add_parser("list", help="list keys (prefixes only)")
    listing.set_defaults(run=_apikey_list)
    revoke = apikey_verbs.add_parser("revoke", help="revoke a key by name or prefix")
    revoke.add_argument("key", help="the key's name or visible prefix")
    revoke.set_defaults(run=_apikey_revoke)
    return parser


def _callback_secret(_: argparse.Namespace) -> int:
    sys.stdout.write(SigningSecret(secrets.token_bytes(32)).serialise() + "\n")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.serving import ServeOptions, serve

    serve(settings, ServeOptions(migrate=args.migrate), sys.stdout)
    return 0


def _worker(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.serving import run_worker

    run_worker(settings)
    return 0


def _check(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.serving import run_check

    report = run_check(settings)
    for line in report.lines():
        sys.stdout.write(line + "\n")
    return EXIT_CHECK_FAILED if report.failed else 0


def _migrate(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.serving import apply_migrations, database

    with database(settings) as configured:
        revision = apply_migrations(configured)
    sys.stdout.write(f"database schema at {revision}\n")
    return 0


def _segments(_: Settings, args: argparse.Namespace) -> int:
    from smsgateway.domain.compose import MAX_BODY_CHARACTERS, prepare_body
    from smsgateway.domain.errors import DomainError

    text = args.text if args.text is not None else sys.stdin.read()
    if args.text is None and text.endswith("\n"):
        text = text[:-1]  # the newline that ends a piped line is not part of the message
    try:
        prepared = prepare_body(
            text,
            smart_encoding=args.smart_encoding,
            max_segments=255,
            max_characters=MAX_BODY_CHARACTERS * 10,
        )
    except DomainError as exc:
        sys.stderr.write(json.dumps({"code": exc.code, "message": exc.message}) + "\n")
        return 1
    segmentation = prepared.segmentation
    result: dict[str, object] = {
        "encoding": segmentation.encoding.value,
        "segments": segmentation.segments,
        "characters": segmentation.characters,
        "units": segmentation.units,
    }
    if args.smart_encoding:
        result["text"] = prepared.text
        result["replacements"] = [
            {"position": r.position, "original": r.original, "replacement": r.replacement}
            for r in prepared.replacements
        ]
    if args.parts:
        result["parts"] = list(segmentation.split_parts())
    sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0


# Options given in seconds, whose settings say so in their names.
_SECONDS_OPTIONS = {
    "delivery_delay": "delivery_delay_s",
    "callback_retry_base": "callback_retry_base_s",
}


def _simulator_option(
    parser: argparse.ArgumentParser, flag: str, help_text: str, kind: type = str
) -> None:
    """One `smsgateway simulator` option, its help naming the variable it also comes from."""
    from smsgateway.simulator.config import OPTION_ENVIRONMENT

    name = flag.removeprefix("--").replace("-", "_")
    name = _SECONDS_OPTIONS.get(name, name)
    parser.add_argument(
        flag,
        dest=name,
        type=kind,
        metavar=flag.removeprefix("--").replace("-", "_").upper(),
        help=f"{help_text} ({OPTION_ENVIRONMENT[name]})",
    )


def _simulator(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop

    from smsgateway.simulator import serve_simulator
    from smsgateway.simulator.config import OPTION_ENVIRONMENT, AccountOptions

    given = {name: getattr(args, name) for name in OPTION_ENVIRONMENT}
    values = {
        name: value if value is not None else os.environ.get(OPTION_ENVIRONMENT[name]) or None
        for name, value in given.items()
    }
    try:
        config = AccountOptions.model_validate(values).to_config()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            sys.stderr.write(f"simulator: {where + ': ' if where else ''}{message}\n")
        return EXIT_CONFIG_ERROR
    port = args.port or settings.simulator_port
    with contextlib.suppress(KeyboardInterrupt):
        # uvloop, as uvicorn itself would pick: it shares the machine with what it serves.
        uvloop.run(serve_simulator(config, host=args.host, port=port, log_level="warning"))
    return 0


def _webhooks(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.components import dlr_callback_url
    from smsgateway.services.webhook_access import (
        PathSecretSource,
        WebhookAccess,
        load_generated_path_secret,
        webhook_url,
    )
    from smsgateway.serving import with_pool
    from smsgateway.store.errors import DatabaseUnavailableError

    access = WebhookAccess.from_settings(settings)
    if access.path_secret is PathSecretSource.GENERATED:
        # The same row every gateway process reads (created now if none was yet).
        try:
            path_secret: str | None = with_pool(settings, load_generated_path_secret)
        except DatabaseUnavailableError:
            sys.stderr.write(
                "error: the generated webhook path secret is kept in Postgres, which cannot "
                "be reached (check DATABASE_URL)\n"
            )
            return 1
    elif settings.webhook_path_secret is not None:
        path_secret = settings.webhook_path_secret.get_secret_value()
    else:
        path_secret = None
    url = webhook_url(settings.webhook_base_url, path_secret)
    lines = [
        f"Authentication in force: {access.describe()}",
        "",
        "Callback URL to paste into the Sinch dashboard (SMS > service plan > Callback URL);",
        "it receives every kind: delivery reports and inbound (MO) messages:",
        f"  {url}",
    ]
    if access.basic_user is not None and settings.webhook_basic_password is not None:
        lines += [
            "HTTP Basic credentials to have Sinch provision on that URL:",
            f"  user: {access.basic_user}",
            f"  password: {settings.webhook_basic_password.get_secret_value()}",
        ]
    if access.signing:
        lines.append(
            "HMAC signing: expected (x-sinch-webhook-signature, checked with "
            "SMSGW_WEBHOOK_SIGNING_SECRET); Sinch enables it on the account."
        )
    else:
        lines.append("HMAC signing: not expected (SMSGW_WEBHOOK_SIGNING_SECRET is not set).")
    per_batch = dlr_callback_url(settings, path_secret)
    lines.append(
        f"Each batch's callback_url: {per_batch}"
        if per_batch is not None
        else "Each batch's callback_url: none (with signing on, Sinch calls the dashboard URL)."
    )
    if not settings.public_base_url:
        lines.append(
            "Note: PUBLIC_BASE_URL is not set, so the URL above is this machine's own address; "
            "Sinch must be able to reach it."
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _apikey_create(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.api_keys import (
        InvalidCallbackUrlError,
        InvalidRateLimitError,
        create_api_key,
    )
    from smsgateway.serving import with_pool
    from smsgateway.store.api_keys import ApiKeyNameTakenError

    try:
        created = with_pool(
            settings,
            lambda pool: create_api_key(
                pool,
                name=args.name,
                tenant=args.tenant,
                rate_limit=args.rate,
                callback_url=args.callback_url,
                allow_private_callbacks=settings.callback_private_targets_allowed,
            ),
        )
    except (InvalidRateLimitError, InvalidCallbackUrlError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_CONFIG_ERROR
    except ApiKeyNameTakenError:
        sys.stderr.write(f"error: a key named {args.name!r} exists already\n")
        return 1
    record = created.record
    sys.stdout.write(
        f"{created.key}\n"
        f"# name={record.name} tenant={record.tenant} prefix={record.prefix}"
        f" rate={record.rate_limit or 'default'}"
        f" callbacks={record.default_callback_url or 'per message'}\n"
        "# This is the only time the key is shown; it is stored as a hash.\n"
    )
    return 0


def _apikey_list(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.services.api_keys import list_api_keys
    from smsgateway.serving import with_pool

    for record in with_pool(settings, list_api_keys):
        state = "revoked" if record.revoked_at else "active"
        sys.stdout.write(
            f"{record.prefix}…  {record.name:<20} tenant={record.tenant:<16}"
            f" rate={record.rate_limit or 'default':<12} {state}"
            f"  created {record.created_at:%Y-%m-%d %H:%M}\n"
        )
    return 0


def _apikey_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.api_keys import revoke_api_key
    from smsgateway.serving import with_pool

    record = with_pool(settings, lambda pool: revoke_api_key(pool, args.key))
    if record is None:
        sys.stderr.write(f"error: no key named or prefixed {args.key!r}\n")
        return 1
    sys.stdout.write(f"revoked {record.prefix}… ({record.name}); it stops working within 30 s\n")
    return 0
