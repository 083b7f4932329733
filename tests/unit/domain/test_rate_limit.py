from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.rate_limit import MovingWindowLimiter


def test_a_burst_of_the_whole_allowance_then_refusal_with_retry_after() -> None:
    limiter = MovingWindowLimiter()
    verdicts = [limiter.hit("k", 3, 60.0, now=100.0) for _ in range(4)]
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert [v.remaining for v in verdicts[:3]] == [2, 1, 0]
    assert verdicts[3].retry_after == 60.0
    assert not limiter.hit("k", 3, 60.0, now=159.0).allowed
    assert limiter.hit("k", 3, 60.0, now=160.0).allowed


def test_identities_and_limits_are_counted_apart() -> None:
    limiter = MovingWindowLimiter()
    assert limiter.hit("a", 1, 1.0, now=0.0).allowed
    assert limiter.hit("b", 1, 1.0, now=0.0).allowed
    assert not limiter.hit("a", 1, 1.0, now=0.5).allowed


@given(
    amount=st.integers(1, 20),
    period=st.floats(0.5, 100.0),
    gaps=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=200),
)
def test_no_window_of_one_period_ever_holds_more_than_the_allowance(
    amount: int, period: float, gaps: list[float]
) -> None:
    limiter = MovingWindowLimiter()
    now = 0.0
    allowed_at = []
    for gap in gaps:
        now += gap
        if limiter.hit("k", amount, period, now).allowed:
            allowed_at.append(now)
    for i, start in enumerate(allowed_at):
        inside = [t for t in allowed_at[i:] if t < start + period - 1e-9]
        assert len(inside) <= amount


def test_forgets_identities_whose_window_is_empty() -> None:
    limiter = MovingWindowLimiter(max_identities=2)
    limiter.hit("a", 1, 1.0, now=0.0)
    limiter.hit("b", 1, 1.0, now=0.0)
    assert limiter.hit("c", 1, 1.0, now=5.0).allowed
    assert limiter.hit("a", 1, 1.0, now=5.0).allowed
