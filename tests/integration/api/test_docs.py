"""Swagger UI and ReDoc work offline: every asset their pages reference is served by us."""

from __future__ import annotations

import re

import pytest

from smsgateway.app import create_app
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_every_asset_a_docs_page_references_is_served_locally(
    database_url: str, page: str
) -> None:
    async with lifespan_client(create_app(make_settings(database_url))) as client:
        html = await client.get(page)
        assert html.status_code == 200
        references = [a or b for a, b in _REFERENCE.findall(html.text)]
        assert references, "the page should reference its script and stylesheet"
        external = [ref for ref in references if re.match(r"^(https?:)?//", ref)]
        assert external == [], f"{page} must not load anything from the network"
        for reference in references:
            asset = await client.get(reference)
            assert asset.status_code == 200, reference
            assert asset.content, reference
    assert any(ref.endswith(".js") for ref in references)


async def test_every_route_is_documented_with_a_summary(database_url: str) -> None:
    async with lifespan_client(create_app(make_settings(database_url))) as client:
        schema = (await client.get("/openapi.json")).json()
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]
    assert {path for path, _, _ in operations} >= {"/healthz", "/readyz", "/health", "/metrics"}
    for path, method, operation in operations:
        assert operation.get("summary"), f"{method.upper()} {path} has no summary"
    assert "Problem" in schema["components"]["schemas"]
    readyz_503 = schema["paths"]["/readyz"]["get"]["responses"]["503"]["content"]
    assert list(readyz_503) == ["application/problem+json"]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"]["name"] == "X-API-Key"
    assert schemes["ApiKeyBearer"]["scheme"] == "bearer"
    send = schema["paths"]["/v1/messages"]["post"]
    assert {"ApiKeyHeader": []} in send["security"]
    assert "security" not in schema["paths"]["/healthz"]["get"]
