"""The OAuth2 token endpoint: `POST /oauth2/token` with client credentials over HTTP Basic."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from smsgateway.simulator.deps import SimulatorDep, json_response

router = APIRouter(tags=["oauth2"])


@router.post("/oauth2/token")
async def issue_token(request: Request, simulator: SimulatorDep) -> Response:
    """Form `grant_type=client_credentials`; answers `access_token`, `expires_in`, `token_type`."""
    answer = simulator.auth.issue_token(
        request.headers.get("authorization"), await request.body(), time.time()
    )
    return json_response(answer)
