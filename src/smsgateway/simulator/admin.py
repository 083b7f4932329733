"""The simulator's own control surface under `/_admin/` (not a Sinch path): faults, outcome
overrides, inbound injection, reset, and what the simulator received and sent.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from smsgateway.simulator.config import FaultSettings, Outcome
from smsgateway.simulator.deps import SimulatorDep, json_response

router = APIRouter(prefix="/_admin", tags=["admin"])


class InboundIn(BaseModel):
    """An MO text to deliver to the inbound URL (or `url`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    sender: str = Field(alias="from")
    to: str
    body: str
    url: str | None = None
    client_reference: str | None = None
    service_plan_id: str | None = None


class OutcomeOverrides(BaseModel):
    """Recipient (with or without `+`) -> forced outcome; replaces the previous overrides."""

    model_config = ConfigDict(extra="forbid")

    overrides: dict[str, Outcome]


# How `smsgateway serve` and `smsgateway worker` tell this simulator from another program
# answering on its port.
HEALTH_SERVICE = "smsgateway-simulator"


@router.get("/health")
async def health() -> dict[str, str]:
    """Always ok: the simulator is up, and says it is this simulator."""
    return {"status": "ok", "service": HEALTH_SERVICE}


@router.get("/faults")
async def get_faults(simulator: SimulatorDep) -> FaultSettings:
    """The faults in force."""
    return simulator.faults.settings


@router.put("/faults")
async def put_faults(settings: FaultSettings, simulator: SimulatorDep) -> FaultSettings:
    """Replace the faults in force (fields left out take their defaults: no fault)."""
    simulator.faults.replace(settings)
    return settings


@router.delete("/faults")
async def clear_faults(simulator: SimulatorDep) -> FaultSettings:
    """Remove every fault (back to no latency, no errors, no cap)."""
    simulator.faults.replace(FaultSettings())
    return simulator.faults.settings


@router.get("/outcomes")
async def get_outcomes(simulator: SimulatorDep) -> OutcomeOverrides:
    return OutcomeOverrides(overrides=dict(simulator.overrides))


@router.put("/outcomes")
async def put_outcomes(overrides: OutcomeOverrides, simulator: SimulatorDep) -> OutcomeOverrides:
    """Force outcomes for recipients of batches accepted from now on."""
    simulator.set_overrides(overrides.overrides)
    return OutcomeOverrides(overrides=dict(simulator.overrides))


@router.post("/reset", status_code=204)
async def reset(simulator: SimulatorDep) -> Response:
    """Forget all state and cancel pending callbacks; faults and overrides back to the config."""
    await simulator.reset()
    return Response(status_code=204)


@router.post("/inbounds", status_code=202)
async def inject_inbound(inbound: InboundIn, simulator: SimulatorDep) -> Response:
    """Send an `mo_text` callback (retried like delivery reports); 202 with the payload."""
    payload, url = simulator.inject_inbound(
        account_id=inbound.service_plan_id,
        url=inbound.url,
        sender=inbound.sender,
        to=inbound.to,
        body=inbound.body,
        client_reference=inbound.client_reference,
    )
    return json_response({"url": url, "inbound": payload}, 202)


@router.get("/stats")
async def stats(simulator: SimulatorDep) -> Response:
    """Counts: batches (in total and per client_reference), callbacks, injected faults."""
    return json_response(simulator.stats())


@router.get("/batches")
async def batches_for_reference(
    client_reference: Annotated[str, Query()], simulator: SimulatorDep
) -> Response:
    """How many batches were created with `client_reference` (to assert "sent exactly once")."""
    ids = simulator.batch_ids_for(client_reference)
    return json_response(
        {"client_reference": client_reference, "count": len(ids), "batch_ids": ids}
    )


@router.get("/callbacks")
async def callback_attempts(
    simulator: SimulatorDep,
    batch_id: str | None = None,
    client_reference: str | None = None,
    callback_type: Annotated[str | None, Query(alias="type")] = None,
) -> Response:
    """Every callback attempt, oldest first, optionally filtered."""
    attempts = [
        attempt.to_json()
        for attempt in simulator.callbacks.attempts
        if (batch_id is None or attempt.payload.get("batch_id") == batch_id)
        and (
            client_reference is None or attempt.payload.get("client_reference") == client_reference
        )
        and (callback_type is None or attempt.payload.get("type") == callback_type)
    ]
    return json_response({"count": len(attempts), "attempts": attempts})


@router.post("/oauth/expire", status_code=204)
async def expire_tokens(simulator: SimulatorDep) -> Response:
    """Expire every issued OAuth2 token, to exercise refresh-on-401."""
    simulator.auth.expire_tokens()
    return Response(status_code=204)
