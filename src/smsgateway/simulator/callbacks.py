"""Callback delivery: scheduled POSTs to callback URLs, retried the way Sinch retries them.

2xx is done; 5xx, 429 and transport errors are retried after base, 2·base, 4·base ... (5, 10,
20 s at Sinch's base), up to `max_retries` times; any other answer is final and not retried.
Every attempt is recorded so tests can read what was sent and what came back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Literal

import httpx

from smsgateway.rawhttp import RawTransport
from smsgateway.simulator.ids import new_id
from smsgateway.simulator.signing import signature_headers
from smsgateway.simulator.times import format_instant

logger = logging.getLogger(__name__)

AttemptOutcome = Literal["delivered", "retrying", "rejected", "gave_up"]


@dataclass(frozen=True, slots=True)
class ScheduledCallback:
    """A payload to POST at `at` (seconds since the epoch)."""

    at: float
    payload: dict[str, object]


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """One POST of one callback and what came of it."""

    delivery_id: str
    url: str
    attempt: int
    at: float
    http_status: int | None
    error: str | None
    outcome: AttemptOutcome
    payload: dict[str, object]

    def to_json(self) -> dict[str, object]:
        return {
            "delivery_id": self.delivery_id,
            "url": self.url,
            "type": self.payload.get("type"),
            "batch_id": self.payload.get("batch_id"),
            "client_reference": self.payload.get("client_reference"),
            "recipient": self.payload.get("recipient"),
            "status": self.payload.get("status"),
            "attempt": self.attempt,
            "at": format_instant(self.at),
            "http_status": self.http_status,
            "error": self.error,
            "outcome": self.outcome,
            "payload": self.payload,
        }


def retry_delay(base: float, retry_number: int, retry_after: float | None = None) -> float:
    """Delay before retry `retry_number` (1-based): base doubling, never below a Retry-After."""
    delay = base * 2.0 ** (retry_number - 1)
    return max(delay, retry_after) if retry_after is not None else delay


def is_retryable(status: int | None) -> bool:
    """5xx, 429 and no answer at all are retried; other non-2xx answers are not."""
    return status is None or status == 429 or status >= 500


class CallbackDispatcher:
    """Owns the callbacks' HTTP client and every pending callback task."""

    def __init__(
        self,
        *,
        retry_base_s: float,
        max_retries: int,
        timeout_s: float,
        signing_secret: str | None,
        log_limit: int,
        concurrency: int = 32,
    ) -> None:
        self._retry_base_s = retry_base_s
        self._max_retries = max_retries
        self._timeout_s = timeout_s
        self._concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._signing_secret = signing_secret
        self._http: RawTransport | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Per schedule key, the timers of its callbacks not yet due.
        self._schedules: dict[str, list[asyncio.TimerHandle]] = {}
        self.attempts: deque[CallbackAttempt] = deque(maxlen=log_limit)
        self.outcomes: Counter[str] = Counter()

    async def start(self) -> None:
        # Written as bytes on kept-alive connections: through httpx, whose pool re-examines
        # every connection per request, each POST cost milliseconds of CPU, and the callbacks
        # of 1,000 messages/s (two each) took more CPU than the gateway they were sent to.
        self._http = RawTransport(self._concurrency)

    async def aclose(self) -> None:
        """Cancel every pending callback and close the client."""
        await self.cancel_all()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def cancel_all(self) -> None:
        for timers in self._schedules.values():
            for timer in timers:
                timer.cancel()
        self._schedules.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def clear_log(self) -> None:
        self.attempts.clear()
        self.outcomes.clear()

    def schedule(self, key: str, url: str, callbacks: Iterable[ScheduledCallback]) -> None:
        """Send each callback at its time; `cancel_schedule(key)` drops those not yet due.

        Timers rather than a sleeping task per batch: thousands of batches in flight cost a
        heap entry each, not a coroutine."""
        if self._http is None:
            raise RuntimeError("the simulator's lifespan has not started: no callback client")
        ordered = sorted(callbacks, key=lambda item: item.at)
        if not ordered:
            return
        loop = asyncio.get_running_loop()
        # Wall-clock times to the loop's clock, once for the whole schedule.
        offset = loop.time() - time.time()
        timers: list[asyncio.TimerHandle] = []
        self._schedules[key] = timers
        for index, callback in enumerate(ordered):
            last = index == len(ordered) - 1
            timers.append(
                loop.call_at(
                    callback.at + offset, self._due, key, timers, url, callback.payload, last
                )
            )

    def cancel_schedule(self, key: str) -> None:
        for timer in self._schedules.pop(key, ()):
            timer.cancel()

    def _due(
        self,
        key: str,
        timers: list[asyncio.TimerHandle],
        url: str,
        payload: dict[str, object],
        last: bool,
    ) -> None:
        if last and self._schedules.get(key) is timers:
            del self._schedules[key]
        self.send(url, payload)

    def send(self, url: str, payload: dict[str, object]) -> None:
        """Deliver one payload now (with retries), in the background."""
        self._spawn(self._deliver(url, payload))

    def _spawn(self, coroutine: Coroutine[None, None, None]) -> asyncio.Task[None]:
        if self._http is None:
            coroutine.close()
            raise RuntimeError("the simulator's lifespan has not started: no callback client")
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._on_done)
        return task

    def _on_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            logger.error("callback task failed", exc_info=exc)

    async def _deliver(self, url: str, payload: dict[str, object]) -> None:
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
        delivery_id = new_id()
        for attempt in range(1, self._max_retries + 2):
            async with self._slots:
                status, error, retry_after = await self._post(url, body)
            if status is not None and 200 <= status < 300:
                outcome: AttemptOutcome = "delivered"
            elif not is_retryable(status):
                outcome = "rejected"
            elif attempt > self._max_retries:
                outcome = "gave_up"
            else:
                outcome = "retrying"
            self._record(
                CallbackAttempt(
                    delivery_id, url, attempt, time.time(), status, error, outcome, payload
                )
            )
            if outcome != "retrying":
                return
            await asyncio.sleep(retry_delay(self._retry_base_s, attempt, retry_after))

    async def _post(self, url: str, body: bytes) -> tuple[int | None, str | None, float | None]:
        assert self._http is not None
        headers = {"Content-Type": "application/json"}
        if self._signing_secret is not None:
            headers.update(
                signature_headers(
                    body,
                    secret=self._signing_secret,
                    nonce=new_id(),
                    timestamp=str(int(time.time())),
                )
            )
        timeout: dict[str, float | None] = dict.fromkeys(
            ("connect", "read", "write", "pool"), self._timeout_s
        )
        try:
            answer = await self._http.post(url, body, headers, timeout)
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}", None
        retry_after: float | None = None
        if answer.status == 429:
            value = next((v for k, v in answer.headers if k.lower() == b"retry-after"), b"")
            try:
                retry_after = float(value)
            except ValueError:
                retry_after = None
        return answer.status, None, retry_after

    def _record(self, attempt: CallbackAttempt) -> None:
        self.attempts.append(attempt)
        self.outcomes[attempt.outcome] += 1
        if attempt.outcome in ("rejected", "gave_up"):
            logger.info(
                "callback %s to %s %s after %d attempt(s): %s",
                attempt.delivery_id,
                attempt.url,
                attempt.outcome,
                attempt.attempt,
                attempt.http_status or attempt.error,
            )
