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

    The four error rates partition one draw per request, so they must add up to at most 1.
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
    scope: Literal["send", "all"] = "send"
    max_faults: int | None = Field(default=None, ge=0)
    # Sinch counts a batch to N recipients as N messages; above the cap the answer is 429.
    mps_cap: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _rates_fit_one_draw(self) -> Self:
        total = self.server_error_rate + self.rate_limit_rate + self.timeout_rate + self.reset_rate
        if total > 1.0 + 1e-9:
            raise ValueError("the fault rates must add up to at most 1")
        return self

    @property
    def error_rate(self) -> float:
        return self.server_error_rate + self.rate_limit_rate + self.timeout_rate + self.reset_rate


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

    default_from: str | None = "+15550009999"
    # The plan's callback URL: used when a batch sets none, and always when signing is on.
    default_callback_url: str | None = None
    inbound_url: str | None = None
    signing_secret: SecretStr | None = None
    operator_id: str = "310260"

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
