"""``/webhooks/sinch``: the one URL for everything Sinch posts (delivery reports and inbound).

Each call is authenticated (the checks in force, else 401), read once from its raw bytes (the
signature covers them), and stored by one service call, chosen by the body's ``type``, before
the answer. Answers follow Sinch's retry rules: 200 once stored (also for a kind that cannot be
read but was kept), 503 while the database is unavailable (Sinch retries), 400 only for a body
that is not a JSON object. ``/webhooks/sinch/delivery-reports`` and ``/webhooks/sinch/inbound``
(and their path-secret forms) are older aliases of the same endpoint: each accepts every kind.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import Field

from smsgateway.api.deps import state_of
from smsgateway.api.problems import ProblemError, problem_responses
from smsgateway.api.schemas import ResponseModel
from smsgateway.domain.opt_out import KeywordKind
from smsgateway.observability.report_metrics import WEBHOOK_AUTH_REFUSALS
from smsgateway.services.delivery_reports import UnreadablePayloadError
from smsgateway.services.sinch_callbacks import (
    CALLBACK_SCHEMA_NAME,
    CallbackKind,
    CallbackReceipt,
)
from smsgateway.store.report_ledger import ReportOutcome

if TYPE_CHECKING:
    from collections.abc import Mapping

    from smsgateway.api.deps import AppState

SINCH_WEBHOOK_PATH = "/webhooks/sinch"
router = APIRouter(prefix=SINCH_WEBHOOK_PATH, tags=["webhooks"])

logger = logging.getLogger(__name__)

_RESPONSES = problem_responses(400, 401, 413, 503)
_REFUSED = "The call is not authenticated as Sinch's for this gateway."
# The body is read raw (the signature covers its exact bytes), so FastAPI cannot infer it; the
# schema documents it without validating anything on the hot path.
_SINCH_JSON_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{CALLBACK_SCHEMA_NAME}"}}
        },
    }
}


class ReportReceiptOut(ResponseModel):
    """What the gateway did with a delivery report (Sinch only looks at the status code)."""

    kind: Literal["delivery_report"]
    outcome: ReportOutcome = Field(
        examples=["applied"],
        description="applied, unchanged, duplicate, unknown_batch (kept until the batch is "
        "known) or unprocessable (kept for operators).",
    )
    message_id: uuid.UUID | None = None
    changed: int = Field(0, description="Recipients whose status or details changed.")


class InboundReceiptOut(ResponseModel):
    """What the gateway did with an inbound message."""

    kind: Literal["inbound"]
    id: uuid.UUID | None = None
    duplicate: bool = False
    keyword: KeywordKind | None = Field(None, examples=["opt_out"])
    opted_out: bool | None = None


CallbackReceiptOut = Annotated[ReportReceiptOut | InboundReceiptOut, Field(discriminator="kind")]


@router.post(
    "",
    operation_id="receiveSinchCallback",
    summary="Everything Sinch posts: delivery reports of every kind and inbound messages",
    response_model=CallbackReceiptOut,
    responses=_RESPONSES,
    openapi_extra=_SINCH_JSON_BODY,
)
async def receive_sinch_callback(request: Request) -> Response:
    """The URL to give Sinch (with `/<path secret>` when one is in force: `smsgateway
    webhooks` prints it). By `type`: a delivery report is stored and applied to its message
    (duplicates change nothing, an intermediate status never replaces a final one, a report for
    a batch not recorded yet is kept and applied when it is); an inbound message is stored once
    per Sinch id, and a whole-body STOP (and the other opt-out keywords) opts the sender out,
    START opts back in, HELP is recorded. Another `type` is kept for operators."""
    return await _receive(request, None, "sinch", CallbackKind.DELIVERY_REPORT)


@router.post(
    "/delivery-reports",
    operation_id="receiveSinchCallbackAtDeliveryReports",
    summary="Alias of POST /webhooks/sinch (accepts every kind)",
    response_model=CallbackReceiptOut,
    responses=_RESPONSES,
    openapi_extra=_SINCH_JSON_BODY,
)
async def receive_delivery_report(request: Request) -> Response:
    """Kept for configurations made before `/webhooks/sinch`; the same endpoint."""
    return await _receive(request, None, "delivery_reports", CallbackKind.DELIVERY_REPORT)


@router.post("/delivery-reports/{path_secret}", include_in_schema=False)
async def receive_delivery_report_at_secret(path_secret: str, request: Request) -> Response:
    return await _receive(request, path_secret, "delivery_reports", CallbackKind.DELIVERY_REPORT)


@router.post(
    "/inbound",
    operation_id="receiveSinchCallbackAtInbound",
    summary="Alias of POST /webhooks/sinch (accepts every kind)",
    response_model=CallbackReceiptOut,
    responses=_RESPONSES,
    openapi_extra=_SINCH_JSON_BODY,
)
async def receive_inbound(request: Request) -> Response:
    """Kept for configurations made before `/webhooks/sinch`; the same endpoint (a `type` it
    does not know is stored as an inbound message, as this path always did)."""
    return await _receive(request, None, "inbound", CallbackKind.INBOUND)


@router.post("/inbound/{path_secret}", include_in_schema=False)
async def receive_inbound_at_secret(path_secret: str, request: Request) -> Response:
    return await _receive(request, path_secret, "inbound", CallbackKind.INBOUND)


# Last: "delivery-reports" and "inbound" are never a path secret (24 characters at least).
@router.post("/{path_secret}", include_in_schema=False)
async def receive_sinch_callback_at_secret(path_secret: str, request: Request) -> Response:
    return await _receive(request, path_secret, "sinch", CallbackKind.DELIVERY_REPORT)


async def _receive(
    request: Request, path_secret: str | None, webhook: str, unknown_kinds: CallbackKind
) -> Response:
    state = state_of(request)
    body = await request.body()
    await authenticate(state, request.headers, body, path_secret, webhook)
    answer = await callback_answer(state, body, unknown_kinds)
    return Response(answer, media_type="application/json")


async def callback_answer(state: AppState, body: bytes, unknown_kinds: CallbackKind) -> bytes:
    """Stores an authenticated call's body; the answer's JSON (the route's and the report
    lane's, api.report_lane). Raises ``ProblemError`` for a body that is not a JSON object."""
    try:
        receipt = await state.sinch_callbacks.receive(body, unknown_kinds=unknown_kinds)
    except UnreadablePayloadError as exc:
        raise ProblemError(400, "unreadable_payload", str(exc)) from exc
    # Written directly: Sinch sends thousands a second, and this shape cannot fail validation.
    return json.dumps(_answer(receipt)).encode()


def _answer(receipt: CallbackReceipt) -> dict[str, Any]:
    if receipt.report is not None:
        report = receipt.report
        return {
            "kind": receipt.kind.value,
            "outcome": report.outcome.value,
            "message_id": None if report.message_id is None else str(report.message_id),
            "changed": report.changed,
        }
    assert receipt.inbound is not None
    inbound = receipt.inbound
    return {
        "kind": receipt.kind.value,
        "id": None if inbound.id is None else str(inbound.id),
        "duplicate": inbound.duplicate,
        "keyword": None if inbound.keyword is None else inbound.keyword.value,
        "opted_out": inbound.opted_out,
    }


async def authenticate(
    state: AppState,
    headers: Mapping[str, str],
    body: bytes,
    path_secret: str | None,
    webhook: str,
) -> None:
    """Raises ``ProblemError`` (401) unless the call passes every check in force."""
    guard = state.webhook_guard
    refusal = await guard.check(path_secret=path_secret, headers=headers, body=body)
    if refusal is not None:
        # One answer whichever check failed: naming it would let a guesser confirm each layer
        # (path secret, then Basic, then signature) in turn. The reason goes to our log.
        WEBHOOK_AUTH_REFUSALS.labels(webhook, refusal.reason).inc()
        logger.info("sinch webhook call refused", extra={"reason": refusal.reason})
        challenge = (
            {"WWW-Authenticate": 'Basic realm="sinch-webhooks"'} if guard.wants_basic else None
        )
        raise ProblemError(401, "unauthorized", _REFUSED, headers=challenge)
