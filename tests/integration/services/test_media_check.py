"""The optional MMS media check against a local HTTP server on a real socket: Content-Length
present, a type Sinch sends, HEAD or (when HEAD is refused) GET, and private addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from starlette.types import Receive, Scope, Send

from smsgateway.domain.media import MediaUnfit, MediaUrlRefused
from smsgateway.services.media_check import MediaCheck
from tests.support.live_server import live_server

pytestmark = pytest.mark.asyncio

JPEG = b"\xff\xd8\xff" + b"\x00" * 997


async def media_host(scope: Scope, receive: Receive, send: Send) -> None:
    """``/ok.jpg`` answers with length and type; ``/chunked.jpg`` streams without a length;
    ``/page`` is HTML; ``/get-only.png`` refuses HEAD (405); ``/gone`` is a 404."""
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    if path == "/chunked.jpg":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"image/jpeg")],
            }
        )
        await send({"type": "http.response.body", "body": JPEG[:10], "more_body": True})
        await send({"type": "http.response.body", "body": JPEG[10:]})
        return
    if path == "/get-only.png" and method == "HEAD":
        status, headers = 405, [(b"content-length", b"0"), (b"allow", b"GET")]
    elif path in ("/ok.jpg", "/get-only.png"):
        media_type = b"image/jpeg" if path.endswith(".jpg") else b"image/png; charset=binary"
        status = 200
        headers = [(b"content-type", media_type), (b"content-length", str(len(JPEG)).encode())]
    elif path == "/page":
        status, headers = 200, [(b"content-type", b"text/html"), (b"content-length", b"4")]
    else:
        status, headers = 404, [(b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    body = JPEG if status == 200 and method == "GET" else b""
    if path == "/page":
        body = b"<p/>" if method == "GET" else b""
    await send({"type": "http.response.body", "body": body})


@pytest_asyncio.fixture
async def host() -> AsyncIterator[str]:
    async with live_server(media_host) as base_url:
        yield base_url


@pytest_asyncio.fixture
async def check() -> AsyncIterator[MediaCheck]:
    async with httpx.AsyncClient(follow_redirects=False, trust_env=False) as http:
        yield MediaCheck(http, timeout=5.0, allow_private=True)


async def test_media_with_length_and_a_supported_type_passes(check: MediaCheck, host: str) -> None:
    await check.check(f"{host}/ok.jpg")


async def test_a_host_refusing_head_is_asked_with_get(check: MediaCheck, host: str) -> None:
    await check.check(f"{host}/get-only.png")


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/chunked.jpg", "media_length_unknown"),
        ("/page", "media_type_unsupported"),
        ("/gone", "media_unreachable"),
    ],
)
async def test_unfit_media_is_refused_with_its_code(
    check: MediaCheck, host: str, path: str, code: str
) -> None:
    with pytest.raises(MediaUnfit) as refused:
        await check.check(f"{host}{path}")
    assert refused.value.code == code
    assert refused.value.field == "media.url"


async def test_nothing_listening_is_unreachable(check: MediaCheck) -> None:
    with pytest.raises(MediaUnfit) as refused:
        await check.check("http://127.0.0.1:9/cat.jpg")
    assert refused.value.code == "media_unreachable"


async def test_a_name_resolving_to_a_private_address_is_refused_before_any_request(
    host: str,
) -> None:
    asked: list[tuple[str, int]] = []

    async def resolver(name: str, port: int) -> list[str]:
        asked.append((name, port))
        return ["93.184.215.14", "10.1.2.3"]

    async with httpx.AsyncClient() as http:
        check = MediaCheck(http, resolver=resolver)
        with pytest.raises(MediaUrlRefused) as refused:
            await check.check("https://media.example.com/cat.jpg")
    assert refused.value.code == "media_url_private"
    assert asked == [("media.example.com", 443)]


async def test_the_checked_address_is_the_one_called(host: str) -> None:
    port = int(host.rsplit(":", 1)[1])

    async def resolver(name: str, _port: int) -> list[str]:
        assert name == "media.test"
        return ["127.0.0.1"]

    async with httpx.AsyncClient(trust_env=False) as http:
        check = MediaCheck(http, resolver=resolver, allow_private=True)
        await check.check(f"http://media.test:{port}/ok.jpg")
