"""``GET /metrics``: Prometheus text exposition for this worker, or all workers together."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from smsgateway.observability.metrics import render_latest

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    operation_id="getMetrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics() -> Response:
    """Request counts and latencies by route template, process figures, and the gateway's own."""
    body, content_type = render_latest()
    return Response(content=body, media_type=content_type)
