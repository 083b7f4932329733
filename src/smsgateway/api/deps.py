"""The lifespan's typed state, and the ``Annotated`` aliases that hand it to routes."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated, cast

import asyncpg
import httpx
from fastapi import Depends, Request

from smsgateway.api.webhook_auth import WebhookGuard
from smsgateway.services.accept import AcceptService
from smsgateway.services.api_keys import ApiKeyAuthenticator
from smsgateway.services.callbacks import CallbackPolicy
from smsgateway.services.delivery_reports import DeliveryReportService
from smsgateway.services.drafting import MessagePolicy
from smsgateway.services.inbound import InboundService
from smsgateway.services.opt_outs import OptOutService
from smsgateway.services.protection import PolicyBook
from smsgateway.services.rate_limits import RateLimits
from smsgateway.services.sender_ownership import SenderOwnership
from smsgateway.services.sinch_callbacks import SinchCallbackService
from smsgateway.settings import Settings
from smsgateway.sinch import SinchClient


@dataclass(frozen=True)
class AppState:
    """What the lifespan opens once per process and closes on shutdown."""

    settings: Settings
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    sinch: SinchClient
    authenticator: ApiKeyAuthenticator
    policy: MessagePolicy
    accept: AcceptService
    rate_limits: RateLimits
    schema_head: str | None
    sinch_mode: str
    webhook_guard: WebhookGuard
    delivery_reports: DeliveryReportService
    inbound: InboundService
    opt_outs: OptOutService
    sinch_callbacks: SinchCallbackService
    policies: PolicyBook
    senders: SenderOwnership
    callbacks: CallbackPolicy = field(default_factory=CallbackPolicy)
    started_monotonic: float = field(default_factory=time.monotonic)


def state_of(request: Request) -> AppState:
    return cast(AppState, request.state.app_state)


# Dependencies are async on purpose: FastAPI runs a plain `def` dependency in a worker thread,
# and that hand-off costs more than everything these do.
async def get_state(request: Request) -> AppState:
    return state_of(request)


async def get_settings(request: Request) -> Settings:
    return state_of(request).settings


async def get_pool(request: Request) -> asyncpg.Pool:
    return state_of(request).pool


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(get_pool)]
