from __future__ import annotations

import base64
import importlib.util
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from smsgateway.services.retention import RetentionPolicy
from smsgateway.settings import Settings, default_workers, describe_settings_error
from tests.support.settings import IsolatedSettings

EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def test_tutorial_names_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINCH_SERVICE_PLAN_ID", "plan-1")
    monkeypatch.setenv("SINCH_API_TOKEN", "tok-secret")
    monkeypatch.setenv("SINCH_NUMBER", "+12025550123")
    monkeypatch.setenv("SINCH_REGION", "EU")
    monkeypatch.setenv("PORT", "3000")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sinch_service_plan_id == "plan-1"
    assert settings.sinch_number == "+12025550123"
    assert settings.sinch_region == "eu"
    assert settings.port == 3000
    assert settings.sinch_api_token is not None
    assert settings.sinch_api_token.get_secret_value() == "tok-secret"
    assert "tok-secret" not in repr(settings)


def test_the_embedded_database_is_used_only_without_a_database_url() -> None:
    assert IsolatedSettings().uses_embedded_database
    assert not IsolatedSettings(database_url="postgresql://x@y/z").uses_embedded_database


def test_a_wrong_region_is_one_line_naming_the_setting_and_the_allowed_values() -> None:
    with pytest.raises(ValidationError) as caught:
        IsolatedSettings(SINCH_REGION="xx")
    assert describe_settings_error(caught.value) == [
        "configuration error: SINCH_REGION='xx' is not valid; allowed values: us, eu, au, br or ca"
    ]


def test_gateway_settings_are_named_by_their_environment_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        IsolatedSettings(workers=0, log_level="LOUD")
    lines = describe_settings_error(caught.value)
    assert any(line.startswith("configuration error: SMSGW_WORKERS=0") for line in lines)
    assert any("SMSGW_LOG_LEVEL='LOUD'" in line and "INFO" in line for line in lines)


def test_a_refused_secret_is_never_echoed() -> None:
    with pytest.raises(ValidationError) as caught:
        IsolatedSettings(SINCH_API_TOKEN=12345)
    [line] = describe_settings_error(caught.value)
    assert line.startswith("configuration error: SINCH_API_TOKEN is not valid")
    assert "12345" not in line


def test_every_setting_is_documented_in_env_example() -> None:
    documented = EXAMPLE.read_text()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        env_name = alias.choices[0] if alias is not None else f"SMSGW_{name.upper()}"  # type: ignore[union-attr]
        assert str(env_name) in documented, f"{env_name} is missing from .env.example"


def test_env_example_itself_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(Settings.model_fields):
        monkeypatch.delenv(key.upper(), raising=False)
    settings = Settings(_env_file=EXAMPLE)  # type: ignore[call-arg]
    assert settings.port == 8000
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.uses_embedded_database
    assert settings.sinch_api_token is None
    assert settings.sinch_base_url is None


def test_reconciliation_settings_are_validated_in_one_line_each() -> None:
    settings = IsolatedSettings()
    assert (settings.reconcile, settings.reconcile_after_seconds) == ("on", 900.0)
    assert settings.reconcile_max_interval_seconds == 3600.0
    with pytest.raises(ValidationError) as caught:
        IsolatedSettings(reconcile_after_seconds=600, reconcile_max_interval_seconds=60)
    [line] = describe_settings_error(caught.value)
    assert "SMSGW_RECONCILE_MAX_INTERVAL_SECONDS must be at least" in line
    with pytest.raises(ValidationError) as caught:
        IsolatedSettings(reconcile="sometimes", reconcile_batch_size=0)
    lines = describe_settings_error(caught.value)
    assert any(
        line.startswith("configuration error: SMSGW_RECONCILE='sometimes'") for line in lines
    )
    assert any("SMSGW_RECONCILE_BATCH_SIZE=0" in line for line in lines)


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 1), (3, 2), (8, 2)])
def test_api_workers_leave_a_cpu_to_the_dispatch_process_up_to_two(
    monkeypatch: pytest.MonkeyPatch, cpus: int, workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)

    assert default_workers() == workers
    assert IsolatedSettings().workers == workers


OLD_CALLBACK_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
NEW_CALLBACK_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()


def test_callback_secrets_are_a_whsec_list_for_rotation() -> None:
    assert IsolatedSettings().callback_secrets == ()
    rotating = IsolatedSettings(
        callback_signing_secrets=f"{NEW_CALLBACK_SECRET}, {OLD_CALLBACK_SECRET}"
    )
    assert [s.serialise() for s in rotating.callback_secrets] == [
        NEW_CALLBACK_SECRET,
        OLD_CALLBACK_SECRET,
    ]
    spaced = IsolatedSettings(callback_signing_secrets=f" {NEW_CALLBACK_SECRET}  ")
    assert len(spaced.callback_secrets) == 1
    assert NEW_CALLBACK_SECRET.removeprefix("whsec_") not in repr(rotating)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"callback_signing_secrets": "plain-text-secret-0123456789"},
            "SMSGW_CALLBACK_SIGNING_SECRETS is not valid; secret 1: a signing secret starts "
            "with whsec_",
        ),
        (
            {"callback_signing_secrets": f"{OLD_CALLBACK_SECRET} whsec_c2hvcnQ="},
            "SMSGW_CALLBACK_SIGNING_SECRETS is not valid; secret 2: a signing secret encodes "
            "24 to 64 bytes, not 5",
        ),
        (
            {"callback_signing_secrets": [OLD_CALLBACK_SECRET, OLD_CALLBACK_SECRET]},
            "SMSGW_CALLBACK_SIGNING_SECRETS is not valid; a secret is listed twice",
        ),
        (
            {"callback_signing_secret": "plain-text-secret-0123456789"},
            "SMSGW_CALLBACK_SIGNING_SECRET is not valid; callbacks are now signed the Standard "
            "Webhooks way",
        ),
    ],
)
def test_wrong_callback_secrets_are_one_line_that_never_shows_them(
    overrides: dict[str, object], expected: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        IsolatedSettings(**overrides)
    [line] = describe_settings_error(caught.value)
    assert line.startswith(f"configuration error: {expected}")
    assert "plain-text-secret" not in line
    assert OLD_CALLBACK_SECRET.removeprefix("whsec_") not in line


@pytest.mark.parametrize(
    ("counters_url", "rate_limit_url", "expected"),
    [
        (None, None, None),
        (None, "memory://", None),
        (None, "redis://cache:6379/0", "redis://cache:6379/0"),
        ("postgres", "redis://cache:6379/0", None),
        ("redis://counters:6379/2", None, "redis://counters:6379/2"),
        ("redis://counters:6379/2", "redis://cache:6379/0", "redis://counters:6379/2"),
    ],
)
def test_velocity_counters_follow_the_request_limits_redis_unless_told_otherwise(
    counters_url: str | None, rate_limit_url: str | None, expected: str | None
) -> None:
    settings = IsolatedSettings(
        protection_counters_url=counters_url, rate_limit_storage_url=rate_limit_url
    )
    assert settings.velocity_counters_url == expected


def test_protection_counters_url_is_postgres_or_redis() -> None:
    with pytest.raises(ValidationError, match="SMSGW_PROTECTION_COUNTERS_URL"):
        IsolatedSettings(protection_counters_url="memcached://cache:11211")


def test_a_redis_without_the_redis_package_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_find_spec = importlib.util.find_spec

    def without_redis(name: str, *args: Any) -> Any:
        return None if name == "redis" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_redis)
    with pytest.raises(ValidationError, match=r"pip install 'sinch-smsgateway\[redis\]'"):
        IsolatedSettings(rate_limit_storage_url="redis://cache:6379/0")
    assert IsolatedSettings(rate_limit_storage_url="memory://").velocity_counters_url is None


def test_the_retention_pause_is_given_in_milliseconds_and_never_negative() -> None:
    assert RetentionPolicy.from_settings(IsolatedSettings()).batch_pause == timedelta(
        milliseconds=100
    )
    paused = IsolatedSettings(retention_pause_ms=250)
    assert RetentionPolicy.from_settings(paused).batch_pause == timedelta(milliseconds=250)
    assert RetentionPolicy.from_settings(IsolatedSettings(retention_pause_ms=0)).batch_pause == (
        timedelta(0)
    )
    with pytest.raises(ValidationError, match="retention_pause_ms"):
        IsolatedSettings(retention_pause_ms=-1)


def test_the_batch_linger_reaches_the_dispatcher_in_seconds_and_is_never_negative() -> None:
    from smsgateway.components import dispatch_config
    from smsgateway.services.webhook_access import WebhookAccess, WebhookPathSecret

    def linger(settings: Settings) -> float:
        # No pool: the secret is not read to build the configuration.
        secret = WebhookPathSecret(None, WebhookAccess.from_settings(settings))  # type: ignore[arg-type]
        return dispatch_config(settings, secret).policy().record_linger_seconds

    assert linger(IsolatedSettings()) == 0.005
    assert linger(IsolatedSettings(batch_linger_ms=0)) == 0
    with pytest.raises(ValidationError, match="batch_linger_ms"):
        IsolatedSettings(batch_linger_ms=-1)
