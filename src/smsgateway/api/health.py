"""Liveness, readiness, and the Express tutorial's ``/health`` for callers migrating from it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from smsgateway.api.deps import StateDep
from smsgateway.api.problems import ProblemError, problem_responses
from smsgateway.api.schemas import ResponseModel
from smsgateway.services.readiness import check_readiness

router = APIRouter(tags=["health"])


class LivenessOut(ResponseModel):
    status: Literal["ok"] = Field(examples=["ok"])


class ReadinessOut(ResponseModel):
    status: Literal["ready"] = Field(examples=["ready"])
    database: str = Field(examples=["reachable, schema at 20261126_initial"])
    sinch: str = Field(examples=["simulator (no Sinch credentials configured)"])


class TutorialHealthOut(ResponseModel):
    status: Literal["healthy"] = Field(examples=["healthy"])
    timestamp: datetime = Field(examples=["2026-11-26T10:00:00.000Z"])
    uptime: float = Field(description="Seconds since the process started.", examples=[42.5])


@router.get(
    "/healthz", operation_id="getLiveness", summary="Liveness: the process answers (no I/O)"
)
async def healthz() -> LivenessOut:
    """Answers 200 while the event loop runs; checks nothing else, so it never flaps."""
    return LivenessOut(status="ok")


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: database reachable and schema at head",
    responses=problem_responses(503),
)
async def readyz(state: StateDep) -> ReadinessOut:
    """200 when Postgres answers within the readiness timeout and its schema is at the newest
    migration; 503 problem+json naming the reason otherwise."""
    readiness = await check_readiness(
        state.pool, state.schema_head, state.settings.readiness_timeout_seconds
    )
    if not readiness.ready:
        raise ProblemError(503, "not_ready", readiness.reason)
    return ReadinessOut(status="ready", database=readiness.reason, sinch=state.sinch_mode)


@router.get(
    "/health", operation_id="getTutorialHealth", summary="The Express tutorial's health check"
)
async def health(state: StateDep) -> TutorialHealthOut:
    """Same shape as the tutorial's ``GET /health``: status, ISO timestamp, uptime in seconds."""
    return TutorialHealthOut(
        status="healthy",
        timestamp=datetime.now(UTC),
        uptime=round(time.monotonic() - state.started_monotonic, 3),
    )
