"""Settings for tests: built from keyword arguments only, never from the environment or .env."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from smsgateway.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


class IsolatedSettings(Settings):
    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def make_settings(database_url: str | None = None, **overrides: Any) -> Settings:
    """Settings for an app under test; its dispatcher is off unless a test turns it on."""
    values: dict[str, Any] = {"migrations_dir": MIGRATIONS_DIR, "dispatcher": "off", **overrides}
    if database_url is not None:
        values["database_url"] = database_url
    return IsolatedSettings(**values)


def simulator_settings(database_url: str, simulator: Any, **overrides: Any) -> Settings:
    """``make_settings`` for a gateway that dispatches at once (a 20 ms poll) to ``simulator``
    (anything with ``base_url``, ``plan_id`` and ``token``) as if it were Sinch, from the
    number +12025550123."""
    return make_settings(
        database_url,
        dispatcher="on",
        dispatch_poll_seconds=0.02,
        sinch_simulator="on",
        SINCH_BASE_URL=simulator.base_url,
        SINCH_SERVICE_PLAN_ID=simulator.plan_id,
        SINCH_API_TOKEN=simulator.token,
        SINCH_NUMBER="+12025550123",
        **overrides,
    )
