"""Destination policy, velocity buckets and spend caps: the pure decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsgateway.domain.counters import (
    CounterState,
    Draw,
    Ledger,
    batch_totals,
    decide,
    destination_prefix,
    fits_without_warning,
    seconds_to_period_end,
    spend_draws,
)
from smsgateway.domain.destination_policy import (
    NO_RESTRICTION,
    DestinationPolicy,
    InvalidPolicy,
    PolicyMode,
    PolicyRefusal,
    screen_recipients,
)
from smsgateway.domain.phone import NumberType
from smsgateway.domain.protection import SpendCaps, VelocityLimits, parse_protection_policy
from smsgateway.domain.recipients import normalise_recipients

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def test_an_allow_list_refuses_every_other_country() -> None:
    policy = DestinationPolicy(allowed_countries=frozenset({"US", "CA"}))
    assert policy.refusal_for("SE", NumberType.MOBILE) is PolicyRefusal.COUNTRY_NOT_ALLOWED
    assert policy.refusal_for("CA", NumberType.MOBILE) is None


def test_default_types_refuse_premium_rate_but_allow_fixed_line() -> None:
    policy = DestinationPolicy()
    assert policy.refusal_for("GB", NumberType.PREMIUM_RATE) is (
        PolicyRefusal.NUMBER_TYPE_NOT_ALLOWED
    )
    assert policy.refusal_for("GB", NumberType.FIXED_LINE) is None


def test_screening_moves_refusals_in_input_order_and_keeps_monitored_recipients() -> None:
    recipients = normalise_recipients(["+46701234567", "+12015550123", "+449012345678", "x"])
    policy = DestinationPolicy(
        allowed_countries=frozenset({"US", "GB"}), monitored_countries=frozenset({"US"})
    )
    screened = screen_recipients(recipients, policy)
    assert [r.index for r in screened.recipients.accepted] == [1]
    assert [(r.index, r.code) for r in screened.recipients.refused] == [
        (0, "country_not_allowed"),
        (2, "number_type_not_allowed"),
        (3, "not_a_number"),
    ]
    assert [hit.index for hit in screened.monitored] == [1]


def test_monitor_mode_refuses_nothing_and_reports_everything() -> None:
    recipients = normalise_recipients(["+46701234567"])
    policy = DestinationPolicy(allowed_countries=frozenset({"US"}), mode=PolicyMode.MONITOR)
    screened = screen_recipients(recipients, policy)
    assert screened.recipients.refused == ()
    assert [(hit.code, hit.enforced) for hit in screened.hits] == [
        (PolicyRefusal.COUNTRY_NOT_ALLOWED, False)
    ]


def test_a_key_can_only_narrow_its_tenants_policy() -> None:
    tenant = DestinationPolicy(allowed_countries=frozenset({"US", "CA"}), refused_types=frozenset())
    key = parse_protection_policy({"allowed_countries": ["CA", "SE"]}, base=NO_RESTRICTION)
    narrowed = tenant.narrowed_by(key.destinations)
    assert narrowed.allowed_countries == {"CA"}
    assert narrowed.mode is PolicyMode.ENFORCE
    disjoint = tenant.narrowed_by(DestinationPolicy(allowed_countries=frozenset({"SE"})))
    assert disjoint.refusal_for("US", NumberType.MOBILE) is PolicyRefusal.COUNTRY_NOT_ALLOWED
    assert disjoint.refusal_for("SE", NumberType.MOBILE) is PolicyRefusal.COUNTRY_NOT_ALLOWED


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"allowed_countries": ["XX"]}, "allowed_countries"),
        ({"refused_number_types": ["cellular"]}, "refused_number_types"),
        ({"mode": "loud"}, "mode"),
        ({"velocity": {"per_prefix": 0}}, "velocity.per_prefix"),
        ({"spend": {"daily_amount": "lots"}}, "spend.daily_amount"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_document_names_its_field(document: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidPolicy) as raised:
        parse_protection_policy(document)
    assert raised.value.field == field


def test_the_document_round_trips() -> None:
    policy = parse_protection_policy(
        {
            "allowed_countries": ["se", "NO"],
            "velocity": {"per_prefix": 10, "burst": 2},
            "spend": {"daily_segments": 1000, "monthly_amount": "50.00"},
        }
    )
    assert parse_protection_policy(policy.as_document()) == policy


def test_a_prefix_is_the_number_without_its_last_digits() -> None:
    assert destination_prefix("+46701234567", 4) == "+4670123"
    assert destination_prefix("+46701234567", 40) == "+46"


def velocity(amount: int, capacity: int = 3, per_second: float = 1.0) -> Draw:
    return Draw("v", Decimal(amount), Decimal(capacity), per_second, (0,), label="prefix")


def test_a_bucket_refuses_past_its_capacity_and_drains_with_time() -> None:
    ledger = Ledger(NOW, {})
    assert [decide(ledger, [velocity(1)]).passed for _ in range(4)] == [True] * 3 + [False]
    refused = decide(ledger, [velocity(1)])
    assert refused.velocity_refused == ((0, "prefix"),)
    assert refused.retry_after == 1
    later = Ledger(NOW + timedelta(seconds=1.5), ledger.states)
    assert decide(later, [velocity(1)]).passed


def test_a_message_takes_all_its_counters_or_none() -> None:
    ledger = Ledger(NOW, {})
    spend = Draw("s", Decimal(5), Decimal(8), label="day_segments")
    assert decide(ledger, [velocity(1), spend]).passed
    refused = decide(ledger, [velocity(1), spend])
    assert refused.spend_refused == spend
    assert ledger.states["v"].amount == 1, "the refused message took nothing"


@given(st.lists(st.integers(min_value=1, max_value=30), max_size=60), st.integers(0, 200))
def test_a_cap_is_never_overshot_and_fills_greedily(sizes: list[int], cap: int) -> None:
    ledger = Ledger(NOW, {})
    taken = 0
    for size in sizes:
        draw = Draw("s", Decimal(size), Decimal(cap), label="day_segments")
        verdict = decide(ledger, [draw])
        assert verdict.passed == (taken + size <= cap)
        taken += size if verdict.passed else 0
    assert taken <= cap


def test_the_warning_fires_once_when_the_threshold_is_crossed() -> None:
    caps = SpendCaps(daily_segments=10, warn_at=0.5)
    zone = ZoneInfo("UTC")
    ledger = Ledger(NOW, {})
    warned = []
    for _ in range(8):
        [draw] = spend_draws(caps, tenant="t", now=NOW, time_zone=zone, segments=1, amount=None)
        warned.append(bool(decide(ledger, [draw]).warnings))
    assert warned == [False, False, False, False, True, False, False, False]


def test_spend_periods_follow_the_configured_calendar() -> None:
    caps = SpendCaps(daily_segments=10, monthly_segments=100)
    late_utc = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    stockholm = ZoneInfo("Europe/Stockholm")
    keys = [
        d.key
        for d in spend_draws(
            caps, tenant="t", now=late_utc, time_zone=stockholm, segments=1, amount=None
        )
    ]
    assert keys == ["spend:t:2027-01-01:day_segments", "spend:t:2027-01:month_segments"]
    assert seconds_to_period_end("day_segments", late_utc, ZoneInfo("UTC")) == 1800


def test_velocity_limits_left_unset_do_not_loosen_a_tenants() -> None:
    tenant = VelocityLimits(per_prefix=5, window_seconds=60)
    assert tenant.narrowed_by(VelocityLimits()) == tenant
    assert tenant.narrowed_by(VelocityLimits(per_prefix=2)).per_prefix == 2


def test_a_money_cap_refuses_the_message_that_would_pass_it() -> None:
    caps = SpendCaps(daily_amount=Decimal("1.00"))
    zone = ZoneInfo("UTC")
    ledger = Ledger(NOW, {})
    outcomes = []
    for cost in ("0.40", "0.40", "0.40", "0.20"):
        draws = spend_draws(
            caps, tenant="t", now=NOW, time_zone=zone, segments=1, amount=Decimal(cost)
        )
        outcomes.append(decide(ledger, draws).passed)
    assert outcomes == [True, True, False, True]
    assert ledger.states["spend:t:2026-12-03:day_amount"].amount == Decimal("1.00")


_draws_of_one_batch = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(["prefix", "day_segments"]),
            st.integers(min_value=1, max_value=5),
        ),
        max_size=2,
        unique_by=lambda pair: pair[0],
    ),
    max_size=12,
)


@given(
    _draws_of_one_batch,
    st.integers(0, 20),
    st.integers(0, 20),
    st.integers(0, 40),
    st.sampled_from([None, 0, 5, 12]),
)
def test_the_batch_total_fits_exactly_when_every_message_passes_unwarned(
    batch: list[list[tuple[str, int]]],
    prefix_level: int,
    spend_level: int,
    capacity: int,
    warn_at: int | None,
) -> None:
    """The store's one-statement write takes a batch's totals only when they fit without
    crossing a warning threshold; then ``decide`` must pass every message in turn and warn of
    nothing, or the fast path would store what the precise one refuses."""

    def draw(label: str, amount: int) -> Draw:
        velocity = label == "prefix"
        return Draw(
            label,
            Decimal(amount),
            Decimal(capacity),
            drain_per_second=0.5 if velocity else 0.0,
            indexes=(0,) if velocity else (),
            warn_at=None if velocity or warn_at is None else Decimal(warn_at),
            label=label,
        )

    messages = [[draw(label, amount) for label, amount in draws] for draws in batch]
    states = {
        "prefix": CounterState(Decimal(prefix_level), NOW - timedelta(seconds=2)),
        "day_segments": CounterState(Decimal(spend_level), NOW),
    }
    ledger = Ledger(NOW, dict(states))
    totals = batch_totals(messages)
    assert totals is not None
    fast = all(fits_without_warning(ledger.level(total), total) for total in totals)
    verdicts = [decide(ledger, draws) for draws in messages if draws]
    precise = all(v.passed and not v.warnings for v in verdicts)
    assert fast == precise


def test_one_counter_asked_on_different_terms_leaves_the_batch_to_decide() -> None:
    assert batch_totals([[velocity(1, capacity=3)], [velocity(1, capacity=4)]]) is None
    [total] = batch_totals([[velocity(1)], [velocity(2)]]) or ()
    assert total.amount == 3
