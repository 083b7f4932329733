"""The retry policy: full jitter within its bounds, Retry-After honoured up to its cap, bounded
attempts and an overall deadline. Properties over many draws, no real time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.sinch.retry import NO_RETRY, RetryPolicy

unit_interval = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
seconds = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)
positive_seconds = st.floats(min_value=1e-3, max_value=1e3, allow_nan=False)


@given(
    retry=st.integers(min_value=0, max_value=10_000),
    base=positive_seconds,
    cap=seconds,
    draw=unit_interval,
)
def test_backoff_is_full_jitter_within_its_ceiling(
    retry: int, base: float, cap: float, draw: float
) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap, random=lambda: draw)
    ceiling = min(cap, base * 2.0 ** min(retry, 64))

    delay = policy.backoff(retry)

    assert 0.0 <= delay <= ceiling
    assert delay == pytest.approx(draw * ceiling)


@given(retry=st.integers(min_value=0, max_value=50), base=positive_seconds, cap=positive_seconds)
def test_full_jitter_spans_zero_to_the_ceiling(retry: int, base: float, cap: float) -> None:
    ceiling = min(cap, base * 2.0**retry)

    assert RetryPolicy(base_delay=base, max_delay=cap, random=lambda: 0.0).backoff(retry) == 0.0
    top = RetryPolicy(base_delay=base, max_delay=cap, random=lambda: 1.0 - 1e-12).backoff(retry)
    assert top == pytest.approx(ceiling)


@given(retry=st.integers(min_value=0, max_value=100), retry_after=seconds, cap=seconds)
def test_retry_after_is_honoured_up_to_its_cap(retry: int, retry_after: float, cap: float) -> None:
    policy = RetryPolicy(max_retry_after=cap, random=lambda: 0.0)

    assert policy.delay(retry, retry_after) == min(retry_after, cap)


@given(retry=st.integers(min_value=0, max_value=100), retry_after=st.floats(max_value=-1e-9))
def test_a_negative_retry_after_means_now(retry: int, retry_after: float) -> None:
    assert RetryPolicy().delay(retry, retry_after) == 0.0


def test_retry_after_overrides_a_longer_or_shorter_backoff() -> None:
    policy = RetryPolicy(base_delay=10, max_delay=100, random=lambda: 0.99)

    assert policy.delay(5, retry_after=1.0) == 1.0
    assert policy.delay(0, retry_after=25.0) == 25.0


@given(max_attempts=st.integers(min_value=1, max_value=20))
def test_attempts_are_bounded(max_attempts: int) -> None:
    policy = RetryPolicy(max_attempts=max_attempts, deadline=1e9, random=lambda: 0.5)
    waits = [policy.next_delay(made, elapsed=0.0) for made in range(1, max_attempts + 5)]

    assert all(wait is not None for wait in waits[: max_attempts - 1])
    assert all(wait is None for wait in waits[max_attempts - 1 :])


@given(elapsed=seconds, retry_after=seconds)
def test_no_retry_may_end_past_the_deadline(elapsed: float, retry_after: float) -> None:
    policy = RetryPolicy(max_attempts=100, deadline=60.0, max_retry_after=1e6)

    wait = policy.next_delay(1, elapsed=elapsed, retry_after=retry_after)

    if wait is not None:
        assert elapsed + wait <= 60.0
    else:
        assert elapsed + min(retry_after, 1e6) > 60.0


def test_the_first_retry_uses_the_base_delay() -> None:
    policy = RetryPolicy(base_delay=0.5, random=lambda: 0.5)

    assert [policy.next_delay(made, elapsed=0.0) for made in (1, 2, 3)] == [0.25, 0.5, 1.0]


def test_no_retry_never_retries() -> None:
    assert NO_RETRY.next_delay(1, elapsed=0.0) is None


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"base_delay": -1.0}, {"deadline": -1.0}, {"max_retry_after": -1.0}],
)
def test_nonsense_policies_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**options)  # type: ignore[arg-type]
