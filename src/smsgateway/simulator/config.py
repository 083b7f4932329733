"""The simulator's configuration: accounts, delivery behaviour, callback retries and faults.

`SimulatorConfig` is fixed for the life of an app; `FaultSettings` is its initial fault set,
which `PUT /_admin/faults` replaces at run time.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

Probability = float


class Outcome(StrEnum):
    """The final fate of one recipient's message; the wire status and code are in lifecycle."""

    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    REJECTED = "rejected"
    ABORTED = "aborted"


class FaultSettings(BaseModel):
    """Faults injected into the Sinch API (`/xms/...`); the admin API replaces them at run time.

    The five error rates partition one draw per request, so they must add up to at most 1.
    They apply to `scope` ("send": only `POST .../batches`; "all": every Sinch API call), and
    stop after `max_faults` injected errors when that is set. Latency applies to every call.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    server_error_rate: Probability = Field(default=0.0, ge=0, le=1)
    server_error_status: int = Field(default=500, ge=500, le=599)
    rate_limit_rate: Probability = Field(default=0.0, ge=0, le=1)
    retry_after_s: int = Field(default=1, ge=0)
    # The batch is recorded, then the request is never answered: the "unknown outcome" case.
    timeout_rate: Probability = Field(default=0.0, ge=0, le=1)
    # The connection is dropped after the status line and part of the body.
    reset_rate: Probability = Field(default=0.0, ge=0, le=1)
    reset_after_processing: bool = True
    # 400 syntax_constraint_violation before the batch is recorded: a refusal, never retried.
    refusal_rate: Probability = Field(default=0.0, ge=0, le=1)
    scope: Literal["send", "all"] = "send"
    max_faults: int | None = Field(default=None, ge=0)
    # Sinch counts a batch to N recipients as N messages; above the cap the answer is 429.
    mps_cap: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _rates_fit_one_draw(self) -> Self:
        if self.error_rate > 1.0 + 1e-9:
            raise ValueError("the fault rates must add up to at most 1")
        return self

    @property
    def error_rate(self) -> float:
        return (
            self.server_error_rate
            + self.rate_limit_rate
            + self.timeout_rate
            + self.reset_rate
            + self.refusal_rate
        )


DEFAULT_OUTCOME_MIX: dict[Outcome, float] = {
    Outcome.DELIVERED: 0.90,
    Outcome.FAILED: 0.05,
    Outcome.EXPIRED: 0.03,
    Outcome.REJECTED: 0.02,
}


class SimulatorConfig(BaseModel):
    """Everything a simulator app is built from; safe local defaults, times in seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # service plan id -> the API token it accepts (Authorization: Bearer <token>).
    service_plans: dict[str, str] = Field(
        default_factory=lambda: {"simulator-plan": "simulator-token"}
    )
    # OAuth2 client credentials (key_id -> key_secret) and the project ids they may call.
    oauth_clients: dict[str, str] = Field(default_factory=dict)
    oauth_project_ids: frozenset[str] = frozenset()
    oauth_token_ttl_s: float = Field(default=3600.0, gt=0)

    # The plan's default originator. Without one, a batch without `from` is accepted and each
    # recipient ends Aborted with code 410 (unmatched default originator), as on Sinch.
    default_from: str | None = None
    # The plan's callback URL: delivery reports of batches that set none (and every report
    # when signing is on) and inbound messages go there.
    default_callback_url: str | None = None
    # Where injected inbound messages go instead of the plan's callback URL.
    inbound_url: str | None = None
    signing_secret: SecretStr | None = None
    operator_id: str = "310260"
    # The account's Sinch region: MMS (mt_media) is accepted in `us` only.
    region: Literal["us", "eu", "au", "br", "ca"] = "us"

    # Outcomes are a pure function of (seed, client_reference or batch id, recipient).
    seed: int | None = None
    outcome_mix: dict[Outcome, float] = Field(default_factory=lambda: dict(DEFAULT_OUTCOME_MIX))
    # Recipient -> forced outcome (digits only or E.164), checked before the mix.
    outcome_overrides: dict[str, Outcome] = Field(default_factory=dict)
    # From send time: Dispatched at half the delay, the final status at delay + jitter.
    delivery_delay_s: float = Field(default=2.0, ge=0)
    delivery_jitter_s: float = Field(default=1.0, ge=0)
    duplicate_probability: Probability = Field(default=0.0, ge=0, le=1)
    out_of_order_probability: Probability = Field(default=0.0, ge=0, le=1)
    # Real Sinch sometimes writes recipients without the leading "+" in callbacks.
    recipient_without_plus_probability: Probability = Field(default=0.5, ge=0, le=1)

    # Sinch retries 5xx and 429 after 5, 10, 20, 40 s ...; 14 retries span about 22 h 45 min.
    callback_retry_base_s: float = Field(default=5.0, gt=0)
    callback_max_retries: int = Field(default=14, ge=0)
    callback_timeout_s: float = Field(default=10.0, gt=0)
    # POSTs in flight at once, and the client's pool to match: a backlog of thousands of
    # callbacks waits its turn instead of opening a socket (and a task) each at once.
    callback_concurrency: int = Field(default=32, ge=1, le=1024)
    callback_log_limit: int = Field(default=100_000, ge=1)

    faults: FaultSettings = Field(default_factory=FaultSettings)

    @model_validator(mode="after")
    def _outcome_mix_is_usable(self) -> Self:
        if any(weight < 0 for weight in self.outcome_mix.values()):
            raise ValueError("outcome_mix weights must not be negative")
        if sum(self.outcome_mix.values()) <= 0:
            raise ValueError("outcome_mix needs at least one positive weight")
        return self

    @classmethod
    def for_tests(cls, **overrides: object) -> SimulatorConfig:
        """A config with compressed timings (tens of milliseconds) and deterministic outcomes."""
        values: dict[str, object] = {
            "seed": 1,
            "outcome_mix": {Outcome.DELIVERED: 1.0},
            "delivery_delay_s": 0.02,
            "delivery_jitter_s": 0.0,
            "recipient_without_plus_probability": 0.0,
            "callback_retry_base_s": 0.05,
            "callback_max_retries": 3,
            "callback_timeout_s": 2.0,
        }
        values.update(overrides)
        return cls.model_validate(values)


class AccountOptions(BaseModel):
    """What `smsgateway simulator` takes on its command line or from the environment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_plan_id: str | None = None
    api_token: SecretStr | None = None
    callback_url: str | None = None
    inbound_url: str | None = None
    default_from: str | None = None
    signing_secret: SecretStr | None = None
    project_id: str | None = None
    key_id: str | None = None
    key_secret: SecretStr | None = None
    seed: int | None = None
    delivery_delay_s: float | None = None
    callback_retry_base_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _credentials_come_whole(self) -> Self:
        if (self.service_plan_id is None) != (self.api_token is None):
            raise ValueError("--service-plan-id and --api-token go together: give both or neither")
        oauth = (self.project_id, self.key_id, self.key_secret)
        if any(value is not None for value in oauth) and None in oauth:
            raise ValueError("--project-id, --key-id and --key-secret go together: give all three")
        for name in ("callback_url", "inbound_url"):
            url = getattr(self, name)
            if url is not None and not url.startswith(("http://", "https://")):
                raise ValueError(f"--{name.replace('_', '-')} must be an http or https URL")
        return self

    def to_config(self) -> SimulatorConfig:
        """The simulator's config: these options over the built-in defaults."""
        values: dict[str, object] = {
            "default_from": self.default_from,
            "default_callback_url": self.callback_url,
            "inbound_url": self.inbound_url,
            "signing_secret": self.signing_secret,
        }
        if self.service_plan_id is not None and self.api_token is not None:
            values["service_plans"] = {self.service_plan_id: self.api_token.get_secret_value()}
        if self.project_id is not None and self.key_id is not None and self.key_secret is not None:
            values["oauth_clients"] = {self.key_id: self.key_secret.get_secret_value()}
            values["oauth_project_ids"] = frozenset({self.project_id})
        if self.seed is not None:
            values["seed"] = self.seed
        if self.delivery_delay_s is not None:
            values["delivery_delay_s"] = self.delivery_delay_s
        if self.callback_retry_base_s is not None:
            values["callback_retry_base_s"] = self.callback_retry_base_s
        return SimulatorConfig.model_validate(values)


# Each option's environment variable; a flag on the command line wins over it.
OPTION_ENVIRONMENT: dict[str, str] = {
    "service_plan_id": "SMSGW_SIMULATOR_SERVICE_PLAN_ID",
    "api_token": "SMSGW_SIMULATOR_API_TOKEN",
    "callback_url": "SMSGW_SIMULATOR_CALLBACK_URL",
    "inbound_url": "SMSGW_SIMULATOR_INBOUND_URL",
    "default_from": "SMSGW_SIMULATOR_DEFAULT_FROM",
    "signing_secret": "SMSGW_SIMULATOR_SIGNING_SECRET",
    "project_id": "SMSGW_SIMULATOR_PROJECT_ID",
    "key_id": "SMSGW_SIMULATOR_KEY_ID",
    "key_secret": "SMSGW_SIMULATOR_KEY_SECRET",
    "seed": "SMSGW_SIMULATOR_SEED",
    "delivery_delay_s": "SMSGW_SIMULATOR_DELIVERY_DELAY",
    "callback_retry_base_s": "SMSGW_SIMULATOR_CALLBACK_RETRY_BASE",
}
