"""API-key authentication: ``Authorization: Bearer <key>`` or the tutorial's ``X-API-Key``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from smsgateway.api.deps import StateDep
from smsgateway.api.problems import ProblemError
from smsgateway.store.api_keys import ApiKeyRecord

# auto_error=False: a missing key is answered by us, as problem+json, not by FastAPI.
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="The Express tutorial's header"
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="smsgateway"'}


async def current_key(
    request: Request,
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header_key: Annotated[str | None, Depends(_api_key_header)],
) -> ApiKeyRecord:
    """The caller's active API key; 401 problem+json when it is missing, unknown or revoked."""
    presented = bearer.credentials if bearer is not None else header_key
    if not presented:
        raise ProblemError(
            401,
            "missing_api_key",
            "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
            headers=_CHALLENGE,
        )
    record = await state.authenticator.authenticate(presented)
    if record is None:
        raise ProblemError(
            401, "invalid_api_key", "The API key is unknown or revoked.", headers=_CHALLENGE
        )
    request.state.api_key = record
    return record


CurrentKey = Annotated[ApiKeyRecord, Depends(current_key)]
