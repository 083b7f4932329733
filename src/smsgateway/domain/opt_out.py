"""Reading opt-out, opt-in and help keywords in inbound (MO) messages.

A body is a keyword only when the WHOLE body is one: it is trimmed, runs of whitespace are
collapsed to one space, and the result is compared case-insensitively (Unicode casefolding) with
each list. So ``" stop "``, ``"Stop"`` and ``"STOP\\n"`` opt out; ``"please stop"`` and
``"STOP."`` do not. The lists are settings; the defaults are the usual carrier keywords.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

DEFAULT_OPT_OUT_KEYWORDS: Final = ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")
DEFAULT_OPT_IN_KEYWORDS: Final = ("START", "UNSTOP", "YES")
DEFAULT_HELP_KEYWORDS: Final = ("HELP",)


class KeywordKind(StrEnum):
    """What an inbound keyword asks for."""

    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


def normalise_keyword(text: str) -> str:
    """``text`` trimmed, its whitespace runs made one space, and casefolded."""
    return " ".join(text.split()).casefold()


def _normalised(keywords: Iterable[str]) -> frozenset[str]:
    result = frozenset(normalise_keyword(keyword) for keyword in keywords)
    if "" in result:
        raise ValueError("keywords must not be blank")
    return result


@dataclass(frozen=True, slots=True)
class KeywordSet:
    """The keywords of each kind, normalised; build it with ``KeywordSet.of``."""

    opt_out_keywords: frozenset[str]
    opt_in_keywords: frozenset[str]
    help_keywords: frozenset[str]

    @classmethod
    def of(
        cls,
        opt_out_keywords: Iterable[str] = DEFAULT_OPT_OUT_KEYWORDS,
        opt_in_keywords: Iterable[str] = DEFAULT_OPT_IN_KEYWORDS,
        help_keywords: Iterable[str] = DEFAULT_HELP_KEYWORDS,
    ) -> KeywordSet:
        """Normalise the lists; ValueError for a blank keyword or one in two lists."""
        lists = {
            KeywordKind.OPT_OUT: _normalised(opt_out_keywords),
            KeywordKind.OPT_IN: _normalised(opt_in_keywords),
            KeywordKind.HELP: _normalised(help_keywords),
        }
        kinds = list(lists)
        for index, kind in enumerate(kinds):
            for other in kinds[index + 1 :]:
                shared = lists[kind] & lists[other]
                if shared:
                    raise ValueError(
                        f"keywords {sorted(shared)} are both {kind.value} and {other.value}"
                    )
        return cls(lists[KeywordKind.OPT_OUT], lists[KeywordKind.OPT_IN], lists[KeywordKind.HELP])

    def classify(self, body: str) -> KeywordKind | None:
        """The kind of keyword ``body`` is as a whole, or None for an ordinary message."""
        text = normalise_keyword(body)
        if text in self.opt_out_keywords:
            return KeywordKind.OPT_OUT
        if text in self.opt_in_keywords:
            return KeywordKind.OPT_IN
        if text in self.help_keywords:
            return KeywordKind.HELP
        return None


DEFAULT_KEYWORDS: Final = KeywordSet.of()


def classify_inbound(body: str, keywords: KeywordSet = DEFAULT_KEYWORDS) -> KeywordKind | None:
    """The kind of keyword an inbound ``body`` is, with the default lists unless given others."""
    return keywords.classify(body)
