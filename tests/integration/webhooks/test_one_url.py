"""One webhook URL for everything Sinch posts, secure by default, and no secret given away.

Every gateway here is served by uvicorn on a loopback socket. "Real credentials" means a
service plan id and token with SINCH_BASE_URL pointing at the simulator on loopback: the
gateway then behaves as it would against Sinch (no simulator mode).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from smsgateway.app import create_app
from smsgateway.observability.logging import JsonFormatter
from smsgateway.simulator import SimulatorConfig
from tests.integration.webhooks.harness import (
    DLR_PATH,
    INBOUND_PATH,
    fetch,
    message,
    recipient_report,
    recipient_states,
    record_batch,
    send_message,
)
from tests.support.api_keys import issue_api_key
from tests.support.live_server import live_server
from tests.support.polling import wait_until
from tests.support.settings import make_settings
from tests.support.sinch_simulator import RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio

ONE_URL = "/webhooks/sinch"
PUBLIC = "https://gw.example.com"
SUBSCRIBER = "+12015550123"
RECIPIENT = "+46701234567"
BATCH = "01FC66621XXXXX119Z8PMV1QPQ"


def mo_text(body: str, sender: str = SUBSCRIBER) -> dict[str, object]:
    return {
        "type": "mo_text",
        "id": os.urandom(13).hex().upper(),
        "from": sender.removeprefix("+"),
        "to": "+12025550123",
        "body": body,
        "received_at": "2026-12-03T09:00:00.000Z",
    }


def delivered(recipient: str = RECIPIENT) -> dict[str, object]:
    return recipient_report(
        BATCH, recipient.removeprefix("+"), "Delivered", 0, "2026-12-03T09:00:01.000Z"
    )


@asynccontextmanager
async def served(database_url: str, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway on a loopback socket (dispatcher off), with an API key on its client."""
    app = create_app(make_settings(database_url, SINCH_NUMBER="+12025550123", **settings))
    async with live_server(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        client.headers["X-API-Key"] = await issue_api_key(
            database_url, name=f"ops-{os.urandom(4).hex()}", tenant="acme"
        )
        yield client


def real_credentials(simulator: RunningSimulator, **settings: Any) -> dict[str, Any]:
    return {
        "SINCH_SERVICE_PLAN_ID": simulator.plan_id,
        "SINCH_API_TOKEN": simulator.token,
        "SINCH_BASE_URL": simulator.base_url,
        "PUBLIC_BASE_URL": PUBLIC,
        **settings,
    }


async def opted_out(client: httpx.AsyncClient, number: str) -> bool:
    # The STOPs here are sent to the gateway's number, and a STOP applies to that number.
    response = await client.get(f"/v1/opt-outs/{number}", params={"sender": "+12025550123"})
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


async def post(client: httpx.AsyncClient, path: str, payload: dict[str, object]) -> httpx.Response:
    return await client.post(
        path, content=json.dumps(payload).encode(), headers={"content-type": "application/json"}
    )


async def generated_secret(database_url: str) -> str:
    rows = await fetch(database_url, "SELECT name, value FROM gateway_secret")
    assert [row["name"] for row in rows] == ["webhook_path_secret"]
    value = rows[0]["value"]
    assert isinstance(value, str)
    return value


async def test_a_stop_and_a_delivery_report_at_the_one_url_both_take_effect(
    database_url: str,
) -> None:
    async with served(database_url) as client:
        message_id = await send_message(client, [RECIPIENT])
        await record_batch(database_url, message_id, BATCH)
        stop = await post(client, ONE_URL, mo_text("Stop"))
        report = await post(client, ONE_URL, delivered())
        assert stop.status_code == report.status_code == 200
        assert stop.json()["kind"] == "inbound"
        assert (stop.json()["keyword"], stop.json()["opted_out"]) == ("opt_out", True)
        assert report.json() == {
            "kind": "delivery_report",
            "outcome": "applied",
            "message_id": message_id,
            "changed": 1,
        }
        assert await opted_out(client, SUBSCRIBER)
        assert recipient_states(await message(client, message_id)) == {RECIPIENT: "delivered"}


@pytest.mark.parametrize("path", [DLR_PATH, INBOUND_PATH])
async def test_the_older_paths_accept_every_kind(database_url: str, path: str) -> None:
    async with served(database_url) as client:
        message_id = await send_message(client, [RECIPIENT])
        await record_batch(database_url, message_id, BATCH)
        stop = await post(client, path, mo_text("STOP"))
        report = await post(client, path, delivered())
        assert (stop.status_code, report.status_code) == (200, 200)
        assert await opted_out(client, SUBSCRIBER)
        assert recipient_states(await message(client, message_id)) == {RECIPIENT: "delivered"}


async def test_an_unknown_kind_is_kept_and_answered_as_before(database_url: str) -> None:
    async with served(database_url) as client:
        unknown = await post(client, ONE_URL, {"type": "mt_hologram", "batch_id": BATCH})
        not_an_object = await client.post(ONE_URL, content=b"[1, 2]")
    assert unknown.status_code == 200
    assert unknown.json()["outcome"] == "unprocessable"
    kept = await fetch(database_url, "SELECT report_type FROM unmatched_report")
    assert [row["report_type"] for row in kept] == ["mt_hologram"]
    assert not_an_object.status_code == 400
    assert not_an_object.json()["code"] == "unreadable_payload"


async def test_with_real_credentials_webhooks_refuse_unauthenticated_calls_by_default(
    database_url: str,
) -> None:
    async with (
        running_simulator(SimulatorConfig.for_tests()) as simulator,
        served(database_url, **real_credentials(simulator)) as client,
    ):
        message_id = await send_message(client, [RECIPIENT])
        await record_batch(database_url, message_id, BATCH)
        refused = [await post(client, path, delivered()) for path in (ONE_URL, DLR_PATH)]
        forged_stop = await post(client, INBOUND_PATH, mo_text("STOP"))
        guessed = await post(client, f"{ONE_URL}/{'x' * 43}", delivered())
        assert [answer.status_code for answer in refused] == [401, 401]
        assert (forged_stop.status_code, guessed.status_code) == (401, 401)
        assert refused[0].json()["code"] == "unauthorized"
        assert not await opted_out(client, SUBSCRIBER)
        assert recipient_states(await message(client, message_id)) == {RECIPIENT: "submitted"}

        secret = await generated_secret(database_url)
        accepted = await post(client, f"{ONE_URL}/{secret}", delivered())
        stop = await post(client, f"{DLR_PATH}/{secret}", mo_text("STOP"))
        assert (accepted.status_code, stop.status_code) == (200, 200), accepted.text
        assert recipient_states(await message(client, message_id)) == {RECIPIENT: "delivered"}
        assert await opted_out(client, SUBSCRIBER)


async def test_the_generated_secret_is_shared_by_processes_and_survives_restarts(
    database_url: str,
) -> None:
    async with running_simulator(SimulatorConfig.for_tests()) as simulator:
        settings = real_credentials(simulator)
        # Two processes at once, each answering a first call (which creates the secret).
        async with served(database_url, **settings) as one, served(database_url, **settings) as two:
            await asyncio.gather(
                post(one, f"{ONE_URL}/{'y' * 43}", delivered()),
                post(two, f"{ONE_URL}/{'y' * 43}", delivered()),
            )
            secret = await generated_secret(database_url)
            answers = [
                await post(app, f"{ONE_URL}/{secret}", mo_text("HELP")) for app in (one, two)
            ]
            assert [answer.status_code for answer in answers] == [200, 200]
        async with served(database_url, **settings) as restarted:
            again = await post(restarted, f"{ONE_URL}/{secret}", mo_text("HELP"))
            assert again.status_code == 200
        assert await generated_secret(database_url) == secret
        assert len(secret) == 43


async def test_batches_carry_the_one_url_with_the_generated_secret(database_url: str) -> None:
    async with (
        running_simulator(SimulatorConfig.for_tests()) as simulator,
        served(
            database_url, **real_credentials(simulator), dispatcher="on", dispatch_poll_seconds=0.02
        ) as client,
    ):
        message_id = await send_message(client, [RECIPIENT])

        async def batch_id() -> str | None:
            found = (await message(client, message_id)).get("sinch_batch_id")
            return found if isinstance(found, str) else None

        await wait_until(batch_id, timeout_s=10, message="the batch to be recorded")
        batch = (await simulator.client.get(simulator.batch_path(str(await batch_id())))).json()
    secret = await generated_secret(database_url)
    assert batch["callback_url"] == f"{PUBLIC}/webhooks/sinch/{secret}"


async def test_auth_none_accepts_unauthenticated_calls_and_warns(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="smsgateway")
    async with (
        running_simulator(SimulatorConfig.for_tests()) as simulator,
        served(database_url, **real_credentials(simulator, webhook_auth="none")) as client,
    ):
        stop = await post(client, ONE_URL, mo_text("STOP"))
        assert stop.status_code == 200
        assert await opted_out(client, SUBSCRIBER)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("SMSGW_WEBHOOK_AUTH=none" in r.getMessage() for r in warnings)
    assert await fetch(database_url, "SELECT * FROM gateway_secret") == []


async def test_no_answer_or_log_line_gives_the_secret_away(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        running_simulator(SimulatorConfig.for_tests()) as simulator,
        served(
            database_url,
            **real_credentials(simulator),
            dispatcher="on",
            dispatch_poll_seconds=0.02,
            legacy_wait_seconds=10,
        ) as client,
    ):
        legacy = await client.post("/send-sms", json={"recipient": RECIPIENT, "message": "Hi"})
        assert legacy.status_code == 200, legacy.text
        details = legacy.json()["details"]
        secret = await generated_secret(database_url)
        batch = (await simulator.client.get(simulator.batch_path(details["id"]))).json()
        assert secret in batch["callback_url"]  # Sinch has it; the caller must not.
        message_id = (await client.get("/v1/messages")).json()["items"][0]["id"]
        answers = [
            legacy,
            await client.get(f"/v1/messages/{message_id}"),
            await client.get(f"/v1/messages/{message_id}/events"),
            await client.get("/v1/messages"),
            await client.post(f"{ONE_URL}/{secret}", content=b"not json"),
            await client.get(f"{ONE_URL}/{secret}"),
            await client.post(f"{DLR_PATH}/{secret}", content=b"[]"),
        ]
        assert [answer.status_code for answer in answers[-3:]] == [400, 405, 400]
        assert answers[-3].json()["instance"] == "/webhooks/sinch/{path_secret}"
    for answer in answers:
        assert secret not in answer.text
        assert secret not in str(answer.headers)
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert lines
    assert not [line for line in lines if secret in line]


async def test_smsgateway_webhooks_prints_the_url_with_the_secret(
    database_url: str, tmp_path: Path
) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMSGW_", "SINCH_"))
        and key not in ("DATABASE_URL", "PUBLIC_BASE_URL")
    }
    environment.update(
        DATABASE_URL=database_url,
        SINCH_SERVICE_PLAN_ID="plan-1",
        SINCH_API_TOKEN="token-1",
        SINCH_BASE_URL="http://127.0.0.1:9",
        PUBLIC_BASE_URL=PUBLIC,
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "smsgateway",
        "webhooks",
        cwd=tmp_path,  # no .env from the working tree
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    secret = await generated_secret(database_url)
    assert f"  {PUBLIC}/webhooks/sinch/{secret}\n" in text
    assert "path secret (generated, kept in Postgres)" in text
    assert "HMAC signing: not expected" in text


async def test_a_call_at_a_secret_path_is_a_503_while_the_database_is_away() -> None:
    # The generated secret cannot be read: Sinch must retry, not be told the URL is wrong.
    settings = make_settings(
        "postgresql://nobody@127.0.0.1:9/nowhere",
        db_connect_timeout_seconds=0.5,
        SINCH_SERVICE_PLAN_ID="plan",
        SINCH_API_TOKEN="token",
        SINCH_BASE_URL="http://127.0.0.1:9",
        PUBLIC_BASE_URL=PUBLIC,
    )
    async with (
        live_server(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        at_secret = await post(client, f"{ONE_URL}/{'z' * 43}", delivered())
        bare = await post(client, ONE_URL, delivered())
    assert at_secret.status_code == 503
    assert at_secret.json()["code"] == "database_unavailable"
    assert "z" * 43 not in at_secret.text
    assert bare.status_code == 401  # refused without asking the database


async def test_every_kind_at_the_one_url_is_a_503_while_the_database_is_away() -> None:
    settings = make_settings(
        "postgresql://nobody@127.0.0.1:9/nowhere", db_connect_timeout_seconds=0.5
    )
    async with (
        live_server(create_app(settings)) as base_url,
        httpx.AsyncClient(base_url=base_url) as client,
    ):
        answers = [await post(client, ONE_URL, body) for body in (delivered(), mo_text("STOP"))]
    assert [answer.status_code for answer in answers] == [503, 503]
    assert {answer.json()["code"] for answer in answers} == {"database_unavailable"}
    assert all(answer.headers["retry-after"] for answer in answers)
