"""The rules a gateway on a real Sinch account must meet before it sends anything.

- **Public URL.** Every message asks Sinch for delivery reports unless its caller sends
  ``delivery_report: "none"`` (the default is ``per_recipient``), and the dispatcher gives each
  batch the gateway's webhook as its ``callback_url``. A caller can therefore always request
  reports, so on a real account ``PUBLIC_BASE_URL`` must be set to an ``http(s)`` URL whose host
  Sinch can reach: not loopback, private, link-local, ``localhost`` or ``.local``, unless
  ``SMSGW_ALLOW_PRIVATE_PUBLIC_BASE_URL`` says Sinch reaches the gateway through a private
  link. Otherwise ``serve`` and ``worker`` refuse to start: a gateway that started would accept
  messages whose reports could never arrive.
- **Sender.** A batch goes to Sinch without ``from`` only when the operator declared that the
  plan has a default originator (``SMSGW_SINCH_DEFAULT_ORIGINATOR``). With no ``SINCH_NUMBER``,
  no allowed senders and no such declaration, every message would be refused
  (``sender_required``): start-up warns.

The simulator needs none of this: it runs beside the gateway and acts as a plan with a default
originator. Pure (no I/O): the command line and ``smsgateway check`` both read these findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from smsgateway.domain.public_url import PublicUrlProblem, check_public_url
from smsgateway.settings import Settings

CheckStatus = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One checked rule: ``ok``, ``warn`` or ``fail``, what was checked, and a sentence."""

    status: CheckStatus
    name: str
    text: str


def start_up_refusal(settings: Settings) -> str | None:
    """The one line that stops ``serve`` and ``worker``, or None when they may start."""
    finding = public_url_finding(settings)
    return None if finding.status != "fail" else f"configuration error: {finding.text}"


def sender_warning(settings: Settings) -> str | None:
    """The start-up warning for a real account on which no message could get a sender."""
    finding = sender_finding(settings)
    return finding.text if finding.status == "warn" and not settings.allowed_senders else None


def public_url_finding(settings: Settings) -> Finding:
    """Whether Sinch can reach the gateway's webhooks at ``PUBLIC_BASE_URL``."""
    name = "public URL"
    url = settings.public_base_url
    if settings.uses_simulator:
        return Finding("ok", name, f"{settings.webhook_base_url} (the simulator runs beside)")
    if not url:
        return Finding(
            "fail",
            name,
            "PUBLIC_BASE_URL is not set; with real Sinch credentials it must be the public "
            "http(s) URL at which Sinch reaches this gateway (delivery reports would go to "
            f"{settings.webhook_base_url}, which Sinch cannot reach)",
        )
    shown = display_url(url)
    problem = check_public_url(url, allow_private=settings.allow_private_public_base_url)
    if problem is PublicUrlProblem.SCHEME or problem is PublicUrlProblem.NO_HOST:
        return Finding(
            "fail",
            name,
            f"PUBLIC_BASE_URL={shown!r} is not valid; it must be an http(s) URL with a host, "
            "e.g. https://sms.example.com",
        )
    if problem is PublicUrlProblem.PRIVATE:
        return Finding(
            "fail",
            name,
            f"PUBLIC_BASE_URL={shown!r} names a loopback, private or local host that Sinch "
            "cannot reach; set the gateway's public URL, or "
            "SMSGW_ALLOW_PRIVATE_PUBLIC_BASE_URL=true if Sinch reaches it through a private link",
        )
    if settings.allow_private_public_base_url and check_public_url(url) is not None:
        return Finding("warn", name, f"{shown} is private (SMSGW_ALLOW_PRIVATE_PUBLIC_BASE_URL)")
    return Finding("ok", name, shown)


def sender_finding(settings: Settings) -> Finding:
    """Whether a message that names no sender gets one (or may go without)."""
    name = "sender"
    if settings.sinch_number:
        return Finding("ok", name, f"messages without 'from' are sent from {settings.sinch_number}")
    if not settings.sender_required:
        why = "the simulator" if settings.uses_simulator else "SMSGW_SINCH_DEFAULT_ORIGINATOR"
        return Finding(
            "ok", name, f"messages without 'from' use the plan's default originator ({why})"
        )
    if settings.allowed_senders:
        return Finding(
            "warn",
            name,
            "SINCH_NUMBER is unset and SMSGW_SINCH_DEFAULT_ORIGINATOR is false: messages must "
            "name one of SMSGW_ALLOWED_SENDERS in 'from', others are refused (sender_required)",
        )
    return Finding(
        "warn",
        name,
        "no sender: SINCH_NUMBER is unset, SMSGW_ALLOWED_SENDERS is empty and "
        "SMSGW_SINCH_DEFAULT_ORIGINATOR is false, so every message is refused "
        "(sender_required); set SINCH_NUMBER, or SMSGW_SINCH_DEFAULT_ORIGINATOR=true if the "
        "service plan has a default originator",
    )


def display_url(url: str) -> str:
    """``url`` without any user or password in it, for a log line or a terminal."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, f"***@{netloc}", parts.path, parts.query, ""))
    except ValueError:
        return "<unreadable URL>"
