"""The optional MMS media check (``SMSGW_MMS_CHECK_MEDIA=true``): ask the media's host for its
headers before accepting the message.

Sinch fetches the media itself, and refuses an answer without ``Content-Length`` (chunked)
or of a type it does not send; without this check the caller learns that only from a failed
delivery report. The check resolves the host and refuses a name that points at a private
address (the gateway must not be aimed at its own network), then connects to the address it
checked. It asks with ``HEAD``; a host that does not allow ``HEAD`` (405, 501) is asked with
``GET`` and only the headers are read.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import httpx

from smsgateway.domain.callback_targets import is_refused_address
from smsgateway.domain.media import MEDIA_URL_PRIVATE, MediaUnfit, MediaUrlRefused
from smsgateway.observability.media_metrics import MEDIA_CHECKS
from smsgateway.services.media import RichContent
from smsgateway.settings import Settings

# The media types Sinch sends by MMS (images, audio, video, vCard, calendar, PDF, text).
SUPPORTED_MEDIA_TYPES: Final = frozenset(
    {
        "image/jpeg",
        "image/jpg",
        "image/png",
        "image/gif",
        "image/bmp",
        "audio/mpeg",
        "audio/mp3",
        "audio/mp4",
        "audio/amr",
        "audio/aac",
        "audio/wav",
        "audio/x-wav",
        "audio/ogg",
        "video/mp4",
        "video/3gpp",
        "video/mpeg",
        "video/quicktime",
        "text/vcard",
        "text/x-vcard",
        "text/calendar",
        "text/plain",
        "application/pdf",
    }
)

MEDIA_UNREACHABLE = "media_unreachable"
MEDIA_LENGTH_UNKNOWN = "media_length_unknown"
MEDIA_TYPE_UNSUPPORTED = "media_type_unsupported"

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the event loop's resolver)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class MediaCheck:
    """Checks a media URL's headers; one per process, sharing the caller's ``http`` client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout: float = 5.0,
        allow_private: bool = False,
        resolver: Resolver = resolve_host,
    ) -> None:
        self._http = http
        self._timeout = timeout
        self._allow_private = allow_private
        self._resolve = resolver

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaCheck:
        """A check with its own client: no redirects (each hop would need the address
        check), no proxy or .netrc from the environment."""
        http = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        return cls(
            http,
            timeout=settings.mms_check_timeout_seconds,
            allow_private=settings.mms_media_allow_private,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check_draft(self, content: RichContent) -> None:
        """Checks the media of an MMS draft; nothing to do for other kinds."""
        if content.media is not None:
            await self.check(content.media.url)

    async def check(self, url: str) -> None:
        """Raises ``MediaUrlRefused`` (private address) or ``MediaUnfit`` with its code."""
        try:
            await self._check(url)
        except (MediaUnfit, MediaUrlRefused) as exc:
            MEDIA_CHECKS.labels(exc.code).inc()
            raise
        MEDIA_CHECKS.labels("ok").inc()

    async def _check(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            async with asyncio.timeout(self._timeout):
                addresses = await self._resolve(host, port)
        except (OSError, TimeoutError) as exc:
            raise MediaUnfit(
                MEDIA_UNREACHABLE, f"The media host {host!r} cannot be resolved."
            ) from exc
        if not addresses:
            raise MediaUnfit(MEDIA_UNREACHABLE, f"The media host {host!r} has no address.")
        if not self._allow_private and any(
            is_refused_address(address, allow_private=False) for address in addresses
        ):
            raise MediaUrlRefused(
                MEDIA_URL_PRIVATE,
                f"The media host {host!r} resolves to a private, loopback or link-local "
                "address; Sinch fetches media from public addresses only.",
            )
        # Connect to the address just checked, so the name cannot be re-pointed meanwhile;
        # the Host header (and TLS server name) stay the URL's.
        target = _with_host(url, addresses[0])
        headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        try:
            response = await self._ask("HEAD", target, headers, extensions)
            if response.status_code in (405, 501):
                response = await self._ask("GET", target, headers, extensions)
        except httpx.HTTPError as exc:
            raise MediaUnfit(
                MEDIA_UNREACHABLE, f"The media URL could not be fetched: {type(exc).__name__}."
            ) from exc
        if not response.is_success:
            raise MediaUnfit(
                MEDIA_UNREACHABLE, f"The media URL answered HTTP {response.status_code}."
            )
        if "content-length" not in response.headers:
            raise MediaUnfit(
                MEDIA_LENGTH_UNKNOWN,
                "The media URL answers without Content-Length (chunked); Sinch refuses such media.",
            )
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media_type not in SUPPORTED_MEDIA_TYPES:
            raise MediaUnfit(
                MEDIA_TYPE_UNSUPPORTED,
                f"The media type {media_type or '(none)'!r} is not one Sinch sends by MMS.",
            )

    async def _ask(
        self, method: str, url: str, headers: dict[str, str], extensions: dict[str, str]
    ) -> httpx.Response:
        request = self._http.build_request(
            method, url, headers=headers, timeout=self._timeout, extensions=extensions
        )
        # Headers only: the body (of a GET) is never read.
        response = await self._http.send(request, stream=True, follow_redirects=False)
        await response.aclose()
        return response


def _with_host(url: str, address: str) -> str:
    parts = urlsplit(url)
    host = f"[{address}]" if ":" in address else address
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
