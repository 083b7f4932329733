"""The retry policy: full-jitter delays within their cap, Retry-After honoured, giving up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.backoff import (
    BackoffPolicy,
    GiveUp,
    GiveUpReason,
    RetryAt,
    plan_retry,
    retry_delay,
)

POLICY = BackoffPolicy(base_delay=1.0, max_delay=300.0, max_retry_after=600.0)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

unit_draws = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
policies = st.builds(
    BackoffPolicy,
    base_delay=st.floats(min_value=0.0, max_value=60.0),
    max_delay=st.floats(min_value=0.0, max_value=3600.0),
    max_retry_after=st.floats(min_value=0.0, max_value=3600.0),
)


@given(policy=policies, retry=st.integers(min_value=0, max_value=10_000), draw=unit_draws)
def test_the_delay_stays_within_zero_and_the_cap(
    policy: BackoffPolicy, retry: int, draw: float
) -> None:
    delay = retry_delay(policy, retry, lambda: draw)

    assert 0.0 <= delay <= policy.max_delay
    assert delay <= policy.base_delay * 2.0 ** min(retry, 64)


@given(
    policy=policies,
    retry=st.integers(min_value=0, max_value=100),
    retry_after=st.floats(min_value=0.0, max_value=1e6),
    draw=unit_draws,
)
def test_retry_after_is_honoured_up_to_its_cap(
    policy: BackoffPolicy, retry: int, retry_after: float, draw: float
) -> None:
    delay = retry_delay(policy, retry, lambda: draw, retry_after)

    assert delay == min(retry_after, policy.max_retry_after)


@given(retry=st.integers(min_value=0, max_value=20), draw=unit_draws)
def test_the_ceiling_doubles_per_retry(retry: int, draw: float) -> None:
    assert retry_delay(POLICY, retry, lambda: draw) == pytest.approx(draw * min(300.0, 2.0**retry))


def test_nan_retry_after_falls_back_to_backoff() -> None:
    assert retry_delay(POLICY, 3, lambda: 0.5, float("nan")) == 4.0


@given(
    attempts=st.integers(min_value=1, max_value=50),
    age_s=st.floats(min_value=0, max_value=86_400 * 2),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e5),
    expires_in_s=st.none() | st.floats(min_value=-1e5, max_value=1e5),
    draw=unit_draws,
)
def test_a_planned_retry_is_never_past_the_deadlines(
    attempts: int,
    age_s: float,
    retry_after: float | None,
    expires_in_s: float | None,
    draw: float,
) -> None:
    accepted_at = NOW - timedelta(seconds=age_s)
    expire_at = None if expires_in_s is None else NOW + timedelta(seconds=expires_in_s)

    plan = plan_retry(
        POLICY,
        attempts=attempts,
        accepted_at=accepted_at,
        expire_at=expire_at,
        now=NOW,
        random=lambda: draw,
        retry_after=retry_after,
    )

    if isinstance(plan, RetryAt):
        assert NOW <= plan.due_at <= accepted_at + POLICY.max_age
        assert expire_at is None or plan.due_at < expire_at
        if retry_after is not None:
            assert plan.delay >= min(retry_after, POLICY.max_retry_after)
    else:
        deadline_passed = accepted_at + POLICY.max_age <= NOW
        expiring = expire_at is not None and expire_at <= NOW + timedelta(
            seconds=retry_delay(POLICY, attempts - 1, lambda: draw, retry_after)
        )
        assert deadline_passed or expiring or retry_after is not None


def test_past_expire_at_gives_up_as_expired() -> None:
    plan = plan_retry(
        POLICY,
        attempts=1,
        accepted_at=NOW - timedelta(minutes=5),
        expire_at=NOW - timedelta(seconds=1),
        now=NOW,
        random=lambda: 0.5,
    )
    assert plan == GiveUp(GiveUpReason.EXPIRED)


def test_a_retry_after_beyond_expire_at_gives_up() -> None:
    plan = plan_retry(
        POLICY,
        attempts=1,
        accepted_at=NOW,
        expire_at=NOW + timedelta(seconds=30),
        now=NOW,
        random=lambda: 0.5,
        retry_after=60,
    )
    assert plan == GiveUp(GiveUpReason.EXPIRED)


def test_the_max_age_deadline_gets_one_last_try_then_gives_up() -> None:
    accepted_at = NOW - POLICY.max_age + timedelta(seconds=10)

    last = plan_retry(
        POLICY, attempts=12, accepted_at=accepted_at, expire_at=None, now=NOW, random=lambda: 0.9
    )
    after = plan_retry(
        POLICY,
        attempts=13,
        accepted_at=accepted_at,
        expire_at=None,
        now=NOW + timedelta(seconds=10),
        random=lambda: 0.9,
    )

    assert last == RetryAt(delay=10.0, due_at=accepted_at + POLICY.max_age)
    assert after == GiveUp(GiveUpReason.MAX_AGE)


def test_max_attempts_gives_up() -> None:
    policy = BackoffPolicy(max_attempts=3)

    def plan(attempts: int) -> RetryAt | GiveUp:
        return plan_retry(
            policy, attempts=attempts, accepted_at=NOW, expire_at=None, now=NOW, random=lambda: 0.5
        )

    assert isinstance(plan(2), RetryAt)
    assert plan(3) == GiveUp(GiveUpReason.MAX_ATTEMPTS)


@pytest.mark.parametrize(
    "fields",
    [{"base_delay": -1}, {"max_age": timedelta(0)}, {"max_attempts": 0}],
)
def test_nonsense_policies_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        BackoffPolicy(**fields)


@given(
    attempts=st.integers(min_value=1, max_value=50),
    min_delay=st.floats(min_value=0, max_value=3600),
    draw=unit_draws,
)
def test_a_least_wait_holds_whatever_the_backoff_drew(
    attempts: int, min_delay: float, draw: float
) -> None:
    plan = plan_retry(
        POLICY,
        attempts=attempts,
        accepted_at=NOW,
        expire_at=None,
        now=NOW,
        random=lambda: draw,
        min_delay=min_delay,
    )

    assert isinstance(plan, RetryAt)
    assert plan.delay >= min_delay
    assert plan.due_at == NOW + timedelta(seconds=plan.delay)


def test_a_least_wait_past_expire_at_gives_up_as_expired() -> None:
    plan = plan_retry(
        POLICY,
        attempts=1,
        accepted_at=NOW,
        expire_at=NOW + timedelta(seconds=5),
        now=NOW,
        random=lambda: 0.0,
        min_delay=10.0,
    )
    assert plan == GiveUp(GiveUpReason.EXPIRED)
