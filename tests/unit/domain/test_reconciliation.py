"""When reconciliation asks Sinch again, and when it gives up: backoff, Retry-After, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.reconciliation import (
    CheckAgain,
    GiveUp,
    GiveUpReason,
    ReconcilePolicy,
    interval_after,
    lookups_needed,
    plan_next_check,
)
from smsgateway.domain.status import RecipientStatus

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
POLICY = ReconcilePolicy(first_check=900, max_interval=3600, expiry_grace=timedelta(minutes=15))


def test_the_interval_doubles_from_the_first_check_up_to_the_cap() -> None:
    top = [interval_after(POLICY, rounds, lambda: 0.999999) for rounds in (1, 2, 3, 4, 10)]
    assert [round(value) for value in top] == [900, 1800, 3600, 3600, 3600]
    assert interval_after(POLICY, 1, lambda: 0.0) == 450


@given(
    rounds=st.integers(min_value=1, max_value=10_000),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
    ahead=st.floats(min_value=0, max_value=10 * 86400),
    retry_after=st.none() | st.floats(min_value=0, max_value=86400),
)
def test_a_next_check_is_never_sooner_than_half_the_interval_nor_after_the_deadline(
    rounds: int, draw: float, ahead: float, retry_after: float | None
) -> None:
    expires_at = NOW + timedelta(seconds=ahead)
    plan = plan_next_check(
        POLICY,
        rounds=rounds,
        expires_at=expires_at,
        now=NOW,
        random=lambda: draw,
        retry_after=retry_after,
    )
    deadline = expires_at + POLICY.expiry_grace
    assert isinstance(plan, CheckAgain)
    assert plan.due_at <= deadline
    ceiling = min(3600.0, 900.0 * 2.0 ** min(rounds - 1, 64))
    wait = (plan.due_at - NOW).total_seconds()
    soonest = max(ceiling / 2, retry_after or 0.0)
    assert wait >= min(soonest, (deadline - NOW).total_seconds()) - 1e-6


def test_retry_after_is_honoured() -> None:
    plan = plan_next_check(
        POLICY,
        rounds=1,
        expires_at=NOW + timedelta(days=3),
        now=NOW,
        random=lambda: 0.0,
        retry_after=2000,
    )
    assert plan == CheckAgain(NOW + timedelta(seconds=2000))


def test_the_last_check_is_at_the_deadline_and_then_it_gives_up() -> None:
    expires_at = NOW + timedelta(seconds=60)
    plan = plan_next_check(POLICY, rounds=3, expires_at=expires_at, now=NOW, random=lambda: 0.5)
    assert plan == CheckAgain(expires_at + POLICY.expiry_grace)
    later = expires_at + POLICY.expiry_grace
    assert plan_next_check(
        POLICY, rounds=4, expires_at=expires_at, now=later, random=lambda: 0.5
    ) == GiveUp(GiveUpReason.EXPIRED)


def test_only_recipients_the_batch_report_does_not_name_are_looked_up_one_by_one() -> None:
    answered = {"+1555000001": RecipientStatus.DISPATCHED, "+1555000002": RecipientStatus.DELIVERED}
    pending = ["+1555000001", "+1555000002", "+1555000003", "+1555000004"]
    assert lookups_needed(pending, answered, limit=10) == ("+1555000003", "+1555000004")
    assert lookups_needed(pending, answered, limit=1) == ("+1555000003",)
    assert lookups_needed(pending, {}, limit=0) == ()


@pytest.mark.parametrize(
    "values",
    [
        {"first_check": 0},
        {"first_check": 600, "max_interval": 60},
        {"expiry_grace": timedelta(seconds=-1)},
        {"max_lookups": -1},
    ],
)
def test_a_policy_refuses_values_that_cannot_work(values: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must"):
        ReconcilePolicy(**values)  # type: ignore[arg-type]


def rounds_until_given_up(policy: ReconcilePolicy, expiry: timedelta, draw: float) -> int:
    """How many rounds a message that never gets a final status costs (one request each)."""
    sent = NOW
    now, rounds = sent + timedelta(seconds=policy.first_check), 0
    while True:
        rounds += 1
        plan = plan_next_check(
            policy, rounds=rounds, expires_at=sent + expiry, now=now, random=lambda: draw
        )
        if not isinstance(plan, CheckAgain):
            return rounds
        now = plan.due_at


def test_a_message_never_resolved_costs_about_a_hundred_requests_over_three_days() -> None:
    # The defaults (900 s, 3600 s cap, Sinch's 3-day expiry): 75 rounds with the longest
    # waits, 147 with the shortest; about 100 on average jitter. The README quotes these.
    defaults = ReconcilePolicy()
    assert rounds_until_given_up(defaults, timedelta(days=3), 0.999999) == 75
    assert rounds_until_given_up(defaults, timedelta(days=3), 0.0) == 147
    assert rounds_until_given_up(defaults, timedelta(days=3), 0.5) in range(95, 105)
