"""API-key authentication: ``Authorization: Bearer <key>`` or the tutorial's ``X-API-Key``;
and scopes: ``ReadKey``, ``SendKey`` and ``AdminKey`` answer 403 ``insufficient_scope`` to a
valid key that lacks the scope (``domain.api_keys.Scope`` says what each allows)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request, Response

from smsgateway.api.deps import AppState, state_of
from smsgateway.api.problems import ProblemError
from smsgateway.domain.api_keys import Scope, grants
from smsgateway.observability.sending_metrics import RATE_LIMIT_REFUSALS
from smsgateway.services.rate_limits import RateDecision
from smsgateway.store.api_keys import ApiKeyRecord

_UNREADABLE = "<an Authorization header that is not 'Bearer <key>'>"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="smsgateway"'}

# Read from the headers directly rather than through FastAPI's security classes: resolving
# sub-dependencies costs more per request than checking the key. OpenAPI still shows both
# ways to send a key, through these schemes and `AUTHENTICATED` on each protected route.
SECURITY_SCHEMES = {
    "ApiKeyBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <API key>`",
    },
    "ApiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "`X-API-Key: <API key>` (the Express tutorial's header)",
    },
}
AUTHENTICATED: dict[str, Any] = {"security": [{"ApiKeyBearer": []}, {"ApiKeyHeader": []}]}


async def current_key(request: Request, response: Response) -> ApiKeyRecord:
    """The caller's active API key, within its rate limit (see ``admit``)."""
    client = request.client.host if request.client else None
    record, headers = await admit(state_of(request), request.headers, client, None)
    response.headers.update(headers)
    return record


async def admit(
    state: AppState, headers: Mapping[str, str], client_host: str | None, scope: Scope | None
) -> tuple[ApiKeyRecord, dict[str, str]]:
    """The caller's active API key holding ``scope`` (any, for None), within its rate limit,
    with the ``RateLimit-*`` headers its answer carries.

    401 problem+json when the key is missing, unknown or revoked; 429 with ``Retry-After`` and
    ``RateLimit-*`` headers past the key's limit (or, without a valid key, the client address's
    default limit, which also slows down key guessing); 403 ``insufficient_scope`` to a valid
    key within its limit that lacks ``scope``.
    """
    presented = _presented_key(headers)
    record = await state.authenticator.authenticate(presented) if presented else None
    if record is None:
        address = client_host or "unknown"
        await _within_limit(await state.rate_limits.check(f"address:{address}"))
        if not presented:
            raise ProblemError(
                401,
                "missing_api_key",
                "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
                headers=_CHALLENGE,
            )
        raise ProblemError(
            401, "invalid_api_key", "The API key is unknown or revoked.", headers=_CHALLENGE
        )
    decision = await state.rate_limits.check(f"key:{record.id}", record.rate_limit)
    await _within_limit(decision)
    if scope is not None and not grants(record.scopes, scope):
        raise ProblemError(
            403,
            "insufficient_scope",
            f"This API key lacks the '{scope.value}' scope this operation needs; "
            f"it has: {', '.join(sorted(record.scopes))}.",
            headers={
                "WWW-Authenticate": f'Bearer realm="smsgateway", '
                f'error="insufficient_scope", scope="{scope.value}"'
            },
        )
    return record, decision.headers


def _presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization is not None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        # A credential we cannot read (even an empty header) is a wrong one, not an absent
        # one: an X-API-Key beside it must not let a malformed Authorization pass unnoticed.
        return _UNREADABLE
    return headers.get("x-api-key") or None


async def _within_limit(decision: RateDecision) -> None:
    if not decision.allowed:
        RATE_LIMIT_REFUSALS.inc()
        raise ProblemError(
            429,
            "rate_limited",
            f"More than {decision.limit} requests in the current window; retry in "
            f"{max(1, decision.reset_seconds)} s.",
            headers=decision.headers,
        )


def _key_with(scope: Scope) -> Callable[[Request, Response], Awaitable[ApiKeyRecord]]:
    async def key_with_scope(request: Request, response: Response) -> ApiKeyRecord:
        client = request.client.host if request.client else None
        record, headers = await admit(state_of(request), request.headers, client, scope)
        response.headers.update(headers)
        return record

    key_with_scope.__name__ = f"key_with_{scope.value}_scope"
    return key_with_scope


CurrentKey = Annotated[ApiKeyRecord, Depends(current_key)]
ReadKey = Annotated[ApiKeyRecord, Depends(_key_with(Scope.READ))]
SendKey = Annotated[ApiKeyRecord, Depends(_key_with(Scope.SEND))]
AdminKey = Annotated[ApiKeyRecord, Depends(_key_with(Scope.ADMIN))]
