"""The ``smsgateway`` command: serve, worker, check, webhooks, simulator, migrate, apikey,
policy, retention, sender, tenant, segments, callback-secret; each verb calls one function."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import os
import secrets
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import ValidationError
from pydantic_settings import SettingsError

from smsgateway import __version__
from smsgateway.domain.standard_webhooks import SigningSecret
from smsgateway.observability.logging import configure_logging
from smsgateway.ports import PortInUseError
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
    refusal = _option_refusal(args)
    if refusal is not None:
        sys.stderr.write(refusal + "\n")
        return EXIT_CONFIG_ERROR
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


def _option_refusal(args: argparse.Namespace) -> str | None:
    """One line when ``--port`` or ``--workers`` is outside what its setting allows (the
    settings validate the environment; command-line values are checked here, before use)."""
    for option in ("port", "workers"):
        value = getattr(args, option, None)
        if value is None:
            continue
        low, high = _setting_bounds(option)
        if not low <= value <= high:
            return f"error: --{option} {value} is outside {low}-{high}"
    return None


def _setting_bounds(name: str) -> tuple[int, int]:
    low, high = -sys.maxsize, sys.maxsize
    for constraint in Settings.model_fields[name].metadata:
        if isinstance(constraint, annotated_types.Ge):
            low = int(constraint.ge)  # type: ignore[call-overload]
        elif isinstance(constraint, annotated_types.Le):
            high = int(constraint.le)  # type: ignore[call-overload]
    return low, high


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
    create.add_argument(
        "--scope",
        action="append",
        help="send, read or admin; repeat or comma-separate (default: send,read). admin sees "
        "every tenant's inbound messages and opt-outs, and unassigned numbers' traffic",
    )
    create.set_defaults(run=_apikey_create)
    listing = apikey_verbs.add_parser("list", help="list keys (prefixes only)")
    listing.set_defaults(run=_apikey_list)
    revoke = apikey_verbs.add_parser("revoke", help="revoke a key by name or prefix")
    revoke.add_argument("key", help="the key's name or visible prefix")
    revoke.set_defaults(run=_apikey_revoke)

    policy = verbs.add_parser(
        "policy", help="show or change a tenant's protection policy (destinations, rates, caps)"
    )
    policy_verbs = policy.add_subparsers(dest="policy_verb", required=True)
    for verb, text, run in (
        ("show", "print the policy that applies, as JSON", _policy_show),
        ("set", "store a policy document (JSON) for the tenant or one of its keys", _policy_set),
        ("clear", "remove the stored policy: the gateway's default applies", _policy_clear),
        ("log", "print the changes to the tenant's policies, newest first", _policy_log),
    ):
        sub = policy_verbs.add_parser(verb, help=text)
        sub.add_argument("--tenant", required=True, help="the tenant (an API key's tenant)")
        if verb != "log":
            sub.add_argument("--key", help="an API key's name or prefix: its own, narrower policy")
        if verb == "set":
            sub.add_argument(
                "document",
                help='the policy as JSON, e.g. \'{"allowed_countries": ["SE"]}\', or @file.json',
            )
        if verb in ("set", "clear"):
            sub.add_argument("--by", help="who makes the change (default: cli:<login name>)")
        sub.set_defaults(run=run)

    retention = verbs.add_parser(
        "retention",
        help="show or change how long a tenant's message bodies and numbers are kept",
    )
    retention_verbs = retention.add_subparsers(dest="retention_verb", required=True)
    for verb, text, run in (
        ("show", "print the retention window that applies, as JSON", _retention_show),
        ("set", "store the tenant's own window", _retention_set),
        ("clear", "remove the tenant's own window: the gateway's applies", _retention_clear),
    ):
        sub = retention_verbs.add_parser(verb, help=text)
        sub.add_argument("--tenant", required=True, help="the tenant (an API key's tenant)")
        if verb == "set":
            for option, what in (("redact", "redacted"), ("delete", "deleted")):
                sub.add_argument(
                    f"--{option}-after-days",
                    required=True,
                    type=_days_or_keep,
                    help=f"days after which final messages are {what}, or 'keep'",
                )
            sub.add_argument("--by", help="who makes the change (default: cli:<login name>)")
        sub.set_defaults(run=run)

    sender = verbs.add_parser("sender", help="assign the gateway's numbers to tenants")
    sender_verbs = sender.add_subparsers(dest="sender_verb", required=True)
    assign = sender_verbs.add_parser(
        "assign", help="give a number to a tenant: its inbound messages and STOPs are theirs"
    )
    assign.add_argument("number", help="the gateway's number (E.164) or short code")
    assign.add_argument("tenant", help="the tenant that owns it from now on")
    assign.set_defaults(run=_sender_assign)
    unassign = sender_verbs.add_parser("unassign", help="the number belongs to no tenant")
    unassign.add_argument("number")
    unassign.set_defaults(run=_sender_unassign)
    senders = sender_verbs.add_parser("list", help="list numbers and their tenants")
    senders.set_defaults(run=_sender_list)

    tenant = verbs.add_parser("tenant", help="per-tenant settings")
    tenant_verbs = tenant.add_subparsers(dest="tenant_verb", required=True)
    callback = tenant_verbs.add_parser(
        "callback", help="where a tenant's message.inbound and opt_out.changed events go"
    )
    callback.add_argument("tenant")
    target = callback.add_mutually_exclusive_group(required=True)
    target.add_argument("url", nargs="?", help="http(s) URL")
    target.add_argument("--clear", action="store_true", help="send the tenant no events")
    callback.set_defaults(run=_tenant_callback)
    tenants = tenant_verbs.add_parser("list", help="list tenants' settings")
    tenants.set_defaults(run=_tenant_list)
    return parser


def _callback_secret(_: argparse.Namespace) -> int:
    sys.stdout.write(SigningSecret(secrets.token_bytes(32)).serialise() + "\n")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.serving import ServeOptions, SimulatorStartError, serve

    try:
        serve(settings, ServeOptions(migrate=args.migrate), sys.stdout)
    except (PortInUseError, SimulatorStartError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


def _worker(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.observability.worker_endpoint import EndpointPortInUseError
    from smsgateway.serving import NoSinchError, run_worker

    try:
        run_worker(settings, sys.stderr)
    except NoSinchError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    except EndpointPortInUseError as exc:
        sys.stderr.write(f"error: {exc.strerror}\n")
        return EXIT_CONFIG_ERROR
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

    from smsgateway.http_server import freeze_startup_heap
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
    # As the gateway's own processes do (http_server.freeze_startup_heap): it shares the cores
    # of the gateway it serves, and a full collection over its start-up heap takes tens of ms
    # of them, holding up every batch and callback it has in hand meanwhile.
    freeze_startup_heap()
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
    from smsgateway.domain.api_keys import DEFAULT_SCOPES, parse_scopes
    from smsgateway.services.api_keys import (
        InvalidCallbackUrlError,
        InvalidRateLimitError,
        create_api_key,
    )
    from smsgateway.serving import with_pool
    from smsgateway.store.api_keys import ApiKeyNameTakenError

    try:
        scopes = parse_scopes(args.scope) if args.scope else DEFAULT_SCOPES
        created = with_pool(
            settings,
            lambda pool: create_api_key(
                pool,
                name=args.name,
                tenant=args.tenant,
                rate_limit=args.rate,
                callback_url=args.callback_url,
                allow_private_callbacks=settings.callback_private_targets_allowed,
                scopes=scopes,
            ),
        )
    except (InvalidRateLimitError, InvalidCallbackUrlError, ValueError) as exc:
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
        f" callbacks={record.default_callback_url or 'per message'}"
        f" scopes={','.join(sorted(record.scopes))}\n"
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
            f" rate={record.rate_limit or 'default':<12}"
            f" scopes={','.join(sorted(record.scopes)):<16} {state}"
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


def _policy_key(settings: Settings, tenant: str, name_or_prefix: str | None) -> uuid.UUID | None:
    from smsgateway.services.api_keys import list_api_keys
    from smsgateway.serving import with_pool

    if name_or_prefix is None:
        return None
    for record in with_pool(settings, list_api_keys):
        if name_or_prefix in (record.name, record.prefix) and record.tenant == tenant:
            return record.id
    raise LookupError(f"tenant {tenant!r} has no key named or prefixed {name_or_prefix!r}")


def _print_policy(view: Any) -> None:
    document = {
        "tenant": view.tenant,
        "api_key_id": None if view.api_key_id is None else str(view.api_key_id),
        "source": "stored" if view.stored is not None else "gateway default",
        "updated_at": None if view.updated_at is None else view.updated_at.isoformat(),
        "updated_by": view.updated_by,
        "policy": view.policy.as_document(),
    }
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")


def _policy_book(settings: Settings, pool: Any) -> Any:
    from smsgateway.services.drafting import destinations_from_settings
    from smsgateway.services.protection import PolicyBook

    return PolicyBook(pool, destinations_from_settings(settings))


def _policy_show(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.protection import show_policy
    from smsgateway.serving import with_pool

    try:
        key_id = _policy_key(settings, args.tenant, args.key)
    except LookupError as exc:
        sys.stderr.write(f"error: {exc.args[0]}\n")
        return 1
    view = with_pool(
        settings, lambda pool: show_policy(pool, _policy_book(settings, pool), args.tenant, key_id)
    )
    _print_policy(view)
    return 0


def _policy_set(settings: Settings, args: argparse.Namespace) -> int:
    return _policy_change(settings, args, clear=False)


def _policy_clear(settings: Settings, args: argparse.Namespace) -> int:
    return _policy_change(settings, args, clear=True)


def _policy_change(settings: Settings, args: argparse.Namespace, *, clear: bool) -> int:
    from smsgateway.domain.errors import DomainError
    from smsgateway.services.protection import set_policy
    from smsgateway.serving import with_pool

    document: dict[str, object] | None = None
    if not clear:
        text = args.document
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            sys.stderr.write(f"error: the policy is not valid JSON: {exc}\n")
            return EXIT_CONFIG_ERROR
        if not isinstance(loaded, dict):
            sys.stderr.write("error: the policy must be a JSON object\n")
            return EXIT_CONFIG_ERROR
        document = loaded
    try:
        key_id = _policy_key(settings, args.tenant, args.key)
        view = with_pool(
            settings,
            lambda pool: set_policy(
                pool,
                _policy_book(settings, pool),
                tenant=args.tenant,
                api_key_id=key_id,
                document=document,
                changed_by=args.by or f"cli:{getpass.getuser()}",
            ),
        )
    except LookupError as exc:
        sys.stderr.write(f"error: {exc.args[0]}\n")
        return 1
    except DomainError as exc:
        sys.stderr.write(f"error: {exc.field or 'policy'}: {exc.message}\n")
        return EXIT_CONFIG_ERROR
    _print_policy(view)
    return 0


def _days_or_keep(text: str) -> int | None:
    from smsgateway.domain.retention import MAX_DAYS

    if text == "keep":
        return None
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 to {MAX_DAYS} days, or 'keep'")
    return int(text)


def _print_retention(view: Any) -> None:
    document = {
        "tenant": view.tenant,
        "source": "stored" if view.stored else "gateway default",
        "redact_after_days": view.window.redact_after_days,
        "delete_after_days": view.window.delete_after_days,
        "updated_at": None if view.updated_at is None else view.updated_at.isoformat(),
        "updated_by": view.updated_by,
    }
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _retention_default(settings: Settings) -> Any:
    from smsgateway.domain.retention import RetentionWindow

    return RetentionWindow(settings.redact_after_days, settings.delete_after_days)


def _retention_show(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.personal_data import show_retention
    from smsgateway.serving import with_pool

    default = _retention_default(settings)
    _print_retention(with_pool(settings, lambda pool: show_retention(pool, default, args.tenant)))
    return 0


def _retention_set(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.domain.retention import RetentionWindow
    from smsgateway.services.personal_data import set_retention
    from smsgateway.serving import with_pool

    window = RetentionWindow(args.redact_after_days, args.delete_after_days)
    author = args.by or f"cli:{getpass.getuser()}"
    view = with_pool(
        settings, lambda pool: set_retention(pool, args.tenant, window, changed_by=author)
    )
    _print_retention(view)
    return 0


def _retention_clear(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.personal_data import clear_retention
    from smsgateway.serving import with_pool

    default = _retention_default(settings)
    _print_retention(with_pool(settings, lambda pool: clear_retention(pool, default, args.tenant)))
    return 0


def _policy_log(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.protection import policy_changes
    from smsgateway.serving import with_pool

    for change in with_pool(settings, lambda pool: policy_changes(pool, args.tenant)):
        target = "tenant" if change.api_key_id is None else f"key {change.api_key_id}"
        what = "cleared" if change.document is None else json.dumps(change.document)
        sys.stdout.write(
            f"{change.changed_at:%Y-%m-%d %H:%M:%S%z}  {change.changed_by:<20} {target}: {what}\n"
        )
    return 0


def _sender_assign(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.tenancy import assign_sender
    from smsgateway.serving import with_pool

    try:
        assigned = with_pool(settings, lambda pool: assign_sender(pool, args.number, args.tenant))
    except ValueError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_CONFIG_ERROR
    sys.stdout.write(f"{assigned.sender} belongs to tenant {assigned.tenant}\n")
    return 0


def _sender_unassign(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.tenancy import unassign_sender
    from smsgateway.serving import with_pool

    if not with_pool(settings, lambda pool: unassign_sender(pool, args.number)):
        sys.stderr.write(f"error: {args.number} is assigned to no tenant\n")
        return 1
    sys.stdout.write(f"{args.number} belongs to no tenant (admin keys only)\n")
    return 0


def _sender_list(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.services.tenancy import list_senders
    from smsgateway.serving import with_pool

    for assigned in with_pool(settings, list_senders):
        sys.stdout.write(
            f"{assigned.sender:<16} tenant={assigned.tenant:<16}"
            f" since {assigned.assigned_at:%Y-%m-%d %H:%M}\n"
        )
    return 0


def _tenant_callback(settings: Settings, args: argparse.Namespace) -> int:
    from smsgateway.services.tenancy import (
        InvalidTenantCallbackUrlError,
        set_tenant_callback_url,
    )
    from smsgateway.serving import with_pool

    url = None if args.clear else args.url
    try:
        setting = with_pool(
            settings,
            lambda pool: set_tenant_callback_url(
                pool, args.tenant, url, allow_private=settings.callback_private_targets_allowed
            ),
        )
    except InvalidTenantCallbackUrlError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_CONFIG_ERROR
    where = setting.callback_url or "nowhere (no events are queued)"
    sys.stdout.write(f"tenant {setting.tenant}: events go to {where}\n")
    if setting.callback_url and not settings.callback_signing_secrets:
        sys.stdout.write("# Callbacks are off until SMSGW_CALLBACK_SIGNING_SECRETS is set.\n")
    return 0


def _tenant_list(settings: Settings, _: argparse.Namespace) -> int:
    from smsgateway.services.tenancy import list_tenant_settings
    from smsgateway.serving import with_pool

    for setting in with_pool(settings, list_tenant_settings):
        sys.stdout.write(f"{setting.tenant:<16} callbacks={setting.callback_url or 'none'}\n")
    return 0
