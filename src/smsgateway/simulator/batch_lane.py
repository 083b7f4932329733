"""`POST /xms/v1/{service_plan_id}/batches` answered without Starlette's routing.

Every send of a load test lands here. Through FastAPI's router, exception middleware and
response classes the framework cost as much CPU as creating the batch; on a 2-core machine the
simulator then took CPU from the gateway it stood in front of. The lane sits inside
`FaultMiddleware` (faults and latency apply as before) and does what the route does, with the
same answers for the same errors; any other request goes on to the app.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from smsgateway.simulator.engine import Simulator
from smsgateway.simulator.errors import (
    SimulatorError,
    Unauthorized,
    error_response,
    unauthorized_response,
)
from smsgateway.simulator.routes import create_batch_answer


class BatchLane:
    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.simulator = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        account = _batches_account(scope)
        if account is None:
            await self.app(scope, receive, send)
            return
        authorization = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
        try:
            body = await Request(scope, receive).body()
            answer = create_batch_answer(
                self.simulator, account, authorization, content_type, body, time.time()
            )
        except SimulatorError as exc:
            await error_response(exc)(scope, receive, send)
            return
        except Unauthorized as exc:
            await unauthorized_response(exc)(scope, receive, send)
            return
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})


def _batches_account(scope: Scope) -> str | None:
    """The service plan of a `POST /xms/v1/{plan}/batches`; None for any other request."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    parts = scope["path"].split("/")
    if len(parts) != 5 or parts[1:3] != ["xms", "v1"] or parts[4] != "batches" or not parts[3]:
        return None
    account: str = parts[3]
    return account
