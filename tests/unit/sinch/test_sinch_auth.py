"""API-token and OAuth2 authentication: one token fetch for many callers, renewal before expiry,
one renewal and retry on 401, and token-endpoint failures mapped to SinchErrors."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import httpx
import pytest
import pytest_asyncio

from smsgateway.sinch.auth import ApiTokenAuth, OAuth2ClientCredentials
from smsgateway.sinch.client import SinchClient
from smsgateway.sinch.errors import (
    SinchNotSent,
    SinchRateLimited,
    SinchServerError,
    SinchUnauthorized,
)
from smsgateway.sinch.retry import NO_RETRY, RetryPolicy
from tests.unit.sinch.fakes import BATCH_ID, FakeTime, batch_json

TOKEN_URL = "https://auth.sinch.com/oauth2/token"
PROJECT = "proj-1"
BATCH_PATH = f"/xms/v1/{PROJECT}/batches/{BATCH_ID}"
KEY_ID = "key-id-1"
KEY_SECRET = "key-SECRET-never-logged"


class FakeSinch:
    """A token endpoint issuing tok-1, tok-2, ... and an SMS API accepting the unrevoked ones."""

    def __init__(self, lifetime: float = 3600) -> None:
        self.lifetime = lifetime
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.token_requests: list[httpx.Request] = []
        self.sms_requests: list[httpx.Request] = []
        # Tokens as received: httpx re-sends the same Request object with a new header.
        self.sms_tokens: list[str] = []
        self.gate: asyncio.Event | None = None  # when set, token answers wait for it
        self.token_started = asyncio.Event()
        self.reject_all = False
        self.hold_sms_until: int | None = None  # hold SMS answers until this many arrived
        self._sms_released = asyncio.Event()
        self.token_failure: httpx.Response | type[httpx.TransportError] | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.sinch.com":
            self.token_requests.append(request)
            self.token_started.set()
            if self.gate is not None:
                await self.gate.wait()
            if isinstance(self.token_failure, httpx.Response):
                return self.token_failure
            if self.token_failure is not None:
                raise self.token_failure("token endpoint down", request=request)
            self.issued.append(f"tok-{len(self.issued) + 1}")
            self.valid.add(self.issued[-1])
            return httpx.Response(
                200,
                json={
                    "access_token": self.issued[-1],
                    "expires_in": self.lifetime,
                    "token_type": "bearer",
                    "scope": "",
                },
            )
        self.sms_requests.append(request)
        token = request.headers["authorization"].removeprefix("Bearer ")
        self.sms_tokens.append(token)
        if self.hold_sms_until is not None:
            if len(self.sms_tokens) >= self.hold_sms_until:
                self._sms_released.set()
            await self._sms_released.wait()
        if self.reject_all or token not in self.valid:
            return httpx.Response(
                401, headers={"www-authenticate": 'Bearer error="expired"'}, text=""
            )
        return httpx.Response(200, json=batch_json())

    def expire_all(self) -> None:
        """Sinch now refuses every token issued so far, as it does once they expire."""
        self.valid.clear()

    def tokens_used(self) -> list[str]:
        return list(self.sms_tokens)


@pytest_asyncio.fixture
async def sinch() -> AsyncIterator[tuple[FakeSinch, httpx.AsyncClient]]:
    fake = FakeSinch()
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        yield fake, http


def oauth_client(
    http: httpx.AsyncClient, fake_time: FakeTime, **options: object
) -> tuple[SinchClient, OAuth2ClientCredentials]:
    auth = OAuth2ClientCredentials(
        http, key_id=KEY_ID, key_secret=KEY_SECRET, clock=fake_time.clock, **options
    )
    client = SinchClient(
        http,
        base_url="https://zt.us.sms.api.sinch.com",
        path_id=PROJECT,
        auth=auth,
        retry_policy=NO_RETRY,
    )
    return client, auth


@pytest.mark.asyncio
async def test_api_token_is_a_bearer_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        await http.get("https://us.sms.api.sinch.com/", auth=ApiTokenAuth("abc"))

    assert seen[0].headers["authorization"] == "Bearer abc"
    assert "abc" not in repr(ApiTokenAuth("abc"))
    with pytest.raises(ValueError, match="empty"):
        ApiTokenAuth("")


@pytest.mark.asyncio
async def test_the_token_request_is_client_credentials_with_basic_auth(
    sinch: tuple[FakeSinch, httpx.AsyncClient], fake_time: FakeTime
) -> None:
    fake, http = sinch
    client, _ = oauth_client(http, fake_time)

    await client.get_batch(BATCH_ID)

    (token_request,) = fake.token_requests
    assert str(token_request.url) == TOKEN_URL
    assert token_request.method == "POST"
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {"grant_type": ["client_credentials"]}
    expected = base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
    assert token_request.headers["authorization"] == f"Basic {expected}"
    assert fake.tokens_used() == ["tok-1"]


@pytest.mark.asyncio
async def test_many_concurrent_calls_make_one_token_request(
    sinch: tuple[FakeSinch, httpx.AsyncClient], fake_time: FakeTime
) -> None:
    fake, http = sinch
    fake.gate = asyncio.Event()
    client, _ = oauth_client(http, fake_time)

    calls = [asyncio.create_task(client.get_batch(BATCH_ID)) for _ in range(25)]
    # Every call has started and the first holds the token fetch open: all others now wait.
    await fake.token_started.wait()
    fake.gate.set()
    batches = await asyncio.gather(*calls)

    assert len(batches) == 25
    assert len(fake.token_requests) == 1
    assert fake.tokens_used() == ["tok-1"] * 25


@pytest.mark.asyncio
async def test_the_token_is_cached_then_renewed_before_it_expires(
    sinch: tuple[FakeSinch, httpx.AsyncClient], fake_time: FakeTime
) -> None:
    fake, http = sinch
    client, _ = oauth_client(http, fake_time, refresh_margin=60.0)

    await client.get_batch(BATCH_ID)
    fake_time.now += 3539  # 61 s of life left: still good
    await client.get_batch(BATCH_ID)
    fake_time.now += 1  # 60 s left: renew now, before Sinch would refuse it
    await client.get_batch(BATCH_ID)

    assert len(fake.token_requests) == 2
    assert fake.tokens_used() == ["tok-1", "tok-1", "tok-2"]
    assert len(fake.sms_requests) == 3  # no 401 was needed


@pytest.mark.asyncio
async def test_a_short_lived_token_is_renewed_halfway(
    sinch: tuple[FakeSinch, httpx.AsyncClient], fake_time: FakeTime
) -> None:
    fake, http = sinch
    fake.lifetime = 60
    _, auth = oauth_client(http, fake_time, refresh_margin=600.0)

    assert await auth.access_token() == "tok-1"
    fake_time.now += 29
    assert await auth.access_token() == "tok-1"
    fake_time.now += 1
    assert await auth.access_token() == "tok-2"


@pytest.mark.asyncio
async def test_a_401_for_an_expired_token_renews_once_and_retries(
    sinch: tuple[FakeSinch, httpx.AsyncClient], fake_time: FakeTime
) -> None:
    fake, http = sinch
    client, auth = oauth_client(http, fake_time)
    await auth.access_token()
    fake.expire_all()  # our clock says the token is fresh; Sinch disagrees

    batch = await client.get_batch(BATCH_ID)

    assert batch.id == BATCH_ID
    assert fake.tokens_used() == ["tok-1", "tok-2"]
    assert len(fake.token_requests) == 2


@pytest.mark.asyncio
async def test_a_second_401_is_unauthorized_without_more_renewals(
    sinch: tuple[FakeSinch, httpx.AsyncClient], fake_time: FakeTime
) -> None:
    fake, http = sinch
    fake.reject_all = True
    client, _ = oauth_client(http, fake_time)

    with pytest.raises(SinchUnauthorized):
        await client.get_batch(BATCH_ID)

    assert len(fake.token_requests) == 2
    assert len(fake.sms_requests) == 2


@pytest.mark.asyncio
async def test_concurrent_401s_share_one_renewal(
    sinch: tuple[FakeSinch, httpx.AsyncClient], fake_time: FakeTime
) -> None:
    fake, http = sinch
    client, auth = oauth_client(http, fake_time)
    await auth.access_token()
    fake.expire_all()
    fake.hold_sms_until = 10  # all ten first tries are in flight, then all get 401 together

    await asyncio.gather(*(client.get_batch(BATCH_ID) for _ in range(10)))

    assert len(fake.token_requests) == 2
    assert sorted(fake.tokens_used()) == ["tok-1"] * 10 + ["tok-2"] * 10


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (httpx.ConnectError, SinchNotSent),
        (httpx.ReadTimeout, SinchNotSent),
        (httpx.Response(503), SinchServerError),
        (httpx.Response(429, headers={"Retry-After": "3"}), SinchRateLimited),
        (
            httpx.Response(401, json={"error": "invalid_client", "error_description": "no"}),
            SinchUnauthorized,
        ),
        (httpx.Response(400, json={"error": "invalid_request"}), SinchUnauthorized),
        (httpx.Response(200, json={"access_token": ""}), SinchUnauthorized),
        (httpx.Response(200, text="not json"), SinchUnauthorized),
    ],
)
async def test_token_endpoint_failures(
    sinch: tuple[FakeSinch, httpx.AsyncClient],
    fake_time: FakeTime,
    failure: httpx.Response | type[httpx.TransportError],
    kind: type[Exception],
) -> None:
    fake, http = sinch
    fake.token_failure = failure
    client, _ = oauth_client(http, fake_time)

    with pytest.raises(kind) as caught:
        await client.get_batch(BATCH_ID)

    assert not fake.sms_requests
    assert getattr(caught.value, "operation", None) == "get_batch"


@pytest.mark.asyncio
async def test_the_client_retries_when_the_token_endpoint_was_unreachable(
    sinch: tuple[FakeSinch, httpx.AsyncClient], fake_time: FakeTime
) -> None:
    fake, http = sinch
    fake.token_failure = httpx.ConnectError

    async def sleep_then_heal(seconds: float) -> None:
        await fake_time.sleep(seconds)
        fake.token_failure = None

    auth = OAuth2ClientCredentials(
        http, key_id=KEY_ID, key_secret=KEY_SECRET, clock=fake_time.clock
    )
    client = SinchClient(
        http,
        base_url="https://zt.us.sms.api.sinch.com",
        path_id=PROJECT,
        auth=auth,
        retry_policy=RetryPolicy(clock=fake_time.clock, sleep=sleep_then_heal),
    )

    assert (await client.get_batch(BATCH_ID)).id == BATCH_ID
    assert len(fake.token_requests) == 2
    assert fake.tokens_used() == ["tok-1"]


@pytest.mark.asyncio
async def test_oauth2_is_async_only(sinch: tuple[FakeSinch, httpx.AsyncClient]) -> None:
    _, async_http = sinch
    auth = OAuth2ClientCredentials(async_http, key_id=KEY_ID, key_secret=KEY_SECRET)
    request = httpx.Request("GET", "https://zt.us.sms.api.sinch.com/")

    # A sync client would call this; it must refuse rather than send without a token.
    with pytest.raises(RuntimeError, match="AsyncClient only"):
        auth.sync_auth_flow(request)


@pytest.mark.asyncio
async def test_oauth2_refuses_empty_credentials_and_hides_the_secret(
    sinch: tuple[FakeSinch, httpx.AsyncClient],
) -> None:
    _, http = sinch
    with pytest.raises(ValueError, match="must not be empty"):
        OAuth2ClientCredentials(http, key_id=KEY_ID, key_secret="")
    auth = OAuth2ClientCredentials(http, key_id=KEY_ID, key_secret=KEY_SECRET)
    assert KEY_SECRET not in repr(auth)
    assert KEY_ID in repr(auth)


@pytest.mark.asyncio
async def test_factory_for_oauth2_uses_the_zt_host_and_project(
    sinch: tuple[FakeSinch, httpx.AsyncClient],
) -> None:
    fake, http = sinch
    client = SinchClient.for_oauth2(
        http, project_id=PROJECT, key_id=KEY_ID, key_secret=KEY_SECRET, region="eu"
    )

    await client.get_batch(BATCH_ID)

    assert str(fake.sms_requests[0].url) == f"https://zt.eu.sms.api.sinch.com{BATCH_PATH}"
    assert str(fake.token_requests[0].url) == TOKEN_URL
    with pytest.raises(ValueError, match="us and eu"):
        SinchClient.for_oauth2(http, project_id=PROJECT, key_id="k", key_secret="s", region="au")
