"""``smsgateway check``: is this configuration ready to go live? One finding per check.

The checks: the settings (already parsed by the caller), the go-live rules
(``services/go_live.py``), the webhook URL Sinch will be given (any secret in it masked), the
database (reachable, schema at the newest migration) and, with real credentials, one harmless
authenticated call to Sinch: list batches, page size 1. Nothing here prints a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from smsgateway.services.go_live import (
    Finding,
    display_url,
    public_url_finding,
    sender_finding,
)
from smsgateway.services.readiness import check_readiness
from smsgateway.settings import Settings
from smsgateway.sinch import (
    SinchClient,
    SinchError,
    SinchHTTPError,
    SinchNotSent,
    SinchUnauthorized,
)
from smsgateway.sinch.regions import resolve_base_url
from smsgateway.store.pool import create_pool

_MASK = "<path secret>"


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every finding, in order; it failed if any finding did."""

    findings: tuple[Finding, ...]

    @property
    def failed(self) -> bool:
        return any(finding.status == "fail" for finding in self.findings)

    def lines(self) -> list[str]:
        """One line per check: ``ok``, ``warn`` or ``fail``, the check's name, what was found."""
        return [f"{f.status:<4}  {f.name}: {f.text}" for f in self.findings]


async def check_configuration(
    settings: Settings,
    *,
    sinch: SinchClient | None,
    webhook_url: str,
    secrets: Sequence[str] = (),
    schema_head: str | None,
) -> CheckReport:
    """Runs every check; ``sinch`` is None with the simulator (nothing real to call).

    ``secrets`` are values masked wherever they appear in ``webhook_url`` (the path secret).
    """
    findings = [
        settings_finding(settings),
        public_url_finding(settings),
        webhook_finding(webhook_url, secrets),
        sender_finding(settings),
        await database_finding(settings, schema_head),
    ]
    if sinch is None:
        findings.append(
            Finding(
                "warn",
                "Sinch",
                "no credentials: the built-in simulator is used and nothing reaches a real phone",
            )
        )
    else:
        findings.append(await sinch_finding(settings, sinch))
    return CheckReport(tuple(findings))


def settings_finding(settings: Settings) -> Finding:
    if settings.uses_simulator:
        return Finding("ok", "settings", "valid; Sinch: the built-in simulator (no real account)")
    how = "API token" if settings.sinch_auth == "api_token" else "OAuth2 client credentials"
    return Finding(
        "ok", "settings", f"valid; Sinch: a real account, region {settings.sinch_region}, {how}"
    )


def webhook_finding(webhook_url: str, secrets: Sequence[str]) -> Finding:
    """The delivery-report URL each batch carries, with every secret in it masked."""
    shown = display_url(webhook_url)
    for secret in secrets:
        if secret:
            shown = shown.replace(secret, _MASK)
    return Finding("ok", "webhook URL", f"Sinch will post delivery reports to {shown}")


async def database_finding(settings: Settings, schema_head: str | None) -> Finding:
    if settings.database_url is None:
        return Finding("fail", "database", "DATABASE_URL is not set")
    try:
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=0,
            max_size=1,
            command_timeout=settings.db_command_timeout_seconds,
            connect_timeout=settings.db_connect_timeout_seconds,
        )
    except (OSError, ValueError) as exc:
        return Finding("fail", "database", f"cannot use DATABASE_URL ({type(exc).__name__})")
    try:
        readiness = await check_readiness(
            pool,
            schema_head,
            settings.db_connect_timeout_seconds + settings.readiness_timeout_seconds,
        )
    finally:
        await pool.close()
    return Finding("ok" if readiness.ready else "fail", "database", readiness.reason)


async def sinch_finding(settings: Settings, sinch: SinchClient) -> Finding:
    """One authenticated list-batches call (page size 1): sends nothing, changes nothing."""
    base_url = sinch_base_url(settings)
    name = "Sinch"
    try:
        page = await sinch.list_batches(page=0, page_size=1)
    except SinchUnauthorized:
        wrong = (
            "key id, key secret or project id wrong"
            if settings.sinch_auth == "oauth2"
            else "token or plan id wrong"
        )
        return Finding("fail", name, f"{base_url} refused the credentials (401): {wrong}")
    except SinchNotSent as exc:
        return Finding("fail", name, f"cannot reach {base_url}: {exc}")
    except SinchHTTPError as exc:
        detail = f" {exc.code}" if exc.code else ""
        return Finding("fail", name, f"{base_url} answered {exc.status}{detail} to list batches")
    except SinchError as exc:
        return Finding("fail", name, f"no usable answer from {base_url}: {exc}")
    return Finding(
        "ok",
        name,
        f"authenticated at {base_url} (region {settings.sinch_region}); "
        f"the account lists {page.count} batch(es)",
    )


def sinch_base_url(settings: Settings) -> str:
    """The base URL the gateway's Sinch client calls, as configured."""
    return resolve_base_url(
        settings.sinch_region,
        oauth2=settings.sinch_auth == "oauth2",
        override=settings.sinch_base_url,
    ).rstrip("/")
