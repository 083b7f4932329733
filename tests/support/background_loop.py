"""An event loop in its own thread, for async resources that synchronous code must use.

Schemathesis (and Hypothesis under it) calls the API synchronously, so a server it calls cannot
run on the test's own event loop, which is idle while a synchronous test runs:

    with BackgroundLoop() as background:
        base_url = background.enter(live_server(app))
        key = background.run(create_key())
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")


class BackgroundLoop:
    """Runs coroutines on a private loop; context managers entered here exit in reverse order."""

    def __init__(self, *, timeout_s: float = 30.0) -> None:
        self._timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stack = AsyncExitStack()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            self.run(self._stack.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(self._timeout_s)
            self._loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs ``coroutine`` on the background loop and returns its result (or raises)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(self._timeout_s)

    def enter(self, manager: AbstractAsyncContextManager[T]) -> T:
        """Enters ``manager`` on the background loop; it exits when this loop is left."""
        return self.run(self._stack.enter_async_context(manager))
