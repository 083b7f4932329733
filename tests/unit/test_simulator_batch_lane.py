"""The simulator's batch lane takes exactly the sends; everything else goes on to the app."""

from __future__ import annotations

import pytest

from smsgateway.simulator.batch_lane import _batches_account


@pytest.mark.parametrize(
    ("method", "path", "account"),
    [
        ("POST", "/xms/v1/plan-1/batches", "plan-1"),
        ("GET", "/xms/v1/plan-1/batches", None),
        ("POST", "/xms/v1/plan-1/batches/dry_run", None),
        ("POST", "/xms/v1/plan-1/batches/", None),
        ("POST", "/xms/v1//batches", None),
        ("POST", "/xms/v2/plan-1/batches", None),
        ("POST", "/oauth2/token", None),
    ],
)
def test_only_a_post_of_a_plans_batches_takes_the_lane(
    method: str, path: str, account: str | None
) -> None:
    scope = {"type": "http", "method": method, "path": path}

    assert _batches_account(scope) == account


def test_a_websocket_never_takes_the_lane() -> None:
    scope = {"type": "websocket", "path": "/xms/v1/plan-1/batches"}

    assert _batches_account(scope) is None
