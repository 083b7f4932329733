"""Keyset cursors for the list endpoints: opaque to callers, (time, key) inside."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from smsgateway.api.problems import ProblemError, ProblemField


def encode_cursor(at: datetime, key: str) -> str:
    """The cursor that continues after the item at ``at`` with ``key``."""
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{key}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (time, key) inside a cursor this API issued; 422 ``invalid_cursor`` otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, key = raw.split("|")
        parsed = datetime.fromisoformat(at)
        if parsed.tzinfo is None or not key:
            raise ValueError("incomplete cursor")
        return parsed, key
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid_cursor() from exc


def decode_uuid_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    at, key = decode_cursor(cursor)
    try:
        return at, uuid.UUID(key)
    except ValueError as exc:
        raise invalid_cursor() from exc


def invalid_cursor() -> ProblemError:
    return ProblemError(
        422,
        "invalid_cursor",
        "The cursor is not one this API returned; start again without it.",
        errors=[
            ProblemField(
                field="query.cursor",
                code="invalid_cursor",
                message="Not a cursor from a previous page.",
            )
        ],
    )
