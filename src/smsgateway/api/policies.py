"""``/v1/admin/policies``: read and change tenants' protection policies (admin only).

Who is an admin is decided in one place, ``require_policy_admin``: today a key whose tenant is
listed in SMSGW_POLICY_ADMIN_TENANTS (none by default, so the API refuses everyone and the CLI
is the only way); an ``admin`` API-key scope can replace that check alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Request
from pydantic import BaseModel, Field

from smsgateway.api.auth import AUTHENTICATED, CurrentKey
from smsgateway.api.deps import state_of
from smsgateway.api.problems import ProblemError, problem_responses
from smsgateway.domain.api_keys import Scope, grants
from smsgateway.services import protection as service
from smsgateway.store.api_keys import ApiKeyRecord

router = APIRouter(prefix="/v1/admin/policies", tags=["admin"])

TenantPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="The tenant whose policy this is (an API key's `tenant`).",
    ),
]


PolicySource = Literal["stored", "gateway default"]


class PolicyOut(BaseModel):
    """The policy that applies to a tenant; ``source`` says whether it is stored or the
    gateway's default (SMSGW_* settings)."""

    tenant: str
    source: PolicySource = Field(examples=["stored", "gateway default"])
    updated_at: datetime | None
    updated_by: str | None
    policy: dict[str, Any]


class PolicyChangeOut(BaseModel):
    tenant: str
    api_key_id: str | None
    policy: dict[str, Any] | None
    changed_by: str
    changed_at: datetime


def require_policy_admin(key: ApiKeyRecord, request: Request) -> str:
    """403 unless ``key`` may change policies (an ``admin``-scoped key, or a key of a tenant
    in SMSGW_POLICY_ADMIN_TENANTS); returns who to record as the author."""
    admin = grants(key.scopes, Scope.ADMIN)
    if not admin and key.tenant not in state_of(request).settings.policy_admin_tenants:
        raise ProblemError(
            403, "forbidden", "This API key may not read or change protection policies."
        )
    return f"api_key:{key.name}"


def _out(view: service.PolicyView) -> PolicyOut:
    return PolicyOut(
        tenant=view.tenant,
        source="stored" if view.stored is not None else "gateway default",
        updated_at=view.updated_at,
        updated_by=view.updated_by,
        policy=view.policy.as_document(),
    )


@router.get(
    "/{tenant}",
    summary="A tenant's protection policy as it applies",
    operation_id="getPolicy",
    responses=problem_responses(401, 403, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def get_policy(tenant: TenantPath, key: CurrentKey, request: Request) -> PolicyOut:
    require_policy_admin(key, request)
    state = state_of(request)
    return _out(await service.show_policy(state.pool, state.policies, tenant))


@router.put(
    "/{tenant}",
    summary="Set a tenant's protection policy (the change is logged with who and when)",
    operation_id="setPolicy",
    responses=problem_responses(401, 403, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def put_policy(
    tenant: TenantPath,
    key: CurrentKey,
    request: Request,
    document: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "allowed_countries": ["SE", "NO"],
                    "velocity": {"per_prefix": 20, "per_country": 500},
                    "spend": {"daily_segments": 5000},
                }
            ]
        ),
    ],
) -> PolicyOut:
    """Keys left out keep the gateway's defaults; a bad key is a 422 `invalid_policy` naming
    it. Every process applies the change within SMSGW_POLICY_REFRESH_SECONDS."""
    author = require_policy_admin(key, request)
    state = state_of(request)
    view = await service.set_policy(
        state.pool, state.policies, tenant=tenant, document=document, changed_by=author
    )
    return _out(view)


@router.delete(
    "/{tenant}",
    summary="Remove a tenant's policy: the gateway's default applies again",
    operation_id="deletePolicy",
    responses=problem_responses(401, 403, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def delete_policy(tenant: TenantPath, key: CurrentKey, request: Request) -> PolicyOut:
    author = require_policy_admin(key, request)
    state = state_of(request)
    view = await service.set_policy(
        state.pool, state.policies, tenant=tenant, document=None, changed_by=author
    )
    return _out(view)


@router.get(
    "/{tenant}/changes",
    summary="The changes to a tenant's policies, newest first",
    operation_id="listPolicyChanges",
    responses=problem_responses(401, 403, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def list_changes(
    tenant: TenantPath, key: CurrentKey, request: Request
) -> list[PolicyChangeOut]:
    require_policy_admin(key, request)
    changes = await service.policy_changes(state_of(request).pool, tenant)
    return [
        PolicyChangeOut(
            tenant=change.tenant,
            api_key_id=None if change.api_key_id is None else str(change.api_key_id),
            policy=change.document,
            changed_by=change.changed_by,
            changed_at=change.changed_at,
        )
        for change in changes
    ]
