"""``/v1/admin/retention``: read and change tenants' personal-data retention (admin only).

Who is an admin is decided as for protection policies (``policies.require_policy_admin``).
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from smsgateway.api.auth import AUTHENTICATED, CurrentKey
from smsgateway.api.deps import state_of
from smsgateway.api.policies import TenantPath, require_policy_admin
from smsgateway.api.problems import problem_responses
from smsgateway.domain.retention import MAX_DAYS, RetentionWindow
from smsgateway.services import personal_data as service
from smsgateway.settings import Settings

router = APIRouter(prefix="/v1/admin/retention", tags=["admin"])

_REDACT = (
    "Days after a message's last change (its final status) after which its body and numbers "
    "(and an inbound message's body and sender) are redacted, once nothing is pending for it; "
    "null keeps them."
)
_DELETE = (
    "Days after a message's last change after which it is deleted, once nothing is pending for "
    "it (inbound messages: after their receipt); null keeps them."
)


class RetentionIn(BaseModel):
    """A tenant's own retention window; both fields are required, null meaning "keep"."""

    redact_after_days: int | None = Field(ge=1, le=MAX_DAYS, description=_REDACT, examples=[30])
    delete_after_days: int | None = Field(ge=1, le=MAX_DAYS, description=_DELETE, examples=[365])


class RetentionOut(BaseModel):
    """The retention window that applies to a tenant; ``source`` says whether it is the
    tenant's own or the gateway's (SMSGW_REDACT_AFTER_DAYS, SMSGW_DELETE_AFTER_DAYS)."""

    tenant: str
    source: str = Field(examples=["stored", "gateway default"])
    redact_after_days: int | None = Field(description=_REDACT)
    delete_after_days: int | None = Field(description=_DELETE)
    updated_at: datetime | None
    updated_by: str | None


def _default(settings: Settings) -> RetentionWindow:
    return RetentionWindow(settings.redact_after_days, settings.delete_after_days)


def _out(view: service.RetentionView) -> RetentionOut:
    return RetentionOut(
        tenant=view.tenant,
        source="stored" if view.stored else "gateway default",
        redact_after_days=view.window.redact_after_days,
        delete_after_days=view.window.delete_after_days,
        updated_at=view.updated_at,
        updated_by=view.updated_by,
    )


@router.get(
    "/{tenant}",
    summary="A tenant's personal-data retention as it applies",
    operation_id="getRetention",
    responses=problem_responses(401, 403, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def get_retention(tenant: TenantPath, key: CurrentKey, request: Request) -> RetentionOut:
    require_policy_admin(key, request)
    state = state_of(request)
    return _out(await service.show_retention(state.pool, _default(state.settings), tenant))


@router.put(
    "/{tenant}",
    summary="Set a tenant's own retention window",
    operation_id="setRetention",
    responses=problem_responses(401, 403, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def put_retention(
    tenant: TenantPath, window: RetentionIn, key: CurrentKey, request: Request
) -> RetentionOut:
    """Replaces the gateway's window for this tenant; the retention job of every process
    applies it from its next sweep (SMSGW_RETENTION_INTERVAL_SECONDS)."""
    author = require_policy_admin(key, request)
    stored = RetentionWindow(window.redact_after_days, window.delete_after_days)
    return _out(
        await service.set_retention(state_of(request).pool, tenant, stored, changed_by=author)
    )


@router.delete(
    "/{tenant}",
    summary="Remove a tenant's own retention window: the gateway's applies again",
    operation_id="deleteRetention",
    responses=problem_responses(401, 403, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def delete_retention(tenant: TenantPath, key: CurrentKey, request: Request) -> RetentionOut:
    require_policy_admin(key, request)
    state = state_of(request)
    return _out(await service.clear_retention(state.pool, _default(state.settings), tenant))
