"""Opt-outs that cover every number of a tenant (a STOP with SMSGW_STOP_SCOPE=tenant, or one
made through the API) are addressed by number like any other: by the tenant's keys, and by
admin keys naming the tenant; another tenant can neither see nor lift them. Real sockets."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.tenancy.harness import (
    ACME_NUMBER,
    ACME_OTHER_NUMBER,
    GLOBEX_NUMBER,
    SUBSCRIBER,
    send,
    served,
)

pytestmark = pytest.mark.asyncio

URL = f"/v1/opt-outs/{SUBSCRIBER}"


def _forbidden(response: httpx.Response) -> bool:
    return response.status_code == 403 and response.json()["code"] == "forbidden"


async def test_a_tenant_wide_stop_is_addressed_by_number_and_tenant(database_url: str) -> None:
    async with served(database_url, stop_scope="tenant") as gateway:
        await gateway.inbound(ACME_NUMBER, "STOP")

        # The tenant's own keys address it by number, with or without naming the tenant.
        mine = await gateway.acme.get(URL)
        assert mine.status_code == 200, mine.text
        assert (mine.json()["tenant"], mine.json()["sender"]) == ("acme", None)
        assert (await gateway.acme.get(URL, params={"tenant": "acme"})).status_code == 200

        # An admin key names the tenant; without it, it addresses the global opt-outs only.
        assert (await gateway.admin.get(URL)).status_code == 404
        seen = await gateway.admin.get(URL, params={"tenant": "acme"})
        assert seen.status_code == 200
        assert seen.json()["id"] == mine.json()["id"]
        listed = await gateway.admin.get("/v1/opt-outs", params={"tenant": "acme"})
        assert [item["id"] for item in listed.json()["items"]] == [mine.json()["id"]]
        other = await gateway.admin.get("/v1/opt-outs", params={"tenant": "globex"})
        assert other.json()["items"] == []

        # Another tenant can neither see nor lift it, by number or by naming the tenant.
        assert (await gateway.globex.get(URL)).status_code == 404
        assert _forbidden(await gateway.globex.get(URL, params={"tenant": "acme"}))
        assert _forbidden(await gateway.globex.get("/v1/opt-outs", params={"tenant": "acme"}))
        assert (await gateway.globex.delete(URL)).status_code == 404
        assert _forbidden(await gateway.globex.delete(URL, params={"tenant": "acme"}))
        assert await send(gateway.acme, ACME_OTHER_NUMBER) == "opted_out"

        # The admin lifts it by number and tenant: every acme number may send again.
        assert (await gateway.admin.delete(URL, params={"tenant": "acme"})).status_code == 204
        assert (await gateway.acme.get(URL)).status_code == 404
        assert await send(gateway.acme, ACME_NUMBER) == "queued"
        assert await send(gateway.acme, ACME_OTHER_NUMBER) == "queued"


async def test_an_admin_makes_a_tenant_wide_opt_out_and_is_told_where_it_is(
    database_url: str,
) -> None:
    async with served(database_url) as gateway:
        created = await gateway.admin.post(
            "/v1/opt-outs", json={"msisdn": SUBSCRIBER, "tenant": "acme"}
        )
        assert created.status_code == 201, created.text
        assert (created.json()["tenant"], created.json()["sender"]) == ("acme", None)
        location = created.headers["location"]
        assert location == f"{URL}?tenant=acme"
        assert (await gateway.admin.get(location)).json()["id"] == created.json()["id"]
        # It is acme's: acme lifts it by number, and globex was never covered by it.
        assert await send(gateway.globex, GLOBEX_NUMBER) == "queued"
        assert (await gateway.acme.delete(URL)).status_code == 204

        planted = await gateway.globex.post(
            "/v1/opt-outs", json={"msisdn": SUBSCRIBER, "tenant": "acme"}
        )
        assert _forbidden(planted)
        assert (await gateway.acme.get(URL)).status_code == 404
