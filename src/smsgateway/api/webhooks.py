"""``/webhooks/sinch/*``: Sinch's delivery reports and inbound messages.

Each call is authenticated (the checks the settings switch on, else 401), read from its raw
bytes, and stored by one service call before the answer. Answers follow Sinch's retry rules:
200 once stored (also for a report that cannot be read but was kept), 503 while the database is
unavailable (Sinch retries), 400 only for a body that is not a JSON object.
"""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from smsgateway.api.deps import state_of
from smsgateway.api.problems import ProblemError, problem_responses
from smsgateway.observability.report_metrics import WEBHOOK_AUTH_REFUSALS
from smsgateway.services.delivery_reports import UnreadablePayloadError

router = APIRouter(prefix="/webhooks/sinch", tags=["webhooks"])

_RESPONSES = problem_responses(400, 401, 413, 503)
# The body is read raw (the signature covers its exact bytes), so FastAPI cannot infer it.
_SINCH_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                # Any JSON object: one the gateway cannot read is kept for operators and
                # answered 200, since Sinch would otherwise retry it for 22 hours.
                "schema": {"type": "object", "additionalProperties": True}
            }
        },
    }
}


class ReportReceiptOut(BaseModel):
    """What the gateway did with a delivery report (Sinch only looks at the status code)."""

    outcome: str = Field(
        examples=["applied"],
        description="applied, unchanged, duplicate, unknown_batch (kept until the batch is "
        "known) or unprocessable (kept for operators).",
    )
    message_id: uuid.UUID | None = None
    changed: int = Field(0, description="Recipients whose status or details changed.")


class InboundReceiptOut(BaseModel):
    """What the gateway did with an inbound message."""

    id: uuid.UUID | None = None
    duplicate: bool = False
    keyword: str | None = Field(None, examples=["opt_out"])
    opted_out: bool | None = None


@router.post(
    "/delivery-reports",
    summary="Sinch delivery reports (summary, full, per recipient; SMS and MMS)",
    response_model=ReportReceiptOut,
    responses=_RESPONSES,
    openapi_extra=_SINCH_JSON_BODY,
)
async def receive_delivery_report(request: Request) -> Response:
    """Stores the report and applies it to its message: duplicates change nothing, an
    intermediate status never replaces a final one, and a report for a batch not recorded yet
    is kept and applied when it is."""
    return await _delivery_report(request, None)


@router.post("/delivery-reports/{path_secret}", include_in_schema=False)
async def receive_delivery_report_at_secret(path_secret: str, request: Request) -> Response:
    return await _delivery_report(request, path_secret)


@router.post(
    "/inbound",
    summary="Sinch inbound messages (mo_text, mo_binary, mo_media)",
    responses=_RESPONSES,
    openapi_extra=_SINCH_JSON_BODY,
)
async def receive_inbound(request: Request) -> InboundReceiptOut:
    """Stores the message once per Sinch id; a whole-body STOP (and the other opt-out
    keywords) opts the sender out, START opts back in, HELP is recorded."""
    return await _inbound(request, None)


@router.post("/inbound/{path_secret}", include_in_schema=False)
async def receive_inbound_at_secret(path_secret: str, request: Request) -> InboundReceiptOut:
    return await _inbound(request, path_secret)


async def _delivery_report(request: Request, path_secret: str | None) -> Response:
    body = await _authenticated_body(request, path_secret, "delivery_reports")
    try:
        receipt = await state_of(request).delivery_reports.receive(body)
    except UnreadablePayloadError as exc:
        raise _unreadable(exc) from exc
    # Written directly: Sinch sends thousands a second, and this shape cannot fail validation.
    answer = {
        "outcome": receipt.outcome.value,
        "message_id": None if receipt.message_id is None else str(receipt.message_id),
        "changed": receipt.changed,
    }
    return Response(json.dumps(answer), media_type="application/json")


async def _inbound(request: Request, path_secret: str | None) -> InboundReceiptOut:
    body = await _authenticated_body(request, path_secret, "inbound")
    try:
        receipt = await state_of(request).inbound.receive(body)
    except UnreadablePayloadError as exc:
        raise _unreadable(exc) from exc
    return InboundReceiptOut(
        id=receipt.id,
        duplicate=receipt.duplicate,
        keyword=None if receipt.keyword is None else receipt.keyword.value,
        opted_out=receipt.opted_out,
    )


async def _authenticated_body(request: Request, path_secret: str | None, webhook: str) -> bytes:
    body = await request.body()
    guard = state_of(request).webhook_guard
    refusal = await guard.check(path_secret=path_secret, headers=request.headers, body=body)
    if refusal is not None:
        WEBHOOK_AUTH_REFUSALS.labels(webhook, refusal.reason).inc()
        challenge = (
            {"WWW-Authenticate": 'Basic realm="sinch-webhooks"'} if guard.wants_basic else None
        )
        raise ProblemError(401, refusal.reason, refusal.detail, headers=challenge)
    return body


def _unreadable(exc: UnreadablePayloadError) -> ProblemError:
    return ProblemError(400, "unreadable_payload", str(exc))
