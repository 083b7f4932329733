"""Request dependencies: the app's Simulator, and the authenticated account of a Sinch call.

Both are `async def` so FastAPI runs them on the event loop rather than in a thread.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import Depends, Request, Response

from smsgateway.simulator.engine import Simulator


async def get_simulator(request: Request) -> Simulator:
    simulator: Simulator = request.app.state.simulator
    return simulator


SimulatorDep = Annotated[Simulator, Depends(get_simulator)]


async def authenticated_account(
    service_plan_id: str, request: Request, simulator: SimulatorDep
) -> str:
    """The service plan (or OAuth2 project) id in the path, once its credential checks out."""
    simulator.auth.check(service_plan_id, request.headers.get("authorization"), time.time())
    return service_plan_id


AccountDep = Annotated[str, Depends(authenticated_account)]


def json_response(content: object, status_code: int = 200) -> Response:
    """Compact JSON, serialised once (faster than FastAPI's encoder on the hot path)."""
    return Response(json_bytes(content), status_code=status_code, media_type="application/json")


def json_bytes(content: object) -> bytes:
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
