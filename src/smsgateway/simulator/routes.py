"""The Sinch SMS REST API, as far as the gateway uses it (paths and shapes per sinch-api.md).

Handlers take only the `Request` and authenticate through `_caller`: FastAPI's dependency
resolution cost more than the simulated work itself, and these routes carry the load tests.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response

from smsgateway.simulator.deps import json_bytes, json_response
from smsgateway.simulator.engine import Simulator
from smsgateway.simulator.errors import (
    constraint_violation,
    invalid_format,
    unsupported_media_type,
)
from smsgateway.simulator.times import parse_instant
from smsgateway.simulator.validation import MAX_RECIPIENTS, parse_batch_request

router = APIRouter(prefix="/xms/v1/{service_plan_id}", tags=["sinch"])

DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 100


@router.post("/batches", status_code=201)
async def send_batch(request: Request) -> Response:
    """Send a batch (`mt_text`): 201 with the stored batch.

    Served by `batch_lane.BatchLane` in the app; this route documents it and answers alike."""
    simulator: Simulator = request.app.state.simulator
    answer = create_batch_answer(
        simulator,
        request.path_params["service_plan_id"],
        request.headers.get("authorization"),
        request.headers.get("content-type"),
        await request.body(),
        time.time(),
    )
    return Response(answer, status_code=201, media_type="application/json")


def create_batch_answer(
    simulator: Simulator,
    account: str,
    authorization: str | None,
    content_type: str | None,
    body: bytes,
    now: float,
) -> bytes:
    """The stored batch as JSON, once the credential, the content type and the body check out
    (in that order); raises the simulator's errors otherwise."""
    simulator.auth.check(account, authorization, now)
    _require_json_type(content_type)
    batch = simulator.create_batch(account, parse_batch_request(body, now=now), now)
    return json_bytes(batch.to_wire())


@router.post("/batches/dry_run")
async def dry_run(request: Request) -> Response:
    """Count recipients and parts without sending anything."""
    simulator, _ = _caller(request)
    _require_json(request)
    batch_request = parse_batch_request(await request.body(), now=time.time())
    answer = simulator.dry_run(
        batch_request,
        per_recipient=_bool_param(request, "per_recipient", default=False),
        listed=_int_param(request, "number_of_recipients", 100, 1, MAX_RECIPIENTS),
    )
    return json_response(answer)


@router.get("/batches")
async def list_batches(request: Request) -> Response:
    """List batches, newest first; filters `client_reference`, `from`, `start_date`, `end_date`."""
    simulator, account = _caller(request)
    senders = request.query_params.get("from")
    answer = simulator.list_batches(
        account,
        page=_int_param(request, "page", 0, 0, 1_000_000),
        page_size=_int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
        client_reference=request.query_params.get("client_reference"),
        senders=senders.split(",") if senders else (),
        start=_instant_param(request, "start_date"),
        end=_instant_param(request, "end_date"),
    )
    return json_response(answer)


@router.get("/batches/{batch_id}")
async def get_batch(request: Request, batch_id: str) -> Response:
    """One batch, as stored."""
    simulator, account = _caller(request)
    return json_response(simulator.get_batch(account, batch_id).to_wire())


@router.delete("/batches/{batch_id}")
async def cancel_batch(request: Request, batch_id: str) -> Response:
    """Cancel a batch before its `send_at`; 409 once it has been sent."""
    simulator, account = _caller(request)
    return json_response(simulator.cancel_batch(account, batch_id, time.time()).to_wire())


@router.get("/batches/{batch_id}/delivery_report")
async def batch_delivery_report(request: Request, batch_id: str) -> Response:
    """The batch's statuses now: `type=summary|full`, filters `status` and `code` (comma lists)."""
    simulator, account = _caller(request)
    kind = request.query_params.get("type", "summary")
    if kind not in ("summary", "full"):
        raise invalid_format("type: must be summary or full.")
    statuses = request.query_params.get("status")
    answer = simulator.batch_delivery_report(
        account,
        batch_id,
        full=kind == "full",
        statuses=statuses.split(",") if statuses else (),
        codes=_codes_param(request),
        now=time.time(),
    )
    return json_response(answer)


@router.get("/batches/{batch_id}/delivery_report/{recipient_msisdn}")
async def recipient_delivery_report(
    request: Request, batch_id: str, recipient_msisdn: str
) -> Response:
    """One recipient's current status (the number with or without its `+`)."""
    simulator, account = _caller(request)
    answer = simulator.recipient_delivery_report(account, batch_id, recipient_msisdn, time.time())
    return json_response(answer)


@router.get("/delivery_reports")
async def list_delivery_reports(request: Request) -> Response:
    """Recipients' final delivery reports; filters `start_date` (default 24 h ago), `end_date`,
    `status`, `code` (comma lists) and `client_reference`."""
    simulator, account = _caller(request)
    statuses = request.query_params.get("status")
    answer = simulator.list_delivery_reports(
        account,
        page=_int_param(request, "page", 0, 0, 1_000_000),
        page_size=_int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
        now=time.time(),
        start=_instant_param(request, "start_date"),
        end=_instant_param(request, "end_date"),
        statuses=statuses.split(",") if statuses else (),
        codes=_codes_param(request),
        client_reference=request.query_params.get("client_reference"),
    )
    return json_response(answer)


@router.get("/inbounds")
async def list_inbounds(request: Request) -> Response:
    """Inbound (MO) messages injected through the admin API, newest first."""
    simulator, account = _caller(request)
    answer = simulator.list_inbounds(
        account,
        page=_int_param(request, "page", 0, 0, 1_000_000),
        page_size=_int_param(request, "page_size", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE),
    )
    return json_response(answer)


@router.get("/inbounds/{inbound_id}")
async def get_inbound(request: Request, inbound_id: str) -> Response:
    """One inbound message."""
    simulator, account = _caller(request)
    return json_response(simulator.get_inbound(account, inbound_id))


def _caller(request: Request) -> tuple[Simulator, str]:
    """The app's simulator and the account in the path, once the credential checks out."""
    simulator: Simulator = request.app.state.simulator
    account: str = request.path_params["service_plan_id"]
    simulator.auth.check(account, request.headers.get("authorization"), time.time())
    return simulator, account


def _require_json(request: Request) -> None:
    _require_json_type(request.headers.get("content-type"))


def _require_json_type(content_type: str | None) -> None:
    """A body is JSON only when the request says so (`application/json`, any parameters)."""
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise unsupported_media_type(content_type)


def _codes_param(request: Request) -> list[int]:
    codes = request.query_params.get("code")
    try:
        return [int(code) for code in codes.split(",")] if codes else []
    except ValueError as exc:
        raise invalid_format("code: must be a comma-separated list of integers.") from exc


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid_format(f"{name}: must be an integer.") from exc
    if not low <= value <= high:
        raise constraint_violation(f"{name}: must be from {low} to {high}.")
    return value


def _bool_param(request: Request, name: str, *, default: bool) -> bool:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if raw.lower() not in ("true", "false"):
        raise invalid_format(f"{name}: must be true or false.")
    return raw.lower() == "true"


def _instant_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError as exc:
        raise invalid_format(f"{name}: must be an ISO-8601 date and time.") from exc
