"""Wait for a condition by polling against a deadline, never by a bare sleep."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]],
    *,
    timeout_s: float = 5.0,
    interval_s: float = 0.01,
    message: str = "condition",
) -> None:
    """Return as soon as `condition()` is true; raise TimeoutError after `timeout_s`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        outcome = condition()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if loop.time() >= deadline:
            raise TimeoutError(f"{message} not met within {timeout_s} s")
        await asyncio.sleep(interval_s)
