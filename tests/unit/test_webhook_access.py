"""Which authentication guards Sinch's webhooks, from the settings alone (secure by default)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from smsgateway.observability.masking import redact
from smsgateway.services.webhook_access import (
    PathSecretSource,
    WebhookAccess,
    generate_path_secret,
    webhook_url,
)
from tests.support.settings import make_settings

REAL = {"SINCH_SERVICE_PLAN_ID": "plan", "SINCH_API_TOKEN": "token"}
SECRET = "q7Yd0mR2c9LxV4sKf1HbT8uWzE3nJ6pA"


@pytest.mark.parametrize(
    ("settings", "source", "is_open"),
    [
        ({}, PathSecretSource.NONE, True),  # the simulator: open, no setting needed
        (REAL, PathSecretSource.GENERATED, False),  # real credentials: never open by default
        ({**REAL, "webhook_path_secret": SECRET}, PathSecretSource.CONFIGURED, False),
        ({**REAL, "webhook_signing_secret": "s"}, PathSecretSource.NONE, False),
        (
            {**REAL, "webhook_basic_user": "u", "webhook_basic_password": "p"},
            PathSecretSource.NONE,
            False,
        ),
        ({**REAL, "webhook_auth": "none"}, PathSecretSource.NONE, True),
        ({**REAL, "webhook_auth": "NONE"}, PathSecretSource.NONE, True),
    ],
    ids=["simulator", "real", "configured", "signing", "basic", "none", "none_any_case"],
)
def test_the_checks_in_force(
    settings: dict[str, str], source: PathSecretSource, is_open: bool
) -> None:
    access = WebhookAccess.from_settings(make_settings(**settings))
    assert access.path_secret is source
    assert access.is_open is is_open


def test_auth_none_together_with_a_check_is_refused() -> None:
    with pytest.raises(ValidationError, match="SMSGW_WEBHOOK_AUTH=none contradicts"):
        make_settings(**REAL, webhook_auth="none", webhook_path_secret=SECRET)


def test_with_signing_batches_carry_no_url_and_the_description_names_no_secret() -> None:
    access = WebhookAccess.from_settings(
        make_settings(**REAL, webhook_signing_secret="sig-secret", webhook_path_secret=SECRET)
    )
    assert not access.per_batch_callback
    assert "sig-secret" not in access.describe()
    assert SECRET not in access.describe()


def test_a_generated_secret_passes_the_settings_own_validation() -> None:
    secrets = {generate_path_secret() for _ in range(50)}
    assert len(secrets) == 50
    for secret in secrets:
        assert re.fullmatch(r"[A-Za-z0-9_-]{24,256}", secret)
        make_settings(webhook_path_secret=secret)


def test_the_one_url() -> None:
    assert webhook_url("https://gw.example/", None) == "https://gw.example/webhooks/sinch"
    assert (
        webhook_url("https://gw.example", SECRET) == f"https://gw.example/webhooks/sinch/{SECRET}"
    )


@pytest.mark.parametrize(
    "path", ["/webhooks/sinch/", "/webhooks/sinch/delivery-reports/", "/webhooks/sinch/inbound/"]
)
def test_a_path_secret_is_masked_in_log_text(path: str) -> None:
    line = redact(f"POST https://gw.example{path}{SECRET} failed")
    assert SECRET not in line
    assert f"{path}***" in line
