"""``/v1/inbound-messages`` and ``/v1/opt-outs``: what subscribers sent, and who opted out.

Both belong to the tenant owning the number the subscriber wrote to (``smsgateway sender
assign``): a key sees and changes its own tenant's; an admin key sees every tenant's, and the
traffic of numbers assigned to no tenant, which no other key sees (``domain.tenancy``).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal, cast
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from smsgateway.api.auth import AUTHENTICATED, ReadKey, SendKey
from smsgateway.api.deps import PoolDep, state_of
from smsgateway.api.pagination import decode_uuid_cursor, encode_cursor
from smsgateway.api.problems import ProblemError, ProblemField, problem_responses
from smsgateway.api.schemas import Instant, ResponseModel, StorableStr
from smsgateway.domain.errors import DomainError
from smsgateway.domain.inbound import InboundType
from smsgateway.domain.phone import parse_phone_number
from smsgateway.domain.tenancy import SenderNotAssigned, Viewer, narrowed_to, viewer_for
from smsgateway.services.inbound import find_inbound
from smsgateway.store.api_keys import ApiKeyRecord
from smsgateway.store.inbound import InboundFilter, InboundRecord
from smsgateway.store.opt_outs import OptOutRecord, OptOutSource

router = APIRouter(tags=["inbound"])

Keyword = Literal["opt_out", "opt_in", "help"]
_SenderQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=32,
        description="One of your tenant's numbers: the opt-out of messages from it only",
    ),
]
_TenantQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Whose opt-outs: an admin key names any tenant (without it, an admin's "
        "are the global ones); another key only its own (403 `forbidden` otherwise).",
    ),
]


class InboundMessageOut(ResponseModel):
    id: uuid.UUID
    tenant: str | None = Field(
        description="The tenant owning the receiving number when it arrived; null when none "
        "did (seen by admin keys only)."
    )
    sinch_id: str = Field(examples=["01FC66621VHDBN119Z8PMV1QPU"])
    type: InboundType = Field(
        examples=["mo_text"],
        description="Sinch's type of the message; `unknown` for one this gateway does not "
        "know (kept as received).",
    )
    sender: str | None = Field(None, examples=["+46701234567"])
    to: str | None = Field(None, examples=["+15550009999"])
    body: str | None = Field(None, description="The text of an mo_text; null for other types.")
    keyword: Keyword | None = None
    client_reference: str | None = None
    operator_id: str | None = None
    received_at: AwareDatetime
    sent_at: AwareDatetime | None = None
    created_at: AwareDatetime


class InboundMessagePage(ResponseModel):
    items: list[InboundMessageOut]
    next: str | None = Field(
        None, description="Pass as `cursor` for the next page; null at the end."
    )


class OptOutIn(BaseModel):
    msisdn: str = Field(examples=["+46701234567"], description="E.164, with the '+'.")
    sender: StorableStr | None = Field(
        None,
        max_length=32,
        description="One of your tenant's numbers: the opt-out covers messages from it only. "
        "Without it: every message of your tenant (an admin key's: of every tenant).",
    )
    note: StorableStr | None = Field(None, max_length=500)
    tenant: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Whose opt-out: an admin key names any tenant (without it, an admin's is "
        "global); another key only its own (403 `forbidden` otherwise).",
    )

    @field_validator("msisdn")
    @classmethod
    def _e164(cls, value: str) -> str:
        try:
            return _e164(value)
        except ValueError as exc:
            # The code the path's number gets too: the same fault, the same code.
            raise PydanticCustomError(
                "invalid_phone_number", "{reason}", {"reason": str(exc)}
            ) from exc


class OptOutOut(ResponseModel):
    id: uuid.UUID
    msisdn: str = Field(examples=["+46701234567"])
    tenant: str | None = Field(
        description="Whose opt-out it is; null with no sender: global (every tenant)."
    )
    sender: str | None = Field(
        description="The number it covers (whoever sends from it); null: every sender of `tenant`."
    )
    source: OptOutSource = Field(
        examples=["inbound"], description="inbound (a keyword the subscriber sent) or api."
    )
    keyword: str | None = Field(
        None,
        examples=["STOP"],
        description="The word the subscriber sent, upper-cased; null for the API's. One of "
        "the operator's SMSGW_OPT_OUT_KEYWORDS (or OPT_IN), so not an enum.",
    )
    inbound_id: uuid.UUID | None = None
    note: str | None = None
    opted_out_at: AwareDatetime
    created_at: AwareDatetime
    updated_at: AwareDatetime


class OptOutPage(ResponseModel):
    items: list[OptOutOut]
    next: str | None = Field(
        None, description="Pass as `cursor` for the next page; null at the end."
    )


@router.get(
    "/v1/inbound-messages",
    operation_id="listInboundMessages",
    summary="Inbound messages, newest first, with filters and a cursor",
    responses=problem_responses(401, 403, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def list_inbound_messages(
    key: ReadKey,
    pool: PoolDep,
    sender: Annotated[
        str | None,
        Query(alias="from", description="Only from this subscriber: E.164, `+` optional."),
    ] = None,
    to: Annotated[
        str | None,
        Query(description="Only to this number of ours (`+` optional) or short code."),
    ] = None,
    keyword: Annotated[
        Keyword | None, Query(description="Only messages that were this keyword.")
    ] = None,
    received_after: Annotated[
        Instant | None,
        Query(description="Only messages received at or after this instant (with an offset)."),
    ] = None,
    received_before: Annotated[
        Instant | None,
        Query(description="Only messages received before this instant (with an offset)."),
    ] = None,
    received_from: Annotated[
        Instant | None,
        Query(deprecated=True, description="Old name of `received_after`."),
    ] = None,
    received_to: Annotated[
        Instant | None,
        Query(deprecated=True, description="Old name of `received_before`."),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(min_length=1, description="The previous page's `next`; leave out for the first."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Messages per page.")] = 50,
) -> InboundMessagePage:
    """Keyset pagination: pass the previous page's `next` as `cursor` until it is null.
    Numbers are stored in E.164 with `+` even when Sinch left it out, and `from`/`to` are
    read the same way: `+14155550100` and `14155550100` find the same messages.
    `received_from`/`received_to` are the old names of `received_after`/`received_before`."""
    before = None if cursor is None else decode_uuid_cursor(cursor)
    records = await find_inbound(
        pool,
        InboundFilter(
            sender=sender,
            recipient=to,
            keyword=keyword,
            received_from=received_after or received_from,
            received_to=received_before or received_to,
            before=before,
            limit=limit + 1,
            tenant=viewer_for(key.tenant, key.scopes).tenant,
        ),
    )
    page = records[:limit]
    last = page[-1] if page and len(records) > limit else None
    return InboundMessagePage(
        items=[_inbound_out(record) for record in page],
        next=None if last is None else encode_cursor(last.received_at, str(last.id)),
    )


@router.get(
    "/v1/opt-outs",
    operation_id="listOptOuts",
    summary="Numbers opted out now, most recent first",
    responses=problem_responses(401, 403, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def list_opt_outs(
    key: ReadKey,
    request: Request,
    cursor: Annotated[
        str | None,
        Query(min_length=1, description="The previous page's `next`; leave out for the first."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Opt-outs per page.")] = 50,
    tenant: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            pattern=r"^[\x21-\x7e]+$",
            description="Only this tenant's: an admin key names any tenant; another key only "
            "its own (403 `forbidden` otherwise).",
        ),
    ] = None,
) -> OptOutPage:
    """Keyset pagination: pass the previous page's `next` as `cursor` until it is null."""
    before = None if cursor is None else decode_uuid_cursor(cursor)
    records = await state_of(request).opt_outs.list_active(
        _viewer(key, tenant), before=before, limit=limit + 1
    )
    page = records[:limit]
    last = page[-1] if page and len(records) > limit else None
    return OptOutPage(
        items=[_opt_out_out(record) for record in page],
        next=None if last is None else encode_cursor(last.changed_at, str(last.id)),
    )


@router.get(
    "/v1/opt-outs/{msisdn}",
    operation_id="getOptOut",
    summary="Whether a number is opted out of your messages (from one sender)",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def get_opt_out(
    msisdn: Annotated[str, Path(description="E.164, e.g. +46701234567")],
    key: ReadKey,
    request: Request,
    sender: _SenderQuery = None,
    tenant: _TenantQuery = None,
) -> OptOutOut:
    """Your tenant's opt-out of the number: for every message, or with `sender` for that
    number's; with `tenant`, that tenant's (admin keys), such as the opt-out a STOP makes for
    every number of a tenant (`SMSGW_STOP_SCOPE=tenant`). 404 `not_opted_out` when there is
    none in force."""
    number = _path_e164(msisdn)
    try:
        record = await state_of(request).opt_outs.find(_viewer(key, tenant), number, sender)
    except SenderNotAssigned as exc:
        raise _query_sender_refused(exc) from exc
    if record is None:
        raise _not_opted_out(number)
    return _opt_out_out(record)


@router.post(
    "/v1/opt-outs",
    operation_id="createOptOut",
    status_code=201,
    summary="Opt a number out: no later message of yours (from `sender`) is sent to it",
    responses=problem_responses(401, 403, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def add_opt_out(
    opt_out: OptOutIn, key: SendKey, request: Request, response: Response
) -> OptOutOut:
    """Idempotent: opting out a number already opted out answers its (renewed) opt-out.
    A `sender` that is not your tenant's (or, for an admin key, not `tenant`'s) is 422
    `sender_not_assigned`."""
    viewer = _viewer(key, opt_out.tenant)
    record = await state_of(request).opt_outs.opt_out(
        viewer, opt_out.msisdn, opt_out.sender, opt_out.note
    )
    response.headers["Location"] = _location(record, named_tenant=opt_out.tenant is not None)
    return _opt_out_out(record)


def _location(record: OptOutRecord, *, named_tenant: bool) -> str:
    """The URL that addresses the row: its sender's, or (for an admin key that named the
    tenant) the tenant's."""
    if record.sender is not None:
        return f"/v1/opt-outs/{record.msisdn}?sender={quote(record.sender)}"
    if named_tenant and record.tenant is not None:
        return f"/v1/opt-outs/{record.msisdn}?tenant={quote(record.tenant)}"
    return f"/v1/opt-outs/{record.msisdn}"


@router.delete(
    "/v1/opt-outs/{msisdn}",
    operation_id="deleteOptOut",
    status_code=204,
    summary="Lift your opt-out of a number (from `sender`)",
    responses=problem_responses(401, 403, 404, 422, 429, 503),
    openapi_extra=AUTHENTICATED,
)
async def remove_opt_out(
    msisdn: Annotated[str, Path(description="E.164, e.g. +46701234567")],
    key: SendKey,
    request: Request,
    sender: _SenderQuery = None,
    tenant: _TenantQuery = None,
) -> Response:
    """Lifts your tenant's opt-out (for every message, or `sender`'s; with `tenant`, that
    tenant's, for admin keys); another opt-out in force (a global one, or one of the
    number's) still applies. 404 `not_opted_out` if there was none."""
    number = _path_e164(msisdn)
    viewer = _viewer(key, tenant)
    try:
        lifted = await state_of(request).opt_outs.opt_in(viewer, number, sender)
    except SenderNotAssigned as exc:
        raise _query_sender_refused(exc) from exc
    if not lifted:
        raise _not_opted_out(number)
    return Response(status_code=204)


def _viewer(key: ApiKeyRecord, tenant: str | None) -> Viewer:
    viewer = narrowed_to(viewer_for(key.tenant, key.scopes), tenant)
    if viewer is None:
        raise ProblemError(
            403, "forbidden", "An API key sees and changes only its own tenant's opt-outs."
        )
    return viewer


def _inbound_out(record: InboundRecord) -> InboundMessageOut:
    return InboundMessageOut(
        id=record.id,
        tenant=record.tenant,
        sinch_id=record.sinch_id,
        type=record.type,
        sender=record.sender,
        to=record.recipient,
        body=record.body,
        keyword=record.keyword,  # type: ignore[arg-type]
        client_reference=record.client_reference,
        operator_id=record.operator_id,
        received_at=record.received_at,
        sent_at=record.sent_at,
        created_at=record.created_at,
    )


def _opt_out_out(record: OptOutRecord) -> OptOutOut:
    return OptOutOut(
        id=record.id,
        msisdn=record.msisdn,
        tenant=record.tenant,
        sender=record.sender,
        source=cast(OptOutSource, record.source),
        keyword=record.keyword,
        inbound_id=record.inbound_id,
        note=record.note,
        opted_out_at=record.changed_at,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _e164(value: str) -> str:
    try:
        return parse_phone_number(value).e164
    except DomainError as exc:
        raise ValueError(f"Not an E.164 number: {exc.message}") from exc


def _path_e164(value: str) -> str:
    try:
        return _e164(value)
    except ValueError as exc:
        raise ProblemError(
            422,
            "invalid_phone_number",
            str(exc),
            errors=[
                ProblemField(field="path.msisdn", code="invalid_phone_number", message=str(exc))
            ],
        ) from exc


def _not_opted_out(msisdn: str) -> ProblemError:
    return ProblemError(404, "not_opted_out", f"{msisdn} is not opted out.")


def _query_sender_refused(exc: SenderNotAssigned) -> ProblemError:
    return ProblemError(
        422,
        exc.code,
        exc.message,
        errors=[ProblemField(field="query.sender", code=exc.code, message=exc.message)],
    )
