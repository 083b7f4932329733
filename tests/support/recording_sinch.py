"""A recording stand-in for Sinch: a real HTTP server on loopback that keeps every request and
answers the calls the gateway makes as Sinch would, forgiving nothing Sinch refuses.

    with recording_sinch() as sinch:                  # a thread of its own: sync or async tests
        env = {"SINCH_BASE_URL": sinch.base_url, "SINCH_SERVICE_PLAN_ID": sinch.plan_id,
               "SINCH_API_TOKEN": sinch.token}
        ...
        sinch.wait_for(1, "POST", "/batches")         # polls with a deadline
        assert sinch.sent_batches()[0]["from"] == "+12025550123"

    async with running_recording_sinch() as sinch: ...   # on the test's own event loop

What it does (``/xms/v1/{plan_id}`` is the prefix of every route):

- ``Authorization: Bearer <token>`` and the plan id in the path must both match, else 401 with
  an empty ``text/plain`` body (one of the forms Sinch uses).
- ``POST /batches``: ``to`` (1 to 1000 strings) and ``body`` are required, and so is ``from``
  unless ``default_originator`` is given (then the batch echoes it); else 400
  ``syntax_constraint_violation``. Otherwise 201 with the batch as stored: a 26-character
  ``id``, ``canceled: false``, ``created_at``/``modified_at``, ``delivery_report`` (``none``
  when not given) and every field sent.
- ``GET /batches?page=&page_size=&client_reference=``: ``{count, page, page_size, batches}``,
  newest first; ``page_size`` in the answer is the number of entries on the page, as Sinch's.
- ``GET /batches/{id}``: the batch, or 404.
- ``answer(method, route, status, body)`` scripts the next answer(s) for a route, e.g.
  ``sinch.answer("POST", "/batches", 403, {"code": "blocked_account", "text": "..."})``.
- Anything else: 404 ``{"code": "not_found", "text": ...}``.

Every request is recorded, refused or not (``requests``), so a test can assert that something
(a batch without ``from``) never reached Sinch.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import Receive, Scope, Send

from tests.support.background_loop import BackgroundLoop
from tests.support.live_server import live_server

_ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_MAX_RECIPIENTS = 1000


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as it arrived; ``route`` is the path after ``/xms/v1/{plan id}``."""

    method: str
    path: str
    route: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: Any


@dataclass
class RecordingSinch:
    """The stand-in as a pure ASGI app; ``base_url`` is set once it is served."""

    plan_id: str = "golive-plan"
    token: str = "golive-token"
    default_originator: str | None = None
    base_url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    _batches: list[dict[str, Any]] = field(default_factory=list)
    _scripts: dict[tuple[str, str], deque[_Answer]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(
        self, method: str, route: str, status: int, body: Any = None, *, times: int = 1
    ) -> None:
        """Answer the next ``times`` calls of ``method route`` with ``status`` and JSON ``body``."""
        with self._lock:
            queue = self._scripts.setdefault((method.upper(), route), deque())
            queue.extend(_Answer(status, body) for _ in range(times))

    def recorded(
        self, method: str | None = None, route: str | None = None
    ) -> list[RecordedRequest]:
        """The requests so far, optionally only one method and route (e.g. ``"/batches"``)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (route is None or r.route == route)
            ]

    def sent_batches(self) -> list[dict[str, Any]]:
        """The JSON body of every ``POST /batches`` received, accepted or refused."""
        return [r.json for r in self.recorded("POST", "/batches")]

    def wait_for(
        self,
        count: int,
        method: str | None = None,
        route: str | None = None,
        *,
        timeout_s: float = 10.0,
    ) -> list[RecordedRequest]:
        """Blocks (polling against a deadline) until ``count`` matching requests arrived."""
        deadline = time.monotonic() + timeout_s
        while len(found := self.recorded(method, route)) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{count} request(s) {method or ''} {route or ''}: got {found}")
            time.sleep(0.02)
        return found

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
        raw = b"".join(chunks)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        method: str = scope["method"]
        path: str = scope["path"]
        try:
            document = json.loads(raw) if raw else None
        except ValueError:
            document = None
        prefix = f"/xms/v1/{self.plan_id}"
        route = path[len(prefix) :] if path.startswith(prefix + "/") else path
        status, body = self._respond(method, path, route, query, headers, document, raw)
        with self._lock:
            self.requests.append(
                RecordedRequest(method, path, route, query, headers, document, status)
            )
        if body is None:
            payload, content_type = b"", b"text/plain"
        else:
            payload, content_type = json.dumps(body).encode(), b"application/json"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _respond(
        self,
        method: str,
        path: str,
        route: str,
        query: dict[str, str],
        headers: dict[str, str],
        document: Any,
        raw: bytes,
    ) -> tuple[int, Any]:
        if not path.startswith("/xms/v1/"):
            return 404, _error("not_found", f"There is nothing at {path}.")
        if headers.get("authorization") != f"Bearer {self.token}" or route == path:
            return 401, None
        with self._lock:
            script = self._scripts.get((method, route))
            scripted = script.popleft() if script else None
        if scripted is not None:
            return scripted.status, scripted.body
        if route == "/batches" and method == "POST":
            if raw and document is None:
                return 400, _error("syntax_invalid_json", "The body is not valid JSON.")
            return self._create_batch(document)
        if route == "/batches" and method == "GET":
            return self._list_batches(query)
        if route.startswith("/batches/") and method == "GET" and route.count("/") == 2:
            batch_id = route.removeprefix("/batches/")
            with self._lock:
                found = next((b for b in self._batches if b["id"] == batch_id), None)
            if found is None:
                return 404, _error("not_found", f"Batch {batch_id} not found.")
            return 200, found
        return 404, _error("not_found", f"There is nothing at {method} {path}.")

    def _create_batch(self, document: Any) -> tuple[int, Any]:
        if not isinstance(document, dict):
            return 400, _error("syntax_invalid_json", "The body must be a JSON object.")
        to = document.get("to")
        if (
            not isinstance(to, list)
            or not 1 <= len(to) <= _MAX_RECIPIENTS
            or not all(isinstance(n, str) and n for n in to)
        ):
            return 400, _constraint("to must hold 1 to 1000 recipients")
        if not isinstance(document.get("body"), str):
            return 400, _constraint("body is required")
        sender = document.get("from", self.default_originator)
        if not isinstance(sender, str) or not sender:
            return 400, _constraint("from is required: the service plan has no default originator")
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        batch = {
            "type": "mt_text",
            "delivery_report": "none",
            **document,
            "id": _batch_id(),
            "from": sender,
            "canceled": False,
            "created_at": now,
            "modified_at": now,
        }
        with self._lock:
            self._batches.append(batch)
        return 201, batch

    def _list_batches(self, query: dict[str, str]) -> tuple[int, Any]:
        try:
            page = int(query.get("page", "0"))
            page_size = int(query.get("page_size", "30"))
        except ValueError:
            return 400, _error("syntax_invalid_parameter_format", "page and page_size are numbers")
        if page < 0 or not 1 <= page_size <= 100:
            return 400, _error("syntax_invalid_parameter_format", "page_size must be 1 to 100")
        with self._lock:
            matching = [
                b
                for b in reversed(self._batches)
                if "client_reference" not in query
                or b.get("client_reference") == query["client_reference"]
            ]
        entries = matching[page * page_size : (page + 1) * page_size]
        return 200, {
            "count": len(matching),
            "page": page,
            "page_size": len(entries),
            "batches": entries,
        }


def _error(code: str, text: str) -> dict[str, str]:
    return {"code": code, "text": text}


def _constraint(text: str) -> dict[str, str]:
    return _error("syntax_constraint_violation", text)


def _batch_id() -> str:
    return "".join(secrets.choice(_ULID_ALPHABET) for _ in range(26))


@asynccontextmanager
async def running_recording_sinch(**options: Any) -> AsyncIterator[RecordingSinch]:
    """The stand-in served on the current event loop; ``options`` are RecordingSinch fields."""
    sinch = RecordingSinch(**options)
    async with live_server(sinch) as base_url:
        sinch.base_url = base_url
        yield sinch


@contextmanager
def recording_sinch(**options: Any) -> Iterator[RecordingSinch]:
    """The stand-in served from a thread of its own, for tests that block (subprocesses)."""
    with BackgroundLoop() as background:
        yield background.enter(running_recording_sinch(**options))
