"""``merge`` is a join: whatever the order and repetition of reports, one final state.

The expected state is not computed with the module's own order. It is characterised instead:
the result is the starting state or one of the reports, and no report can move it any further.
"""

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from smsgateway.domain.status import (
    INITIAL_STATE,
    RecipientReport,
    RecipientState,
    RecipientStatus,
    fold_reports,
    is_final,
    merge,
    stage_of,
)

T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
# Few distinct values, so that ties (same `at`, same code) are common.
timestamps = st.one_of(st.none(), st.sampled_from([T0 + timedelta(seconds=s) for s in range(3)]))
reports = st.builds(
    RecipientReport,
    status=st.sampled_from(RecipientStatus),
    code=st.sampled_from([None, 0, 400, 401, 402, 404, 407]),
    at=timestamps,
    operator_status_at=timestamps,
    operator=st.sampled_from([None, "310260", "24001"]),
)
starts = st.one_of(st.just(INITIAL_STATE), reports.map(RecipientReport.to_state))


def as_report(state: RecipientState) -> RecipientReport:
    return RecipientReport(
        state.status, state.code, state.at, state.operator_status_at, state.operator
    )


def check_step(before: RecipientState, report: RecipientReport) -> RecipientState:
    """Apply one report and check what must hold of every single step."""
    result = merge(before, report)
    after = result.state
    assert result.previous == before
    assert stage_of(after.status) >= stage_of(before.status), "a stage regressed"
    if is_final(before.status):
        assert is_final(after.status), "an intermediate replaced a final"
    assert after in (before, report.to_state())
    assert result.changed == (after != before)
    assert (result.refused is None) == result.changed
    # Idempotent: the same report again changes nothing.
    assert not merge(after, report).changed
    return after


@settings(max_examples=300, deadline=None)
@given(st.lists(reports, max_size=8), starts, st.randoms(use_true_random=False))
def test_every_permutation_with_duplicates_folds_to_the_same_state(
    received: list[RecipientReport], start: RecipientState, rnd: random.Random
) -> None:
    expected = fold_reports(received, start)
    replayed = received + [rnd.choice(received) for _ in range(len(received) // 2)]
    rnd.shuffle(replayed)
    state = start
    for report in replayed:
        state = check_step(state, report)
    assert state == expected
    assert expected in {start, *(report.to_state() for report in received)}
    for report in received:
        assert not merge(expected, report).changed, "a report could still move the result"


@settings(max_examples=300, deadline=None)
@given(starts, reports, reports)
def test_merge_is_commutative_and_associative(
    a: RecipientState, b: RecipientReport, c: RecipientReport
) -> None:
    assert merge(merge(a, b).state, c).state == merge(merge(a, c).state, b).state
    # (a ⊔ b) ⊔ c == a ⊔ (b ⊔ c)
    assert (
        merge(merge(a, b).state, c).state == merge(a, as_report(merge(b.to_state(), c).state)).state
    )


class RecipientReportsMachine(RuleBasedStateMachine):
    """Reports for one recipient arrive in any order, some of them again and again."""

    received = Bundle("received")

    def __init__(self) -> None:
        super().__init__()
        self.state = INITIAL_STATE
        self.history: list[RecipientReport] = []

    def apply(self, report: RecipientReport) -> None:
        self.state = check_step(self.state, report)
        self.history.append(report)

    @rule(target=received, report=reports)
    def receive(self, report: RecipientReport) -> RecipientReport:
        self.apply(report)
        return report

    @rule(report=received)
    def receive_again(self, report: RecipientReport) -> None:
        before = self.state
        self.apply(report)
        assert self.state == before, "a repeated report changed the state"

    @rule(rnd=st.randoms(use_true_random=False))
    def replay_in_another_order(self, rnd: random.Random) -> None:
        shuffled = list(self.history)
        rnd.shuffle(shuffled)
        assert fold_reports(shuffled) == self.state

    @invariant()
    def no_report_moves_the_state(self) -> None:
        for report in self.history:
            assert not merge(self.state, report).changed

    @invariant()
    def state_is_the_start_or_a_report(self) -> None:
        assert self.state in {INITIAL_STATE, *(report.to_state() for report in self.history)}


RecipientReportsMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=25, deadline=None
)
TestRecipientReportsMachine = RecipientReportsMachine.TestCase
