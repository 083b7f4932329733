"""`smsgateway simulator` as a product: its flags and environment, auth, plan callback URL
and signing, run as the real command on a free port."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.support.live_server import live_server
from tests.support.receiver import WebhookReceiver
from tests.support.simulator_process import (
    run_simulator_command,
    simulator_environment,
    simulator_process,
)

PLAN_ID, TOKEN = "plan-cli-91", "token-cli-91"
ANN = "+15551230001"
SECRET = "cli-signing-secret"
FLAGS = (
    "--service-plan-id",
    "--api-token",
    "--callback-url",
    "--default-from",
    "--signing-secret",
    "--project-id",
    "--key-id",
    "--key-secret",
    "--inbound-url",
    "--seed",
    "--delivery-delay",
    "--host",
    "--port",
)


def send(base_url: str, plan: str, token: str, **fields: object) -> httpx.Response:
    body: dict[str, object] = {"to": [ANN], "body": "hi", **fields}
    return httpx.post(
        f"{base_url}/xms/v1/{plan}/batches",
        json=body,
        headers={"authorization": f"Bearer {token}"},
        timeout=5,
    )


def test_help_lists_every_flag_with_its_environment_variable() -> None:
    result = run_simulator_command(["--help"])

    assert result.returncode == 0
    for flag in FLAGS:
        assert flag in result.stdout
    assert "SMSGW_SIMULATOR_SERVICE_PLAN_ID" in result.stdout
    assert "SMSGW_SIMULATOR_SIGNING_SECRET" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service-plan-id", "p"], "--service-plan-id and --api-token go together"),
        (["--project-id", "p", "--key-id", "k"], "give all three"),
        (["--callback-url", "ftp://x"], "--callback-url must be an http or https URL"),
    ],
)
def test_incomplete_options_are_refused_in_one_line(args: list[str], message: str) -> None:
    result = run_simulator_command(args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_flags_set_the_account_and_a_wrong_token_is_401() -> None:
    args = ["--service-plan-id", PLAN_ID, "--api-token", TOKEN, "--default-from", "+15550007777"]
    with simulator_process(args) as base_url:
        accepted = send(base_url, PLAN_ID, TOKEN)
        wrong_token = send(base_url, PLAN_ID, "simulator-token")
        built_in = send(base_url, "simulator-plan", "simulator-token")

    assert accepted.status_code == 201
    assert accepted.json()["from"] == "+15550007777"
    assert (wrong_token.status_code, wrong_token.content) == (401, b"")
    # The built-in account is replaced, not kept beside the one given.
    assert built_in.status_code == 401


def test_the_environment_sets_the_account_and_a_flag_wins_over_it() -> None:
    environment = simulator_environment(
        SMSGW_SIMULATOR_SERVICE_PLAN_ID=PLAN_ID,
        SMSGW_SIMULATOR_API_TOKEN=TOKEN,
        SMSGW_SIMULATOR_DEFAULT_FROM="+15550006666",
    )
    with simulator_process(["--default-from", "+15550005555"], environment) as base_url:
        accepted = send(base_url, PLAN_ID, TOKEN)
        wrong = send(base_url, PLAN_ID, "nope")

    assert accepted.status_code == 201
    assert accepted.json()["from"] == "+15550005555"
    assert wrong.status_code == 401


def test_without_options_it_is_the_built_in_plan_with_no_default_originator() -> None:
    with simulator_process([]) as base_url:
        response = send(base_url, "simulator-plan", "simulator-token")

    assert response.status_code == 201
    assert "from" not in response.json()


def test_oauth_client_options_issue_tokens_for_the_project() -> None:
    args = ["--project-id", "proj-1", "--key-id", "key-1", "--key-secret", "secret-1"]
    with simulator_process(args) as base_url:
        token = httpx.post(
            f"{base_url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("key-1", "secret-1"),
            timeout=5,
        )
        access_token = token.json()["access_token"]
        accepted = send(base_url, "proj-1", access_token, **{"from": "+15550004444"})
        refused = httpx.post(
            f"{base_url}/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("key-1", "wrong"),
            timeout=5,
        )

    assert token.status_code == 200
    assert accepted.status_code == 201
    assert refused.status_code == 401


@asynccontextmanager
async def receiving() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    hook = WebhookReceiver()
    async with live_server(hook) as url:
        yield hook, url


def expected_signature(body: bytes, nonce: str, timestamp: str, secret: str = SECRET) -> str:
    """The published algorithm (sinch-api.md): base64 HMAC-SHA256 of body.nonce.timestamp."""
    message = body + b"." + nonce.encode() + b"." + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def test_the_checking_algorithm_matches_the_published_test_vector() -> None:
    body = (
        b'{"at":"2025-01-13T09:22:40.914Z","batch_id":"01JHFFHQ0P99JPPNQPJDV7JTBP",'
        b'"client_reference":"a client reference","code":0,'
        b'"operator_status_at":"2025-01-13T09:22:00Z","recipient":"33662162466",'
        b'"status":"Delivered","type":"recipient_delivery_report_sms"}'
    )
    signature = expected_signature(
        body, "01JHFFHWYY7HSS4FWTMDTQEK8V", "1736760161", secret="SMSWebhooksSecret"
    )

    assert signature == "ZoHei66PPN/kZjw7hFVfGhJOnml3iGNCMWoyQVcE5o0="


@pytest.mark.asyncio(loop_scope="session")
async def test_reports_and_inbounds_go_signed_to_the_callback_url() -> None:
    async with receiving() as (hook, url):
        args = [
            "--service-plan-id", PLAN_ID, "--api-token", TOKEN,
            "--callback-url", url + "/sinch", "--signing-secret", SECRET,
            "--default-from", "+15550003333", "--delivery-delay", "0.05",
        ]  # fmt: skip
        # Starting and stopping the process blocks: in a thread, so the receiver keeps serving.
        process = simulator_process(args)
        base_url = await asyncio.to_thread(process.__enter__)
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
                sent = await client.post(
                    f"/xms/v1/{PLAN_ID}/batches",
                    json={"to": [ANN], "body": "hi", "delivery_report": "per_recipient_final"},
                    headers={"authorization": f"Bearer {TOKEN}"},
                )
                injected = await client.post(
                    "/_admin/inbounds", json={"from": ANN, "to": "+15550003333", "body": "STOP"}
                )
                received = await hook.wait_for(2, path="/sinch")
        finally:
            await asyncio.to_thread(process.__exit__, None, None, None)

    assert sent.status_code == 201
    assert injected.status_code == 202
    kinds = sorted(str(request.json()["type"]) for request in received)
    assert kinds == ["mo_text", "recipient_delivery_report_sms"]
    for request in received:
        headers = request.headers
        assert headers["x-sinch-webhook-signature-algorithm"] == "HmacSHA256"
        assert headers["x-sinch-webhook-signature"] == expected_signature(
            request.body,
            headers["x-sinch-webhook-signature-nonce"],
            headers["x-sinch-webhook-signature-timestamp"],
        )
