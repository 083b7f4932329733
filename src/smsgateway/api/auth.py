"""API-key authentication: ``Authorization: Bearer <key>`` or the tutorial's ``X-API-Key``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from smsgateway.api.deps import StateDep
from smsgateway.api.problems import ProblemError
from smsgateway.observability.sending_metrics import RATE_LIMIT_REFUSALS
from smsgateway.services.rate_limits import RateDecision
from smsgateway.store.api_keys import ApiKeyRecord

# auto_error=False: a missing key is answered by us, as problem+json, not by FastAPI.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The Express tutorial's header"
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="smsgateway"'}


async def current_key(
    request: Request,
    response: Response,
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> ApiKeyRecord:
    """The caller's active API key, within its rate limit.

    401 problem+json when the key is missing, unknown or revoked; 429 with ``Retry-After`` and
    ``RateLimit-*`` headers past the key's limit (or, without a valid key, the client address's
    default limit, which also slows down key guessing).
    """
    presented = bearer.credentials if bearer is not None else header_key
    record = await state.authenticator.authenticate(presented) if presented else None
    if record is None:
        address = request.client.host if request.client else "unknown"
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
    response.headers.update(decision.headers)
    return record


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


CurrentKey = Annotated[ApiKeyRecord, Depends(current_key)]
