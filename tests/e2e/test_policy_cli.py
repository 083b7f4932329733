"""`smsgateway policy show|set|clear|log` and the admin API over a socket."""

from __future__ import annotations

import json

import httpx
import pytest

from smsgateway.app import create_app
from tests.support.api_keys import issue_api_key
from tests.support.live_server import live_server
from tests.support.processes import run_command as smsgateway
from tests.support.settings import make_settings

pytestmark = pytest.mark.slow


def test_set_show_narrow_clear_and_log(database_url: str) -> None:
    shown = smsgateway(database_url, "policy", "show", "--tenant", "acme")
    assert shown.returncode == 0, shown.stderr
    default = json.loads(shown.stdout)
    assert default["source"] == "gateway default"
    assert "premium_rate" in default["policy"]["refused_number_types"]

    document = '{"allowed_countries": ["us", "CA"], "spend": {"daily_segments": 1000}}'
    stored = smsgateway(database_url, "policy", "set", "--tenant", "acme", document, "--by", "ann")
    assert stored.returncode == 0, stored.stderr
    policy = json.loads(stored.stdout)
    assert policy["source"] == "stored"
    assert policy["updated_by"] == "ann"
    assert policy["policy"]["allowed_countries"] == ["CA", "US"]
    assert policy["policy"]["spend"]["daily_segments"] == 1000

    created = smsgateway(database_url, "apikey", "create", "--name", "web", "--tenant", "acme")
    assert created.returncode == 0, created.stderr
    narrowed = smsgateway(
        database_url,
        "policy",
        "set",
        "--tenant",
        "acme",
        "--key",
        "web",
        '{"allowed_countries": ["CA", "SE"]}',
    )
    assert narrowed.returncode == 0, narrowed.stderr
    assert json.loads(narrowed.stdout)["policy"]["allowed_countries"] == ["CA"]

    bad = smsgateway(database_url, "policy", "set", "--tenant", "acme", '{"mode": "loud"}')
    assert bad.returncode == 2
    assert "mode" in bad.stderr
    assert "Traceback" not in bad.stderr

    cleared = smsgateway(database_url, "policy", "clear", "--tenant", "acme", "--by", "bob")
    assert json.loads(cleared.stdout)["source"] == "gateway default"

    log = smsgateway(database_url, "policy", "log", "--tenant", "acme").stdout.splitlines()
    assert len(log) == 3
    assert "bob" in log[0]
    assert "cleared" in log[0]
    assert "ann" in log[2]


@pytest.mark.asyncio
async def test_the_admin_api_is_for_admin_tenants_only(database_url: str) -> None:
    admin = await issue_api_key(database_url, name="ops", tenant="operators")
    caller = await issue_api_key(database_url, name="shop", tenant="shop")
    settings = make_settings(database_url, policy_admin_tenants=["operators"])
    async with (
        live_server(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        forbidden = await client.get("/v1/admin/policies/shop", headers={"X-API-Key": caller})
        assert forbidden.status_code == 403
        assert forbidden.headers["content-type"] == "application/problem+json"
        headers = {"X-API-Key": admin}
        put = await client.put(
            "/v1/admin/policies/shop", json={"allowed_countries": ["SE"]}, headers=headers
        )
        assert put.status_code == 200, put.text
        assert put.json()["updated_by"] == "api_key:ops"
        invalid = await client.put(
            "/v1/admin/policies/shop", json={"allowed_countries": ["XX"]}, headers=headers
        )
        assert invalid.status_code == 422
        assert invalid.json()["code"] == "invalid_policy"
        assert invalid.json()["errors"][0]["field"] == "body.allowed_countries"
        changes = await client.get("/v1/admin/policies/shop/changes", headers=headers)
        assert [c["changed_by"] for c in changes.json()] == ["api_key:ops"]
        # The shop's own key is now held to Sweden, within the refresh interval.
        refused = await client.post(
            "/v1/messages",
            json={"to": ["+12015550123"], "body": "hi"},
            headers={"X-API-Key": caller},
        )
        assert refused.json()["code"] == "country_not_allowed"
