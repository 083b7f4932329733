"""Messages per second for classifying and counting SMS bodies on one core.

Run: ``python bench/bench_segments.py``. Each case counts a pool of distinct texts (so no
result is a cached repeat), several rounds, and prints the median rate. The target is
100,000 messages per second for 160-character GSM-7 and 70-character UCS-2 texts.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from smsgateway.domain.compose import prepare_body
from smsgateway.domain.segments import Encoding, count_segments

POOL = 20_000
ROUNDS = 7
TARGET = 100_000

# fmt: off
WORDS = [
    "your", "code", "is", "ready", "order", "shipped", "meeting", "tomorrow", "at", "please",
    "confirm", "reply", "STOP", "to", "opt", "out", "thanks", "delivery", "window",
    "appointment", "reminder", "balance", "account", "verify", "login", "from", "new", "device",
    "Hello", "Hi", "Dear", "customer", "pick", "up", "store", "@", "#", "%", "&", "(", ")", "!",
    "?", ",", ".", ":", ";", "-", "+", "=", "/", "'quoted'", '"double"', "ÄÖÜ", "äöü", "é", "è",
    "à", "ñ", "ß", "Ω", "Δ", "£", "$", "¥", "§",
]
# fmt: on
EXTENSION = ["€5", "[ref]", "{id}", "a|b", "~10", "^", "\\"]
UCS2_ALPHABETS = [
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "的一是不了人我在有他这为之大来以个中上们",
    "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "ğüşıöçĞÜŞİÖÇ",
]
EMOJI = ["😀", "👍", "🎉", "❤️", "🚚", "✅", "🙏🏽"]


def gsm_text(rng: random.Random) -> str:
    """A 160-character GSM-7 text; about one in five holds an extension character."""
    words = [rng.choice(WORDS) for _ in range(60)]
    if rng.random() < 0.2:
        words.insert(rng.randrange(10), rng.choice(EXTENSION))
    words.append(str(rng.randrange(10**6)))
    return " ".join(reversed(words))[:160]


def ucs2_text(rng: random.Random) -> str:
    """A 70-character UCS-2 text in one script, with Latin words and sometimes emoji."""
    alphabet = rng.choice(UCS2_ALPHABETS)
    pieces: list[str] = []
    while sum(map(len, pieces)) < 80:
        roll = rng.random()
        if roll < 0.1:
            pieces.append(rng.choice(EMOJI))
        elif roll < 0.3:
            pieces.append(rng.choice(WORDS))
        else:
            pieces.append("".join(rng.choices(alphabet, k=rng.randint(2, 8))))
    return " ".join(pieces)[:70]


def rate(pool: list[str], operation: Callable[[str], object]) -> float:
    """Median messages per second of ``operation`` over ``pool``, ``ROUNDS`` times."""
    rates = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for text in pool:
            operation(text)
        rates.append(len(pool) / (time.perf_counter() - start))
    return statistics.median(rates)


def smart_prepare(text: str) -> object:
    return prepare_body(text, smart_encoding=True, max_segments=10)


def main() -> None:
    rng = random.Random(20_261_126)
    gsm = [gsm_text(rng) for _ in range(POOL)]
    ucs2 = [ucs2_text(rng) for _ in range(POOL)]
    assert all(count_segments(t).encoding is Encoding.GSM7 for t in gsm)
    assert all(count_segments(t).encoding is Encoding.UCS2 for t in ucs2)
    cases = [
        ("count_segments, GSM-7, 160 characters", gsm, count_segments),
        ("count_segments, UCS-2, 70 characters", ucs2, count_segments),
        ("prepare_body (smart encoding), GSM-7", gsm, smart_prepare),
        ("prepare_body (smart encoding), UCS-2", ucs2, smart_prepare),
    ]
    for name, pool, operation in cases:
        per_second = rate(pool, operation)
        verdict = "ok" if per_second >= TARGET else "BELOW TARGET"
        print(f"{name:<40} {per_second:>12,.0f} messages/s  {verdict}")


if __name__ == "__main__":
    main()
