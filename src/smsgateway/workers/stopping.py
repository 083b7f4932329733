"""How a periodic worker waits between rounds and stops: shared by the retention job and
delivery-report reconciliation."""

from __future__ import annotations

import asyncio
import contextlib


async def stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    """Waits up to ``seconds`` for ``stopping``; whether it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopping.wait()
    return stopping.is_set()


async def finish_or_cancel(task: asyncio.Task[object] | None, deadline: float) -> None:
    """Gives a round under way ``deadline`` seconds to finish, then cancels it."""
    if task is None:
        return
    _, late = await asyncio.wait({task}, timeout=max(0.0, deadline))
    for unfinished in late:
        unfinished.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await unfinished
