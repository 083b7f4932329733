"""The global send cap: one token-bucket row per name, shared by every worker on the database.

The bucket refills at ``rate`` tokens per second up to ``burst``; a batch to N recipients takes
N tokens (Sinch counts recipients). A caller does not poll for tokens: it reserves them, the
balance may go below zero, and the caller sleeps until its turn (``wait_seconds``). So callers
are spaced ``N / rate`` apart in the order they reserved, with one statement per send. A
reservation that would have to wait longer than ``max_wait`` is refused and takes nothing, so
no worker sits on a claimed message for long. A batch larger than ``burst`` goes once the
bucket is full and leaves it in debt, so the long-run rate still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from smsgateway.store.pool import Connection


@dataclass(frozen=True, slots=True)
class Reservation:
    """``granted``: send after ``wait_seconds``. Otherwise ask again after ``wait_seconds``."""

    granted: bool
    wait_seconds: float


# $1 name, $2 rate (tokens/s), $3 burst, $4 tokens wanted, $5 max wait (s).
# The bucket's state (tokens, updated_at) is refilled by elapsed time when read, so a refused
# reservation need not write anything. `before` reads the snapshot only to say how long a
# refused caller should wait; the decision itself is taken on the locked, current row.
_RESERVE = """
WITH before AS (
    SELECT least($3::float8, tokens + greatest(0.0,
               extract(epoch FROM clock_timestamp() - updated_at)::float8) * $2::float8)
           AS available
    FROM send_throttle
    WHERE name = $1
),
taken AS (
    INSERT INTO send_throttle AS t (name, tokens, updated_at)
    VALUES ($1, $3::float8 - $4::float8, clock_timestamp())
    ON CONFLICT (name) DO UPDATE
    SET tokens = least($3::float8, t.tokens + greatest(0.0,
                     extract(epoch FROM clock_timestamp() - t.updated_at)::float8) * $2::float8)
                 - $4::float8,
        updated_at = greatest(t.updated_at, clock_timestamp())
    WHERE least($3::float8, t.tokens + greatest(0.0,
              extract(epoch FROM clock_timestamp() - t.updated_at)::float8) * $2::float8)
          - least($4::float8, $3::float8) >= -$5::float8 * $2::float8
    RETURNING tokens
)
SELECT (SELECT tokens FROM taken) AS balance, (SELECT available FROM before) AS available
"""


async def reserve(
    connection: Connection,
    *,
    name: str,
    rate: float,
    burst: float,
    tokens: int,
    max_wait: float,
) -> Reservation:
    """Reserves ``tokens`` from bucket ``name`` (created full on first use), in one statement."""
    if rate <= 0 or burst <= 0:
        raise ValueError("rate and burst must be positive")
    row = await connection.fetchrow(_RESERVE, name, rate, burst, tokens, max_wait)
    assert row is not None
    balance: float | None = row["balance"]
    need = min(float(tokens), burst)
    if balance is not None:
        available_then = balance + tokens
        return Reservation(granted=True, wait_seconds=max(0.0, (need - available_then) / rate))
    available: float | None = row["available"]
    if available is None:
        # Another worker created the row between our snapshot and our insert: ask again soon.
        return Reservation(granted=False, wait_seconds=1.0 / rate)
    shortfall = need - available - max_wait * rate
    return Reservation(granted=False, wait_seconds=max(shortfall / rate, 1.0 / rate))
