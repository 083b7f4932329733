"""Who may call: API tokens per service plan, and OAuth2 access tokens per project.

A service plan id in the path takes `Authorization: Bearer <its API token>`. A project id
takes an access token from `POST /oauth2/token` (client credentials, HTTP Basic
key_id:key_secret); once it has expired the answer is 401 with
`www-authenticate: Bearer error="expired"`, as from Sinch.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import secrets
from urllib.parse import parse_qs

from smsgateway.simulator.config import SimulatorConfig
from smsgateway.simulator.errors import Unauthorized


class OAuthError(Exception):
    """An OAuth2 token-endpoint error (RFC 6749 §5.2)."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


class Authenticator:
    """Checks bearer credentials and issues OAuth2 access tokens (kept in memory)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._plans = config.service_plans
        self._clients = config.oauth_clients
        self._projects = config.oauth_project_ids
        self._ttl_s = config.oauth_token_ttl_s
        self._tokens: dict[str, float] = {}

    def check(self, account_id: str, authorization: str | None, now: float) -> None:
        """Raise Unauthorized unless `authorization` may act for `account_id`."""
        token = _bearer(authorization)
        if token is None:
            raise Unauthorized
        expected = self._plans.get(account_id)
        if expected is not None:
            if not hmac.compare_digest(token.encode(), expected.encode()):
                raise Unauthorized
            return
        if account_id not in self._projects:
            raise Unauthorized
        expires_at = self._tokens.get(token)
        if expires_at is None:
            raise Unauthorized
        if now >= expires_at:
            raise Unauthorized(expired=True)

    def issue_token(self, authorization: str | None, form: bytes, now: float) -> dict[str, object]:
        """The token endpoint's answer for client credentials given by HTTP Basic."""
        credentials = _basic(authorization)
        if credentials is None:
            raise OAuthError(401, "invalid_client")
        key_id, key_secret = credentials
        expected = self._clients.get(key_id)
        if expected is None or not hmac.compare_digest(key_secret.encode(), expected.encode()):
            raise OAuthError(401, "invalid_client")
        fields = parse_qs(form.decode("utf-8", errors="replace"))
        if fields.get("grant_type") != ["client_credentials"]:
            raise OAuthError(400, "unsupported_grant_type")
        self._tokens = {token: at for token, at in self._tokens.items() if at > now}
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + self._ttl_s
        return {
            "access_token": token,
            "expires_in": math.ceil(self._ttl_s),
            "scope": "",
            "token_type": "bearer",
        }

    def expire_tokens(self) -> None:
        """Make every issued token expired (still recognised, so the 401 says `expired`)."""
        self._tokens = dict.fromkeys(self._tokens, 0.0)

    def reset(self) -> None:
        self._tokens.clear()


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _basic(authorization: str | None) -> tuple[str, str] | None:
    if authorization is None:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    key_id, sep, key_secret = decoded.partition(":")
    return (key_id, key_secret) if sep else None
