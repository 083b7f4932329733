"""``/v1/admin/policies`` (api/policies.py): who may call it, get/put/delete per tenant, the
problem+json of a bad document, the change log (who and when), and the CLI agreeing with it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio

from smsgateway.app import create_app
from smsgateway.domain.api_keys import DEFAULT_SCOPES
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.processes import run_command as smsgateway
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

SHOP = "/v1/admin/policies/shop"
OTP_POLICY = {
    "allowed_countries": ["SE", "NO"],
    "velocity": {"per_prefix": 20, "per_country": 500},
    "spend": {"daily_segments": 5000},
}


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, policy_admin_tenants=["operators"])
    async with lifespan_client(create_app(settings)) as client:
        yield client


async def change_rows(database_url: str, tenant: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        return await connection.fetch(
            "SELECT changed_by, changed_at, policy FROM protection_policy_change"
            " WHERE tenant = $1 ORDER BY changed_at, id",
            tenant,
        )
    finally:
        await connection.close()


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["code"] == code
    assert problem["type"]
    assert problem["title"]
    return problem


ROUTES = [("GET", SHOP), ("PUT", SHOP), ("DELETE", SHOP), ("GET", f"{SHOP}/changes")]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_without_a_valid_key_every_route_is_401(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    body = {"json": OTP_POLICY} if method == "PUT" else {}
    missing = await client.request(method, path, **body)  # type: ignore[arg-type]
    assert_problem(missing, 401, "missing_api_key")
    assert "www-authenticate" in missing.headers
    unknown = await client.request(
        method,
        path,
        headers={"X-API-Key": "sgw_nobody_" + "0" * 40},
        **body,  # type: ignore[arg-type]
    )
    assert_problem(unknown, 401, "invalid_api_key")


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_key_without_admin_scope_or_admin_tenant_is_403_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str, method: str, path: str
) -> None:
    # Its own tenant's policy included: a tenant does not set its own limits.
    key = await issue_api_key(database_url, name="shop", tenant="shop", scopes=DEFAULT_SCOPES)
    body = {"json": {"allowed_countries": []}} if method == "PUT" else {}
    response = await client.request(
        method,
        path,
        headers={"X-API-Key": key},
        **body,  # type: ignore[arg-type]
    )
    assert_problem(response, 403, "forbidden")
    assert await change_rows(database_url, "shop") == []


async def test_an_admin_scoped_key_gets_puts_and_deletes_and_each_change_is_logged(
    client: httpx.AsyncClient, database_url: str
) -> None:
    # The admin scope alone is enough: its tenant is not in SMSGW_POLICY_ADMIN_TENANTS.
    headers = {"X-API-Key": await issue_api_key(database_url, name="root", tenant="elsewhere")}
    before = datetime.now(UTC) - timedelta(seconds=5)

    default = await client.get(SHOP, headers=headers)
    assert default.status_code == 200, default.text
    assert default.json()["source"] == "gateway default"
    assert (default.json()["updated_at"], default.json()["updated_by"]) == (None, None)
    assert "premium_rate" in default.json()["policy"]["refused_number_types"]

    put = await client.put(SHOP, json=OTP_POLICY, headers=headers)
    assert put.status_code == 200, put.text
    stored = put.json()
    assert (stored["tenant"], stored["source"], stored["updated_by"]) == (
        "shop",
        "stored",
        "api_key:root",
    )
    assert stored["policy"]["allowed_countries"] == ["NO", "SE"]
    assert stored["policy"]["velocity"]["per_prefix"] == 20
    assert stored["policy"]["spend"]["daily_segments"] == 5000
    assert (await client.get(SHOP, headers=headers)).json() == stored
    # Another tenant is untouched.
    other = (await client.get("/v1/admin/policies/acme", headers=headers)).json()
    assert other["source"] == "gateway default"

    deleted = await client.delete(SHOP, headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["source"] == "gateway default"
    assert (await client.get(SHOP, headers=headers)).json()["source"] == "gateway default"

    changes = (await client.get(f"{SHOP}/changes", headers=headers)).json()
    assert [(c["changed_by"], c["policy"] is None) for c in changes] == [
        ("api_key:root", True),
        ("api_key:root", False),
    ], "newest first: the delete, then the put"
    assert changes[1]["policy"] == OTP_POLICY
    rows = await change_rows(database_url, "shop")
    assert [row["changed_by"] for row in rows] == ["api_key:root", "api_key:root"]
    after = datetime.now(UTC) + timedelta(seconds=5)
    assert all(before <= row["changed_at"] <= after for row in rows)
    assert rows[0]["changed_at"] <= rows[1]["changed_at"]


async def test_a_key_of_an_admin_tenant_is_recorded_by_its_name(
    client: httpx.AsyncClient, database_url: str
) -> None:
    key = await issue_api_key(database_url, name="ops", tenant="operators", scopes=DEFAULT_SCOPES)
    put = await client.put(SHOP, json={"mode": "monitor"}, headers={"X-API-Key": key})
    assert put.status_code == 200, put.text
    assert put.json()["updated_by"] == "api_key:ops"
    assert [row["changed_by"] for row in await change_rows(database_url, "shop")] == ["api_key:ops"]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"allowed_countries": ["XX"]}, "body.allowed_countries"),
        ({"blocked_countries": "SE"}, "body.blocked_countries"),
        ({"mode": "loud"}, "body.mode"),
        ({"refused_number_types": ["fax"]}, "body.refused_number_types"),
        ({"velocity": {"window_seconds": 0}}, "body.velocity.window_seconds"),
        ({"velocity": {"per_prefix": -1}}, "body.velocity.per_prefix"),
        ({"spend": {"daily_segments": "lots"}}, "body.spend.daily_segments"),
        ({"spend": {"warn_at": 2}}, "body.spend.warn_at"),
    ],
)
async def test_a_bad_document_is_a_422_naming_its_field_and_changes_nothing(
    client: httpx.AsyncClient, database_url: str, document: dict[str, Any], field: str
) -> None:
    headers = {"X-API-Key": await issue_api_key(database_url, name="root", tenant="ops")}
    problem = assert_problem(
        await client.put(SHOP, json=document, headers=headers), 422, "invalid_policy"
    )
    assert [error["field"] for error in problem["errors"]] == [field]
    assert await change_rows(database_url, "shop") == []
    assert (await client.get(SHOP, headers=headers)).json()["source"] == "gateway default"


async def test_a_body_that_is_not_an_object_is_a_422(
    client: httpx.AsyncClient, database_url: str
) -> None:
    headers = {"X-API-Key": await issue_api_key(database_url, name="root", tenant="ops")}
    problem = assert_problem(
        await client.put(SHOP, json=["SE"], headers=headers), 422, "validation_error"
    )
    assert problem["errors"][0]["field"] == "body"
    assert await change_rows(database_url, "shop") == []


@pytest.mark.slow
async def test_the_cli_and_the_api_show_the_same_policy(
    client: httpx.AsyncClient, database_url: str
) -> None:
    headers = {"X-API-Key": await issue_api_key(database_url, name="root", tenant="ops")}
    by_cli = smsgateway(
        database_url, "policy", "set", "--tenant", "shop", json.dumps(OTP_POLICY), "--by", "ann"
    )
    assert by_cli.returncode == 0, by_cli.stderr
    from_api = (await client.get(SHOP, headers=headers)).json()
    assert from_api["updated_by"] == "ann"
    assert from_api["policy"] == json.loads(by_cli.stdout)["policy"]

    put = await client.put(SHOP, json={"blocked_countries": ["RU"]}, headers=headers)
    assert put.status_code == 200, put.text
    shown = smsgateway(database_url, "policy", "show", "--tenant", "shop")
    assert shown.returncode == 0, shown.stderr
    from_cli = json.loads(shown.stdout)
    assert (from_cli["source"], from_cli["updated_by"]) == ("stored", "api_key:root")
    assert from_cli["policy"] == put.json()["policy"]
    assert datetime.fromisoformat(from_cli["updated_at"]) == datetime.fromisoformat(
        put.json()["updated_at"].replace("Z", "+00:00")
    )
    log = smsgateway(database_url, "policy", "log", "--tenant", "shop").stdout.splitlines()
    assert len(log) == 2
    assert "api_key:root" in log[0]
    assert "ann" in log[1]


async def test_openapi_declares_every_answer_of_the_admin_routes(
    client: httpx.AsyncClient,
) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    declared = {
        (method.upper(), path): set(operation["responses"])
        for path, item in paths.items()
        if path.startswith("/v1/admin/policies/")
        for method, operation in item.items()
    }
    for route in ROUTES:
        path = route[1].replace("/shop", "/{tenant}")
        assert {"200", "401", "403"} <= declared[(route[0], path)], route
    assert "422" in declared[("PUT", "/v1/admin/policies/{tenant}")]
