"""Says "database unavailable" once per outage and "database available again" once when it
ends, however many requests and polls fail in between: an outage of a minute must not write
thousands of log lines (or tracebacks) while operators look for what happened."""

from __future__ import annotations

import logging
import time

from smsgateway.observability.metric_types import Gauge

logger = logging.getLogger("smsgateway.database")

# 0 until a call fails: the gauge must not claim an outage before the first call was made.
DATABASE_UNAVAILABLE = Gauge(
    "smsgw_database_unavailable",
    "1 while calls of this process fail because Postgres cannot be reached, else 0.",
    multiprocess_mode="livemax",
)


class OutageLog:
    """One process's view of whether Postgres is reachable, logged on each change."""

    def __init__(self) -> None:
        self._down_since: float | None = None
        self._failures = 0

    @property
    def is_down(self) -> bool:
        return self._down_since is not None

    def unavailable(self, error: str) -> None:
        """A call failed because the database was away (the first failure logs)."""
        self._failures += 1
        if self._down_since is None:
            self._down_since = time.monotonic()
            DATABASE_UNAVAILABLE.set(1)
            logger.warning("database unavailable", extra={"error": error})

    def available(self) -> None:
        """A call succeeded (cheap when nothing was down)."""
        if self._down_since is None:
            return
        logger.warning(
            "database available again",
            extra={
                "after_seconds": round(time.monotonic() - self._down_since, 1),
                "failed_calls": self._failures,
            },
        )
        self._down_since = None
        self._failures = 0
        DATABASE_UNAVAILABLE.set(0)


DATABASE_OUTAGE = OutageLog()
