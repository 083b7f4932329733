"""How requests to Sinch are authenticated: an API token, or OAuth2 client credentials.

Both are ``httpx.Auth`` objects, passed to :class:`~smsgateway.sinch.client.SinchClient`. The
path prefix differs with the scheme: the service plan id for an API token, the project id for
OAuth2 (whose calls also go to the ``zt.`` hosts; see :mod:`smsgateway.sinch.regions`).
Neither class ever logs or prints a token; their ``repr`` hides it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smsgateway.sinch.errors import (
    SinchError,
    SinchHTTPError,
    SinchNotSent,
    SinchRateLimited,
    SinchServerError,
    SinchUnauthorized,
    error_from_response,
)
from smsgateway.sinch.regions import OAUTH2_TOKEN_URL

logger = logging.getLogger(__name__)


class ApiTokenAuth(httpx.Auth):
    """``Authorization: Bearer {API token}``: works in every region, with the service plan id."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the Sinch API token must not be empty")
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Adds the bearer header; nothing else to negotiate."""
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    @property
    def header_value(self) -> str:
        """The ``Authorization`` value, for requests written without httpx."""
        return f"Bearer {self._token}"

    def __repr__(self) -> str:
        return "ApiTokenAuth(token='***')"


class _TokenAnswer(BaseModel):
    """The token endpoint's answer; other fields (``scope``...) are ignored."""

    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    expires_in: float = Field(gt=0)
    token_type: str = "bearer"


@dataclass(frozen=True, slots=True)
class _AccessToken:
    value: str
    refresh_at: float  # on the auth's clock: past this, fetch a new one before using it

    def __repr__(self) -> str:
        return f"_AccessToken(value='***', refresh_at={self.refresh_at})"


class OAuth2ClientCredentials(httpx.Auth):
    """OAuth2 client credentials (us and eu only), with a cached, shared access token.

    The token is fetched with HTTP Basic ``key_id:key_secret`` and form
    ``grant_type=client_credentials``, cached, and renewed ``refresh_margin`` seconds before it
    expires (or halfway through its life if that is sooner). However many requests need a new
    token at once, ONE fetch is made and the others wait for it. A 401 (Sinch says
    ``Bearer error="expired"``) renews the token once and repeats the request once.
    Async only: ``http`` is the client used for the token requests (the app's pooled one will do).

    A failed token fetch raises from inside the request: :class:`SinchNotSent` when the token
    endpoint could not be reached, :class:`SinchServerError` or :class:`SinchRateLimited` when
    it is unwell, :class:`SinchUnauthorized` when it refuses the credentials.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        key_id: str,
        key_secret: str,
        token_url: str = OAUTH2_TOKEN_URL,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not key_id or not key_secret:
            raise ValueError("the Sinch OAuth2 key id and key secret must not be empty")
        self._http = http
        self._credentials = httpx.BasicAuth(key_id, key_secret)
        self._key_id = key_id
        self._token_url = token_url
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: _AccessToken | None = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"OAuth2ClientCredentials(key_id={self._key_id!r}, key_secret='***')"

    def sync_auth_flow(
        self,
        request: httpx.Request,  # noqa: ARG002 (httpx's signature)
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refused: the token cache is shared through an ``asyncio.Lock``."""
        raise RuntimeError("OAuth2ClientCredentials works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Adds a valid bearer token; on 401, renews it once and sends the request again."""
        token = await self._valid_token()
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code == 401:
            # Sinch answers an expired token with 401 and `Bearer error="expired"`; a token we
            # still think is fresh may have been revoked. Either way one renewal is worth it.
            logger.info("Sinch refused the OAuth2 token (401); renewing it once")
            token = await self._renew(stale=token)
            request.headers["Authorization"] = f"Bearer {token.value}"
            yield request

    async def access_token(self) -> str:
        """A token valid for at least the refresh margin, fetched only if the cached one is not."""
        return (await self._valid_token()).value

    async def _valid_token(self) -> _AccessToken:
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token
        return await self._renew(stale=token)

    async def _renew(self, *, stale: _AccessToken | None) -> _AccessToken:
        async with self._lock:
            current = self._token
            # Whoever held the lock before us may have renewed already: use theirs, don't refetch.
            if current is not None and current is not stale and self._clock() < current.refresh_at:
                return current
            self._token = await self._fetch()
            return self._token

    async def _fetch(self) -> _AccessToken:
        started = self._clock()
        try:
            response = await self._http.post(
                self._token_url,
                data={"grant_type": "client_credentials"},
                auth=self._credentials,
                headers={"Accept": "application/json"},
            )
        except httpx.RequestError as exc:
            # The SMS request waiting for this token has not been sent: safe to retry.
            raise SinchNotSent(
                f"could not fetch a Sinch OAuth2 token: {type(exc).__name__}"
            ) from exc
        if response.status_code != 200:
            raise self._refusal(response)
        try:
            answer = _TokenAnswer.model_validate_json(response.content)
        except ValidationError:
            # `from None`: the validation error quotes its input, which may hold the token.
            raise SinchUnauthorized(
                response.status_code, code=None, text="malformed OAuth2 token answer"
            ) from None
        lifetime = answer.expires_in
        margin = min(self._refresh_margin, lifetime / 2)
        logger.debug("fetched a Sinch OAuth2 token valid for %.0f s", lifetime)
        return _AccessToken(value=answer.access_token, refresh_at=started + lifetime - margin)

    @staticmethod
    def _refusal(response: httpx.Response) -> SinchError:
        error = error_from_response(response)
        if isinstance(error, SinchRateLimited | SinchServerError | SinchUnauthorized):
            return error
        # Any other answer from the token endpoint means these credentials get no token.
        if isinstance(error, SinchHTTPError):
            return SinchUnauthorized(error.status, code=error.code, text=error.text)
        return SinchUnauthorized(response.status_code, code=None, text="no OAuth2 token")
