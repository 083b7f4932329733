"""Authenticating Sinch's callbacks to us: HMAC signature and HTTP Basic.

Pure: the clock is an argument, and nothing keeps state.

**Sinch → gateway (HMAC).** With signing on, Sinch sends ``x-sinch-webhook-signature``,
``-nonce``, ``-timestamp`` (Unix seconds) and ``-algorithm`` (``HmacSHA256``). The signature is
``base64(HMAC-SHA256(secret as UTF-8, raw body + b"." + nonce + b"." + timestamp))`` over the
bytes as received. ``verify_sinch_signature`` checks, in this order: headers present, algorithm,
header syntax, the signature (in constant time); only a failure there is a refusal. The
timestamp's age is then a *replay sign*, not a refusal: nothing Sinch publishes says whether a
retry (which may come ~22 h 45 min after the first attempt) is signed anew, and applying a
report or an MO twice is a no-op, so a correctly signed body is always accepted and its
replay sign only counted. Whether the nonce was used before is for the caller to find out
after that (the gateway records nonces in Postgres, shared by every process);
``mark_reused_nonce`` adds that sign to a passed check.

**HTTP Basic.** ``check_basic_credentials`` compares user and password in constant time, both
always, so a wrong user takes as long as a wrong password.

Our status callbacks to callers are signed in :mod:`smsgateway.domain.standard_webhooks`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

SIGNATURE_HEADER: Final = "x-sinch-webhook-signature"
NONCE_HEADER: Final = "x-sinch-webhook-signature-nonce"
TIMESTAMP_HEADER: Final = "x-sinch-webhook-signature-timestamp"
ALGORITHM_HEADER: Final = "x-sinch-webhook-signature-algorithm"
SINCH_HEADERS: Final = (SIGNATURE_HEADER, NONCE_HEADER, TIMESTAMP_HEADER, ALGORITHM_HEADER)
SUPPORTED_ALGORITHM: Final = "HmacSHA256"

# Unix seconds as Sinch sends them; digits only, so that int() sees no "_", sign or other script.
_TIMESTAMP: Final = re.compile(r"[0-9]{1,15}")
# The nonce is a ULID in practice; any visible ASCII is accepted, nothing that would need an
# encoding decision before it is signed.
_NONCE: Final = re.compile(r"[\x21-\x7e]{1,256}")


class SignatureRefusal(StrEnum):
    """Why a Sinch callback's signature is refused; stable strings for logs and metrics."""

    MISSING_HEADER = "missing_signature_header"
    UNSUPPORTED_ALGORITHM = "unsupported_signature_algorithm"
    MALFORMED_HEADER = "malformed_signature_header"
    BAD_SIGNATURE = "bad_signature"


class ReplaySign(StrEnum):
    """Why a correctly signed callback may be a replay (or a genuine late retry): counted,
    never refused."""

    STALE_TIMESTAMP = "stale_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    NONCE_REUSED = "nonce_reused"


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """The verdict: ``refusal`` is None when the body is authentic (signed with the secret).

    ``replay`` says why an authentic callback may be a replay. ``nonce`` and ``timestamp``
    are set once the headers could be read; ``detail`` is a short sentence for logs (it never
    holds the secret or the expected signature).
    """

    refusal: SignatureRefusal | None
    detail: str
    nonce: str | None = None
    timestamp: int | None = None
    replay: ReplaySign | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


def verify_sinch_signature(
    body: bytes,
    headers: Mapping[str, str],
    secret: str,
    now: float,
    max_age_seconds: float,
    *,
    max_future_seconds: float | None = None,
) -> SignatureCheck:
    """Check Sinch's HMAC headers on ``body`` (the raw bytes received).

    Header names are matched in any case. A timestamp more than ``max_age_seconds`` old, or
    more than ``max_future_seconds`` (default: ``max_age_seconds``) ahead of ``now``, is a
    replay sign on an accepted check. Raises ValueError for an empty secret (a configuration
    error, not a bad callback).
    """
    if not secret:
        raise ValueError("the webhook signing secret must not be empty")
    found = _lower_keys(headers)
    missing = [name for name in SINCH_HEADERS if not found.get(name, "").strip()]
    if missing:
        return SignatureCheck(SignatureRefusal.MISSING_HEADER, f"missing: {', '.join(missing)}")
    algorithm = found[ALGORITHM_HEADER].strip()
    if algorithm.lower() != SUPPORTED_ALGORITHM.lower():
        return SignatureCheck(
            SignatureRefusal.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm[:40]!r}"
        )
    nonce = found[NONCE_HEADER].strip()
    raw_timestamp = found[TIMESTAMP_HEADER].strip()
    if not _NONCE.fullmatch(nonce):
        return SignatureCheck(SignatureRefusal.MALFORMED_HEADER, "nonce is not visible ASCII")
    if not _TIMESTAMP.fullmatch(raw_timestamp):
        return SignatureCheck(
            SignatureRefusal.MALFORMED_HEADER, "timestamp is not Unix seconds", nonce
        )
    timestamp = int(raw_timestamp)
    given = _decode_base64(found[SIGNATURE_HEADER].strip()) or b""
    signed = b".".join((body, nonce.encode("ascii"), raw_timestamp.encode("ascii")))
    expected = hmac.digest(secret.encode("utf-8"), signed, hashlib.sha256)
    # Decoded bytes are compared, so padding or line-wrapping of the base64 does not matter;
    # compare_digest takes the same time wherever the values differ.
    if not hmac.compare_digest(expected, given):
        return SignatureCheck(
            SignatureRefusal.BAD_SIGNATURE, "signature mismatch", nonce, timestamp
        )
    age = now - timestamp
    if age > max_age_seconds:
        return SignatureCheck(
            None, f"signed {age:.0f} s ago", nonce, timestamp, ReplaySign.STALE_TIMESTAMP
        )
    ahead = -age
    if ahead > (max_age_seconds if max_future_seconds is None else max_future_seconds):
        return SignatureCheck(
            None, f"signed {ahead:.0f} s ahead", nonce, timestamp, ReplaySign.FUTURE_TIMESTAMP
        )
    return SignatureCheck(None, "ok", nonce, timestamp)


def mark_reused_nonce(check: SignatureCheck) -> SignatureCheck:
    """``check`` (which passed) with its nonce known to have been used before."""
    return SignatureCheck(
        check.refusal, "nonce already seen", check.nonce, check.timestamp, ReplaySign.NONCE_REUSED
    )


def check_basic_credentials(authorization: str | None, username: str, password: str) -> bool:
    """Whether an ``Authorization`` header value carries exactly these Basic credentials.

    Both parts are always compared, in constant time; a malformed header is simply False.
    """
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    decoded = _decode_base64(encoded.strip()) if scheme.lower() == "basic" else None
    try:
        text = decoded.decode("utf-8") if decoded is not None else ""
    except UnicodeDecodeError:
        text = ""
    given_user, colon, given_password = text.partition(":")
    user_ok = hmac.compare_digest(given_user.encode("utf-8"), username.encode("utf-8"))
    password_ok = hmac.compare_digest(given_password.encode("utf-8"), password.encode("utf-8"))
    return bool(colon) & user_ok & password_ok


def _decode_base64(value: str) -> bytes | None:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        return None


def _lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    # A Starlette Headers is already case-insensitive, a plain dict is not; the first of
    # repeated headers wins, as with Headers.get.
    found: dict[str, str] = {}
    for name, value in headers.items():
        found.setdefault(name.lower(), value)
    return found
