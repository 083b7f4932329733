"""Statuses, Sinch's codes, the merge rules one by one, and the message's derived status."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from smsgateway.domain.status import (
    FINAL_STATUSES,
    INITIAL_STATE,
    MergeRefusal,
    MessageStatus,
    RecipientReport,
    RecipientState,
    RecipientStatus,
    Stage,
    derive_message_status,
    describe_code,
    fold_reports,
    is_final,
    merge,
    parse_wire_status,
    stage_of,
)

S = RecipientStatus
M = MessageStatus
T0 = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1)
T2 = T0 + timedelta(seconds=2)

# Typed again from the initial migration's CHECK constraints.
DB_RECIPIENT_STATUSES = {
    "queued", "scheduled", "submitted", "dispatched", "delivered", "failed",
    "rejected", "aborted", "expired", "cancelled", "deleted", "unknown", "opted_out",
}  # fmt: skip
DB_MESSAGE_STATUSES = {
    "queued", "scheduled", "submitted", "delivered", "partially_delivered",
    "failed", "rejected", "expired", "cancelled",
}  # fmt: skip


def state(status: S, code: int | None = None, at: datetime | None = None) -> RecipientState:
    return RecipientState(status, code, at)


def report(status: S, code: int | None = None, at: datetime | None = None) -> RecipientReport:
    return RecipientReport(status, code, at)


def test_status_values_are_those_the_database_allows() -> None:
    assert {status.value for status in RecipientStatus} == DB_RECIPIENT_STATUSES
    assert {status.value for status in MessageStatus} == DB_MESSAGE_STATUSES


@pytest.mark.parametrize(
    ("status", "stage"),
    [
        (S.QUEUED, Stage.QUEUED),
        (S.SCHEDULED, Stage.SCHEDULED),
        (S.SUBMITTED, Stage.SUBMITTED),
        (S.DISPATCHED, Stage.DISPATCHED),
        *((status, Stage.FINAL) for status in sorted(FINAL_STATUSES)),
    ],
)
def test_every_status_has_a_stage(status: S, stage: Stage) -> None:
    assert stage_of(status) is stage
    assert is_final(status) is (stage is Stage.FINAL)


def test_finals_are_sinch_finals_and_opted_out() -> None:
    assert {status.value for status in FINAL_STATUSES} == {
        "delivered", "failed", "rejected", "aborted", "cancelled", "expired", "deleted",
        "unknown", "opted_out",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Queued", S.QUEUED),
        ("Dispatched", S.DISPATCHED),
        ("Delivered", S.DELIVERED),
        ("Failed", S.FAILED),
        ("Rejected", S.REJECTED),
        ("Aborted", S.ABORTED),
        ("Cancelled", S.CANCELLED),
        ("Canceled", S.CANCELLED),
        ("Expired", S.EXPIRED),
        ("Deleted", S.DELETED),
        ("Unknown", S.UNKNOWN),
        ("DELIVERED", S.DELIVERED),
        ("delivered", S.DELIVERED),
        (" dElIvErEd\n", S.DELIVERED),
    ],
)
def test_wire_statuses_are_read_in_any_case(raw: str, status: S) -> None:
    parsed = parse_wire_status(raw)
    assert parsed.status is status
    assert parsed.recognised
    assert parsed.raw == raw


@pytest.mark.parametrize("raw", ["", "Sent", "Submitted", "OptedOut", "Délivré", "0"])
def test_unrecognised_wire_status_is_unknown_with_the_raw_value(raw: str) -> None:
    parsed = parse_wire_status(raw)
    assert parsed.status is S.UNKNOWN
    assert not parsed.recognised
    assert parsed.raw == raw


@pytest.mark.parametrize(
    ("code", "meaning"),
    [
        (0, "delivered"),
        (400, "queued"),
        (401, "dispatched"),
        (402, "message unroutable"),
        (403, "internal error"),
        (404, "temporary delivery failure"),
        (405, "unmatched parameter"),
        (406, "internal expiry"),
        (407, "cancelled"),
        (408, "internal reject"),
        (410, "unmatched default originator"),
        (411, "exceeded parts limit"),
        (412, "unprovisioned region"),
        (413, "blocked account"),
    ],
)
def test_sinch_codes_have_meanings(code: int, meaning: str) -> None:
    assert describe_code(code) == meaning


@pytest.mark.parametrize("code", [414, 416, 418])
def test_mms_only_codes_say_so(code: int) -> None:
    assert describe_code(code) == "MMS-only failure"


@pytest.mark.parametrize("code", [1, 8, 409, 419, 999, -1])
def test_other_codes_have_no_meaning(code: int) -> None:
    assert describe_code(code) is None


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([S.SUBMITTED, S.DISPATCHED, S.DELIVERED], S.DELIVERED),
        ([S.SUBMITTED, S.DELIVERED], S.DELIVERED),  # Dispatched may be skipped
        ([S.SCHEDULED, S.SUBMITTED], S.SUBMITTED),
        ([S.QUEUED], S.QUEUED),
        ([S.OPTED_OUT], S.OPTED_OUT),
    ],
)
def test_reports_move_a_recipient_forward(steps: list[S], expected: S) -> None:
    current = INITIAL_STATE
    for status in steps:
        result = merge(current, report(status))
        assert result.changed == (status is not current.status)
        current = result.state
    assert current.status is expected


@pytest.mark.parametrize("final", sorted(FINAL_STATUSES))
@pytest.mark.parametrize("intermediate", [S.QUEUED, S.SCHEDULED, S.SUBMITTED, S.DISPATCHED])
def test_an_intermediate_never_overwrites_a_final(final: S, intermediate: S) -> None:
    current = state(final, at=T0)
    result = merge(current, report(intermediate, at=T2))  # even when stamped later
    assert result.state == current
    assert not result.changed
    assert result.refused is MergeRefusal.FINAL_ALREADY


@pytest.mark.parametrize(
    ("current", "late"),
    [
        (S.DISPATCHED, S.SUBMITTED),
        (S.DISPATCHED, S.QUEUED),
        (S.SUBMITTED, S.QUEUED),  # Sinch's Queued after we recorded the hand-over
        (S.SUBMITTED, S.SCHEDULED),
        (S.SCHEDULED, S.QUEUED),
    ],
)
def test_a_later_stage_never_regresses(current: S, late: S) -> None:
    result = merge(state(current, at=T0), report(late, 400, at=T2))
    assert result.state.status is current
    assert result.refused is MergeRefusal.EARLIER_STAGE


def test_a_duplicate_changes_nothing() -> None:
    delivered = report(S.DELIVERED, 0, T1)
    first = merge(state(S.DISPATCHED, 401, T0), delivered)
    again = merge(first.state, delivered)
    assert first.changed
    assert again.state == first.state
    assert not again.changed
    assert again.refused is MergeRefusal.DUPLICATE


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (report(S.FAILED, 404, T1), report(S.DELIVERED, 0, T2)),
        (report(S.DELIVERED, 0, T1), report(S.UNKNOWN, None, T2)),  # Sinch's latest word wins
        (report(S.UNKNOWN, None, T1), report(S.EXPIRED, 406, T2)),
        (report(S.DISPATCHED, 401, T1), report(S.DISPATCHED, 401, T2)),
        (report(S.DELIVERED, 0, None), report(S.FAILED, 402, T0)),  # a known `at` beats none
    ],
)
def test_between_two_reports_of_a_stage_the_later_at_wins(
    earlier: RecipientReport, later: RecipientReport
) -> None:
    in_order = fold_reports([earlier, later], state(S.SUBMITTED))
    reversed_ = fold_reports([later, earlier], state(S.SUBMITTED))
    assert in_order == reversed_ == later.to_state()
    result = merge(later.to_state(), earlier)
    assert result.refused is MergeRefusal.SUPERSEDED


PRECEDENCE_HIGH_TO_LOW = [
    S.DELIVERED,
    S.FAILED,
    S.REJECTED,
    S.ABORTED,
    S.EXPIRED,
    S.CANCELLED,
    S.DELETED,
    S.OPTED_OUT,
    S.UNKNOWN,
]


def test_precedence_list_covers_every_final() -> None:
    assert set(PRECEDENCE_HIGH_TO_LOW) == FINAL_STATUSES


@pytest.mark.parametrize("at", [T1, None])
@pytest.mark.parametrize(
    ("higher", "lower"),
    [
        (PRECEDENCE_HIGH_TO_LOW[i], PRECEDENCE_HIGH_TO_LOW[j])
        for i in range(len(PRECEDENCE_HIGH_TO_LOW))
        for j in range(i + 1, len(PRECEDENCE_HIGH_TO_LOW))
    ],
)
def test_finals_at_the_same_time_are_decided_by_precedence(
    higher: S, lower: S, at: datetime | None
) -> None:
    assert merge(state(lower, at=at), report(higher, at=at)).state.status is higher
    assert merge(state(higher, at=at), report(lower, at=at)).state.status is higher


@pytest.mark.parametrize(
    ("winner", "loser"),
    [
        (RecipientState(S.FAILED, 402, T1), RecipientState(S.FAILED, None, T1)),
        (RecipientState(S.FAILED, 404, T1), RecipientState(S.FAILED, 402, T1)),
        (
            RecipientState(S.DELIVERED, 0, T1, T0),
            RecipientState(S.DELIVERED, 0, T1, None),
        ),
        (
            RecipientState(S.DELIVERED, 0, T1, T1),
            RecipientState(S.DELIVERED, 0, T1, T0),
        ),
        (
            RecipientState(S.DELIVERED, 0, T1, T0, "310260"),
            RecipientState(S.DELIVERED, 0, T1, T0, None),
        ),
        (
            RecipientState(S.DELIVERED, 0, T1, T0, "310260"),
            RecipientState(S.DELIVERED, 0, T1, T0, "24001"),
        ),
    ],
)
def test_remaining_ties_are_broken_by_code_then_operator_fields(
    winner: RecipientState, loser: RecipientState
) -> None:
    as_report = {
        s: RecipientReport(s.status, s.code, s.at, s.operator_status_at, s.operator)
        for s in (winner, loser)
    }
    assert merge(loser, as_report[winner]).state == winner
    assert merge(winner, as_report[loser]).state == winner
    assert merge(winner, as_report[loser]).refused is MergeRefusal.SUPERSEDED


def test_status_changed_is_about_the_status_only() -> None:
    first = merge(state(S.DISPATCHED, 401, T0), report(S.DISPATCHED, 401, T1))
    assert first.changed
    assert not first.status_changed
    second = merge(first.state, report(S.DELIVERED, 0, T2))
    assert second.status_changed
    assert second.previous == first.state


def test_timestamps_must_be_aware_and_are_kept_in_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        RecipientReport(S.DELIVERED, at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="operator_status_at"):
        RecipientState(S.DELIVERED, operator_status_at=datetime(2026, 1, 1))
    cet = timezone(timedelta(hours=1))
    local = RecipientReport(S.DELIVERED, 0, datetime(2026, 1, 1, 11, tzinfo=cet))
    assert local.at == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert local.at is not None
    assert local.at.tzinfo is UTC
    assert merge(state(S.DELIVERED, 0, datetime(2026, 1, 1, 10, tzinfo=UTC)), local).refused is (
        MergeRefusal.DUPLICATE
    )


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([S.QUEUED], M.QUEUED),
        ([S.QUEUED, S.QUEUED], M.QUEUED),
        ([S.SCHEDULED, S.SCHEDULED], M.SCHEDULED),
        ([S.SCHEDULED, S.QUEUED], M.QUEUED),
        ([S.OPTED_OUT, S.QUEUED], M.QUEUED),
        ([S.OPTED_OUT, S.SCHEDULED], M.SCHEDULED),
        ([S.SUBMITTED], M.SUBMITTED),
        ([S.SUBMITTED, S.QUEUED], M.SUBMITTED),
        ([S.DISPATCHED, S.DELIVERED], M.SUBMITTED),
        ([S.DELIVERED, S.SUBMITTED, S.FAILED], M.SUBMITTED),
        ([S.DELIVERED], M.DELIVERED),
        ([S.DELIVERED, S.DELIVERED], M.DELIVERED),
        ([S.DELIVERED, S.FAILED], M.PARTIALLY_DELIVERED),
        ([S.DELIVERED, S.OPTED_OUT], M.PARTIALLY_DELIVERED),
        ([S.DELIVERED, S.EXPIRED, S.UNKNOWN], M.PARTIALLY_DELIVERED),
        ([S.FAILED], M.FAILED),
        ([S.FAILED, S.ABORTED], M.FAILED),
        ([S.UNKNOWN], M.FAILED),
        ([S.DELETED], M.FAILED),
        ([S.ABORTED], M.FAILED),
        ([S.EXPIRED, S.EXPIRED], M.EXPIRED),
        ([S.REJECTED], M.REJECTED),
        ([S.OPTED_OUT], M.REJECTED),
        ([S.OPTED_OUT, S.REJECTED], M.REJECTED),
        ([S.CANCELLED, S.CANCELLED], M.CANCELLED),
        ([S.EXPIRED, S.REJECTED], M.FAILED),
        ([S.CANCELLED, S.EXPIRED], M.FAILED),
    ],
)
def test_message_status_is_derived_from_its_recipients(statuses: list[S], expected: M) -> None:
    assert derive_message_status(statuses) is expected
    assert derive_message_status(reversed(statuses)) is expected


def test_a_message_without_recipients_has_no_status() -> None:
    with pytest.raises(ValueError, match="at least one recipient"):
        derive_message_status([])
