"""Tenant A can neither see nor change tenant B's inbound messages or opt-outs; an admin key
sees all, including numbers assigned to no tenant. Over real sockets (uvicorn on loopback)."""

from __future__ import annotations

import pytest

from tests.integration.tenancy.harness import (
    ACME_NUMBER,
    ACME_OTHER_NUMBER,
    GLOBEX_NUMBER,
    SUBSCRIBER,
    UNASSIGNED_NUMBER,
    send,
    served,
)

pytestmark = pytest.mark.asyncio


async def test_each_tenant_sees_the_inbound_messages_of_its_own_numbers_only(
    database_url: str,
) -> None:
    async with served(database_url) as gateway:
        await gateway.inbound(ACME_NUMBER, "for acme")
        await gateway.inbound(GLOBEX_NUMBER, "for globex")
        await gateway.inbound(UNASSIGNED_NUMBER, "for nobody")

        async def bodies(client_name: str, **params: str) -> set[str]:
            client = getattr(gateway, client_name)
            response = await client.get("/v1/inbound-messages", params=params)
            assert response.status_code == 200, response.text
            return {item["body"] for item in response.json()["items"]}

        assert await bodies("acme") == {"for acme"}
        assert await bodies("globex") == {"for globex"}
        assert await bodies("admin") == {"for acme", "for globex", "for nobody"}
        # Filtering by another tenant's number finds nothing rather than its messages.
        assert await bodies("acme", to=GLOBEX_NUMBER) == set()
        assert await bodies("acme", **{"from": SUBSCRIBER}) == {"for acme"}
        listed = (await gateway.admin.get("/v1/inbound-messages")).json()["items"]
        assert {item["body"]: item["tenant"] for item in listed} == {
            "for acme": "acme",
            "for globex": "globex",
            "for nobody": None,
        }


async def test_a_tenant_can_neither_see_nor_change_another_tenants_opt_outs(
    database_url: str,
) -> None:
    async with served(database_url) as gateway:
        stop = await gateway.inbound(GLOBEX_NUMBER, "STOP")
        assert stop["opted_out"] is True
        globex_view = (await gateway.globex.get("/v1/opt-outs")).json()["items"]
        assert [(i["msisdn"], i["tenant"], i["sender"]) for i in globex_view] == [
            (SUBSCRIBER, "globex", GLOBEX_NUMBER)
        ]

        # Acme does not see it, by list or by number and sender.
        assert (await gateway.acme.get("/v1/opt-outs")).json()["items"] == []
        peek = await gateway.acme.get(
            f"/v1/opt-outs/{SUBSCRIBER}", params={"sender": GLOBEX_NUMBER}
        )
        assert (peek.status_code, peek.json()["code"]) == (422, "sender_not_assigned")
        assert (await gateway.acme.get(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404

        # Nor can it lift it, or write opt-outs against globex's number.
        lift = await gateway.acme.delete(
            f"/v1/opt-outs/{SUBSCRIBER}", params={"sender": GLOBEX_NUMBER}
        )
        assert (lift.status_code, lift.json()["code"]) == (422, "sender_not_assigned")
        assert lift.json()["errors"][0]["field"] == "query.sender"
        assert (await gateway.acme.delete(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404
        planted = await gateway.acme.post(
            "/v1/opt-outs", json={"msisdn": "+46701234567", "sender": GLOBEX_NUMBER}
        )
        assert (planted.status_code, planted.json()["code"]) == (422, "sender_not_assigned")
        assert planted.json()["errors"][0]["field"] == "body.sender"

        # Globex's opt-out is intact and still blocks globex's number, not acme's.
        still = await gateway.globex.get(
            f"/v1/opt-outs/{SUBSCRIBER}", params={"sender": GLOBEX_NUMBER}
        )
        assert still.status_code == 200
        assert await send(gateway.globex, GLOBEX_NUMBER) == "opted_out"
        assert await send(gateway.acme, ACME_NUMBER) == "queued"

        # The admin sees every tenant's opt-outs.
        admin_view = (await gateway.admin.get("/v1/opt-outs")).json()["items"]
        assert [(i["tenant"], i["sender"]) for i in admin_view] == [("globex", GLOBEX_NUMBER)]


async def test_a_tenants_own_opt_out_covers_its_messages_only(database_url: str) -> None:
    async with served(database_url) as gateway:
        created = await gateway.acme.post("/v1/opt-outs", json={"msisdn": SUBSCRIBER})
        assert created.status_code == 201, created.text
        assert (created.json()["tenant"], created.json()["sender"]) == ("acme", None)
        assert await send(gateway.acme, ACME_NUMBER) == "opted_out"
        assert await send(gateway.acme, ACME_OTHER_NUMBER) == "opted_out"
        assert await send(gateway.globex, GLOBEX_NUMBER) == "queued"
        assert (await gateway.globex.delete(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404
        assert (await gateway.acme.get(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 200


async def test_an_admin_opt_out_without_a_sender_is_global(database_url: str) -> None:
    async with served(database_url) as gateway:
        created = await gateway.admin.post("/v1/opt-outs", json={"msisdn": SUBSCRIBER})
        assert (created.json()["tenant"], created.json()["sender"]) == (None, None)
        assert await send(gateway.acme, ACME_NUMBER) == "opted_out"
        assert await send(gateway.globex, GLOBEX_NUMBER) == "opted_out"
        # A tenant cannot see or lift it; only an admin can.
        assert (await gateway.acme.get("/v1/opt-outs")).json()["items"] == []
        assert (await gateway.acme.delete(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 404
        assert (await gateway.admin.delete(f"/v1/opt-outs/{SUBSCRIBER}")).status_code == 204
        assert await send(gateway.globex, GLOBEX_NUMBER) == "queued"


async def test_a_stop_applies_to_the_number_it_was_sent_to_by_default(
    database_url: str,
) -> None:
    async with served(database_url) as gateway:
        await gateway.inbound(ACME_NUMBER, "STOP")
        assert await send(gateway.acme, ACME_NUMBER) == "opted_out"
        # US CTIA: another number of the same business keeps the subscriber's consent.
        assert await send(gateway.acme, ACME_OTHER_NUMBER) == "queued"
        assert await send(gateway.globex, GLOBEX_NUMBER) == "queued"
        # START to that number lifts it.
        await gateway.inbound(ACME_NUMBER, "START")
        assert await send(gateway.acme, ACME_NUMBER) == "queued"


async def test_with_stop_scope_tenant_a_stop_covers_every_number_of_the_tenant(
    database_url: str,
) -> None:
    async with served(database_url, stop_scope="tenant") as gateway:
        await gateway.inbound(ACME_NUMBER, "STOP")
        assert await send(gateway.acme, ACME_NUMBER) == "opted_out"
        assert await send(gateway.acme, ACME_OTHER_NUMBER) == "opted_out"
        assert await send(gateway.globex, GLOBEX_NUMBER) == "queued"
        (row,) = (await gateway.acme.get("/v1/opt-outs")).json()["items"]
        assert (row["tenant"], row["sender"], row["keyword"]) == ("acme", None, "STOP")


async def test_a_stop_to_an_unassigned_number_is_seen_by_admin_keys_only(
    database_url: str,
) -> None:
    async with served(database_url) as gateway:
        await gateway.inbound(UNASSIGNED_NUMBER, "STOP")
        assert (await gateway.acme.get("/v1/opt-outs")).json()["items"] == []
        (row,) = (await gateway.admin.get("/v1/opt-outs")).json()["items"]
        assert (row["tenant"], row["sender"]) == (None, UNASSIGNED_NUMBER)
        # It still blocks that number, whoever sends from it.
        assert await send(gateway.admin, UNASSIGNED_NUMBER) == "opted_out"
