"""An outage is logged once when it starts and once when it ends, whatever fails between."""

from __future__ import annotations

import logging

import pytest

from smsgateway.observability.outage import OutageLog


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "smsgateway.database"]


def test_many_failures_are_one_line_and_recovery_another(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog()
    caplog.set_level(logging.DEBUG, logger="smsgateway.database")

    outage.available()
    for _ in range(500):
        outage.unavailable("connection refused")
    assert outage.is_down
    outage.available()
    outage.available()

    assert lines(caplog) == ["database unavailable", "database available again"]
    recovered = [r for r in caplog.records if r.getMessage() == "database available again"]
    assert recovered[0].failed_calls == 500  # type: ignore[attr-defined]
    assert not outage.is_down


def test_a_second_outage_is_logged_again(caplog: pytest.LogCaptureFixture) -> None:
    outage = OutageLog()
    caplog.set_level(logging.DEBUG, logger="smsgateway.database")

    for _ in range(2):
        outage.unavailable("gone")
        outage.unavailable("still gone")
        outage.available()

    assert lines(caplog) == ["database unavailable", "database available again"] * 2
