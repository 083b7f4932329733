"""A webhook receiver for tests: records every request and answers from a per-path script.

receiver = WebhookReceiver()
receiver.script("/dlr", 503, 200)   # first call 503, then 200 (the default)
async with live_server(receiver) as url: ...
requests = await receiver.wait_for(3, path="/dlr")

With ``check=standard_webhooks_check(secret)`` it is a caller's receiver of our status
callbacks: each request is verified with the ``standardwebhooks`` library, as a caller in any
language would, and one that fails is answered 401 (so the gateway retries it).
"""

from __future__ import annotations

import binascii
import json
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.types import Receive, Scope, Send

from tests.support.polling import wait_until


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as it arrived: the raw body is kept for signature checks."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float
    answered: int
    verified: bool | None = None

    def json(self) -> dict[str, object]:
        document = json.loads(self.body)
        assert isinstance(document, dict)
        return document


RequestCheck = Callable[[bytes, Mapping[str, str]], bool]


def standard_webhooks_check(secret: str) -> RequestCheck:
    """Verifies a request with the reference library and its 5-minute tolerance."""
    webhook = Webhook(secret)

    def check(body: bytes, headers: Mapping[str, str]) -> bool:
        try:
            webhook.verify(body, dict(headers), json_parse=False)
        # The library lets a malformed signature list escape as ValueError or binascii.Error.
        except (WebhookVerificationError, ValueError, binascii.Error):
            return False
        return True

    return check


class WebhookReceiver:
    """A pure ASGI app (lifespan included) that stores requests in arrival order."""

    def __init__(self, default_status: int = 200, *, check: RequestCheck | None = None) -> None:
        self.default_status = default_status
        self.check = check
        self.requests: list[ReceivedRequest] = []
        self._scripts: dict[str, deque[int]] = {}

    def script(self, path: str, *statuses: int) -> None:
        """Answer the next requests to `path` with `statuses`, in order, then the default."""
        self._scripts.setdefault(path, deque()).extend(statuses)

    def on(self, path: str | None = None) -> list[ReceivedRequest]:
        return [request for request in self.requests if path is None or request.path == path]

    async def wait_for(
        self, count: int, *, path: str | None = None, timeout_s: float = 5.0
    ) -> list[ReceivedRequest]:
        """The first `count` requests (to `path`), once they have arrived."""
        await wait_until(
            lambda: len(self.on(path)) >= count,
            timeout_s=timeout_s,
            message=f"{count} request(s) to {path or 'any path'}",
        )
        return self.on(path)[:count]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        path: str = scope["path"]
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        verified = None if self.check is None else self.check(body, headers)
        script = self._scripts.get(path)
        status = script.popleft() if script else self.default_status
        if verified is False:
            status = 401
        self.requests.append(
            ReceivedRequest(
                method=scope["method"],
                path=path,
                headers=headers,
                body=body,
                received_at=time.time(),
                answered=status,
                verified=verified,
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"0")],
            }
        )
        await send({"type": "http.response.body", "body": b""})
