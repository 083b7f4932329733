"""What text and instants the database can keep: one check for every field a caller writes.

Postgres refuses text holding U+0000, and UTF-8 has no encoding for a lone surrogate (which a
JSON ``\\ud800`` escape produces); a timestamp near year 1 or 9999 cannot be converted between
time zones. Either, left to the database, fails a statement that may carry other callers'
rows too, so every field is checked where it enters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

_UNSTORABLE: Final = re.compile("[\x00\ud800-\udfff]")
# Far wider than any schedule a message can have, far inside what converts safely.
EARLIEST_INSTANT: Final = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_INSTANT: Final = datetime(9000, 1, 1, tzinfo=UTC)


def find_unstorable(text: str) -> int | None:
    """The code-point index of the first U+0000 or lone surrogate in ``text``, or None."""
    match = _UNSTORABLE.search(text)
    return None if match is None else match.start()


def is_plausible_instant(moment: datetime) -> bool:
    """Whether an aware ``moment`` lies between 2000 and 9000 (compared without converting
    it, so that even year 1 with a positive offset cannot overflow)."""
    naive = moment.replace(tzinfo=None)
    return EARLIEST_INSTANT.replace(tzinfo=None) < naive < LATEST_INSTANT.replace(tzinfo=None)
