"""The simulator's Sinch API over a real socket: batches, reports, dry run, validation, auth."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from smsgateway.simulator import Outcome, SimulatorConfig
from tests.support.polling import wait_until
from tests.support.sinch_simulator import PLAN_DEFAULT_FROM, RunningSimulator, running_simulator

pytestmark = pytest.mark.asyncio(loop_scope="session")

BATCH_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def iso_in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_sim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(
        SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM)
    ) as running:
        yield running


@pytest_asyncio.fixture
async def sim(shared_sim: RunningSimulator) -> RunningSimulator:
    """The module's simulator, emptied: starting a server per test would triple the run time."""
    (await shared_sim.client.post("/_admin/reset")).raise_for_status()
    return shared_sim


async def test_send_batch_answers_201_with_the_stored_batch(sim: RunningSimulator) -> None:
    request = {
        "to": ["+15551230001", "15551230002"],
        "from": "+15550001111",
        "body": "Hello",
        "client_reference": "ref-1",
        "send_at": iso_in(60),
        "callback_url": "http://127.0.0.1:9/dlr",
        "delivery_report": "per_recipient",
        "max_number_of_message_parts": 3,
    }

    response = await sim.client.post(sim.batches_path, json=request)

    assert response.status_code == 201
    batch = response.json()
    assert BATCH_ID.fullmatch(batch["id"])
    assert batch["to"] == ["+15551230001", "15551230002"]
    assert batch["from"] == "+15550001111"
    assert batch["body"] == "Hello"
    assert batch["type"] == "mt_text"
    assert batch["canceled"] is False
    assert batch["delivery_report"] == "per_recipient"
    assert batch["client_reference"] == "ref-1"
    assert batch["callback_url"] == "http://127.0.0.1:9/dlr"
    assert batch["max_number_of_message_parts"] == 3
    for field in ("created_at", "modified_at", "send_at", "expire_at"):
        assert INSTANT.fullmatch(batch[field]), field

    fetched = await sim.client.get(sim.batch_path(batch["id"]))
    assert fetched.status_code == 200
    assert fetched.json() == batch


async def test_from_defaults_to_the_plans_originator(sim: RunningSimulator) -> None:
    response = await sim.client.post(sim.batches_path, json={"to": ["+15551230001"], "body": "x"})

    assert response.status_code == 201
    assert response.json()["from"] == "+15550009999"
    assert response.json()["delivery_report"] == "none"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "syntax_invalid_json"),
        (b"[1, 2]", "syntax_invalid_json"),
        (b'{"body": "x"}', "syntax_constraint_violation"),
        (b'{"to": [], "body": "x"}', "syntax_constraint_violation"),
        (b'{"to": ["+15551230001"]}', "syntax_constraint_violation"),
        (b'{"to": ["+15551230001"], "body": ""}', "syntax_constraint_violation"),
        (b'{"to": ["+1555"], "body": "x"}', "syntax_invalid_parameter_format"),
        (b'{"to": ["+0155512300"], "body": "x"}', "syntax_invalid_parameter_format"),
        (b'{"to": ["not-a-number"], "body": "x"}', "syntax_invalid_parameter_format"),
        (b'{"to": "+15551230001", "body": "x"}', "syntax_invalid_parameter_format"),
        (b'{"to": ["+15551230001"], "body": 5}', "syntax_invalid_parameter_format"),
        (
            b'{"to": ["+15551230001"], "body": "x", "delivery_report": "all"}',
            "syntax_invalid_parameter_format",
        ),
        (
            b'{"to": ["+15551230001"], "body": "x", "send_at": "tomorrow"}',
            "syntax_invalid_parameter_format",
        ),
        (
            b'{"to": ["+15551230001"], "body": "x", "callback_url": "ftp://x"}',
            "syntax_invalid_parameter_format",
        ),
        (
            b'{"to": ["+15551230001"], "body": "x", "type": "mt_fax"}',
            "syntax_invalid_parameter_format",
        ),
    ],
)
async def test_invalid_requests_get_sinch_error_codes(
    sim: RunningSimulator, body: bytes, code: str
) -> None:
    response = await sim.client.post(
        sim.batches_path, content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    error = response.json()
    assert error["code"] == code
    assert isinstance(error["text"], str)
    assert error["text"]


async def test_recipient_and_body_limits(sim: RunningSimulator) -> None:
    recipients = [f"+1555{n:07d}" for n in range(1001)]
    too_many = await sim.client.post(sim.batches_path, json={"to": recipients, "body": "x"})
    most = await sim.client.post(sim.batches_path, json={"to": recipients[:1000], "body": "x"})
    too_long = await sim.client.post(
        sim.batches_path, json={"to": ["+15551230001"], "body": "x" * 2001}
    )

    assert too_many.status_code == 400
    assert too_many.json()["code"] == "syntax_constraint_violation"
    assert most.status_code == 201
    assert too_long.json()["code"] == "syntax_constraint_violation"


async def test_expire_at_must_be_within_three_days_of_send_at(sim: RunningSimulator) -> None:
    late = {
        "to": ["+15551230001"],
        "body": "x",
        "send_at": iso_in(60),
        "expire_at": iso_in(4 * 86400),
    }
    early = {"to": ["+15551230001"], "body": "x", "send_at": iso_in(60), "expire_at": iso_in(30)}

    for request in (late, early):
        response = await sim.client.post(sim.batches_path, json=request)
        assert response.status_code == 400
        assert response.json()["code"] == "syntax_constraint_violation"


async def test_delivery_report_without_any_callback_url_is_forbidden(sim: RunningSimulator) -> None:
    request = {"to": ["+15551230001"], "body": "x", "delivery_report": "summary"}

    response = await sim.client.post(sim.batches_path, json=request)

    assert response.status_code == 403
    assert response.json()["code"] == "missing_callback_url"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
)
async def test_bad_credentials_get_an_empty_401(
    sim: RunningSimulator, headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=sim.base_url, headers=headers) as anonymous:
        response = await anonymous.post(
            sim.batches_path, json={"to": ["+15551230001"], "body": "x"}
        )

    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["content-type"].startswith("text/plain")


async def test_a_token_only_opens_its_own_plan() -> None:
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM, service_plans={"plan-a": "token-a", "plan-b": "token-b"}
    )
    async with running_simulator(config) as sim:
        created = await sim.client.post(
            sim.batches_path, json={"to": ["+15551230001"], "body": "x"}
        )
        batch_id = created.json()["id"]

        wrong_plan = await sim.client.get(f"/xms/v1/plan-b/batches/{batch_id}")
        other = await sim.client.get(
            f"/xms/v1/plan-b/batches/{batch_id}", headers={"Authorization": "Bearer token-b"}
        )

    assert wrong_plan.status_code == 401
    assert other.status_code == 404


async def test_unknown_batch_is_404_with_a_sinch_error(sim: RunningSimulator) -> None:
    response = await sim.client.get(sim.batch_path("01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    report = await sim.client.get(sim.batch_path("01ARZ3NDEKTSV4RRFFQ69G5FAV") + "/delivery_report")

    assert response.status_code == 404
    assert set(response.json()) == {"code", "text"}
    assert report.status_code == 404


async def test_list_batches_pages_newest_first_and_filters(sim: RunningSimulator) -> None:
    ids = []
    for n in range(5):
        reference = "wanted" if n % 2 == 0 else f"other-{n}"
        response = await sim.client.post(
            sim.batches_path,
            json={"to": ["+15551230001"], "body": f"m{n}", "client_reference": reference},
        )
        ids.append(response.json()["id"])

    first = (await sim.client.get(sim.batches_path, params={"page_size": 2})).json()
    last = (await sim.client.get(sim.batches_path, params={"page_size": 2, "page": 2})).json()
    wanted = (await sim.client.get(sim.batches_path, params={"client_reference": "wanted"})).json()
    too_big = await sim.client.get(sim.batches_path, params={"page_size": 101})
    not_int = await sim.client.get(sim.batches_path, params={"page": "x"})

    assert (first["count"], first["page"], first["page_size"]) == (5, 0, 2)
    assert [b["id"] for b in first["batches"]] == [ids[4], ids[3]]
    assert [b["id"] for b in last["batches"]] == [ids[0]]
    # page_size is what the page holds (Sinch's models say so), not what was asked for.
    assert (last["count"], last["page"], last["page_size"]) == (5, 2, 1)
    assert (wanted["count"], wanted["page_size"]) == (3, 3)
    assert wanted["count"] == 3
    assert [b["id"] for b in wanted["batches"]] == [ids[4], ids[2], ids[0]]
    assert too_big.status_code == 400
    assert too_big.json()["code"] == "syntax_constraint_violation"
    assert not_int.json()["code"] == "syntax_invalid_parameter_format"


async def test_cancel_before_send_at_cancels_every_recipient(sim: RunningSimulator) -> None:
    created = await sim.client.post(
        sim.batches_path,
        json={"to": ["+15551230001", "+15551230002"], "body": "later", "send_at": iso_in(60)},
    )
    batch_id = created.json()["id"]

    canceled = await sim.client.delete(sim.batch_path(batch_id))
    report = await sim.client.get(sim.batch_path(batch_id) + "/delivery_report")
    fetched = await sim.client.get(sim.batch_path(batch_id))

    assert canceled.status_code == 200
    assert canceled.json()["canceled"] is True
    assert fetched.json()["canceled"] is True
    assert report.json()["statuses"] == [{"code": 407, "status": "Cancelled", "count": 2}]


async def test_cancel_after_sending_is_a_conflict(sim: RunningSimulator) -> None:
    created = await sim.client.post(sim.batches_path, json={"to": ["+15551230001"], "body": "now"})

    response = await sim.client.delete(sim.batch_path(created.json()["id"]))

    assert response.status_code == 409
    assert response.json()["code"] == "batch_already_sent"


async def test_delivery_reports_follow_the_outcomes() -> None:
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM, outcome_overrides={"+15551230002": Outcome.FAILED}
    )
    async with running_simulator(config) as sim:
        created = await sim.client.post(
            sim.batches_path,
            json={"to": ["+15551230001", "+15551230002"], "body": "hi", "client_reference": "c1"},
        )
        batch_id = created.json()["id"]
        report_path = sim.batch_path(batch_id) + "/delivery_report"

        async def all_final() -> bool:
            report = (await sim.client.get(report_path)).json()
            return {s["status"] for s in report["statuses"]} == {"Delivered", "Failed"}

        await wait_until(all_final, message="both recipients final")
        summary = (await sim.client.get(report_path)).json()
        full = (await sim.client.get(report_path, params={"type": "full"})).json()
        failed_only = (
            await sim.client.get(report_path, params={"type": "full", "status": "Failed"})
        ).json()
        by_code = (await sim.client.get(report_path, params={"code": "0"})).json()
        one = (await sim.client.get(report_path + "/15551230002")).json()
        unknown = await sim.client.get(report_path + "/15559999999")
        bad_type = await sim.client.get(report_path, params={"type": "detailed"})

    assert summary == {
        "type": "delivery_report_sms",
        "batch_id": batch_id,
        "total_message_count": 2,
        "client_reference": "c1",
        "statuses": [
            {"code": 0, "status": "Delivered", "count": 1},
            {"code": 402, "status": "Failed", "count": 1},
        ],
    }
    assert full["statuses"][0]["recipients"] == ["+15551230001"]
    assert failed_only["statuses"] == [
        {"code": 402, "status": "Failed", "count": 1, "recipients": ["+15551230002"]}
    ]
    assert [s["status"] for s in by_code["statuses"]] == ["Delivered"]
    assert one["type"] == "recipient_delivery_report_sms"
    assert (one["recipient"], one["status"], one["code"]) == ("+15551230002", "Failed", 402)
    assert one["encoding"] == "GSM"
    assert one["number_of_message_parts"] == 1
    assert unknown.status_code == 404
    assert bad_type.json()["code"] == "syntax_invalid_parameter_format"


async def test_scheduled_batch_stays_queued_until_send_at(sim: RunningSimulator) -> None:
    created = await sim.client.post(
        sim.batches_path, json={"to": ["+15551230001"], "body": "x", "send_at": iso_in(60)}
    )
    batch_id = created.json()["id"]

    report = (
        await sim.client.get(sim.batch_path(batch_id) + "/delivery_report/+15551230001")
    ).json()

    assert (report["status"], report["code"]) == ("Queued", 400)


async def test_expire_at_turns_a_slow_delivery_into_expired() -> None:
    config = SimulatorConfig.for_tests(default_from=PLAN_DEFAULT_FROM, delivery_delay_s=30.0)
    async with running_simulator(config) as sim:
        expire_at = datetime.now(UTC) + timedelta(seconds=0.2)
        created = await sim.client.post(
            sim.batches_path,
            json={"to": ["+15551230001"], "body": "x", "expire_at": expire_at.isoformat()},
        )
        path = sim.batch_path(created.json()["id"]) + "/delivery_report/15551230001"

        async def expired() -> bool:
            return bool((await sim.client.get(path)).json()["status"] == "Expired")

        await wait_until(expired, message="Expired")
        report = (await sim.client.get(path)).json()

    assert report["code"] == 406
    assert (
        report["at"]
        == expire_at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{expire_at.microsecond // 1000:03d}Z"
    )


@pytest.mark.parametrize(
    ("body", "encoding", "parts"),
    [
        ("a" * 160, "text", 1),
        ("a" * 161, "text", 2),
        ("a" * 306, "text", 2),
        ("a" * 307, "text", 3),
        ("€" * 80, "text", 1),
        # 81 escapes are 162 septets; 76 fit in 153 because an escape is never split.
        ("€" * 81, "text", 2),
        # 306 septets would fit two parts, but the escape cannot straddle them.
        ("a" * 152 + "€" + "a" * 152, "text", 3),
        ("ж" * 70, "unicode", 1),
        ("ж" * 71, "unicode", 2),
        ("😀" * 35, "unicode", 1),
        # 36 emoji are 72 units; a part holds 33 pairs (66 units), never half a pair.
        ("😀" * 36, "unicode", 2),
        ("a" * 68 + "😀", "unicode", 1),
        # 134 units would fit two parts, but the pair cannot straddle them.
        ("a" * 66 + "😀" + "a" * 66, "unicode", 3),
    ],
)
async def test_dry_run_counts_parts_itself(
    sim: RunningSimulator, body: str, encoding: str, parts: int
) -> None:
    response = await sim.client.post(
        sim.batches_path + "/dry_run",
        params={"per_recipient": "true", "number_of_recipients": 1},
        json={"to": ["+15551230001", "+15551230002"], "body": body},
    )

    assert response.status_code == 200
    answer = response.json()
    assert answer["number_of_recipients"] == 2
    assert answer["number_of_messages"] == 2 * parts
    assert answer["per_recipient"] == [
        {"recipient": "15551230001", "number_of_parts": parts, "body": body, "encoding": encoding}
    ]


async def test_dry_run_renders_parameters_per_recipient(sim: RunningSimulator) -> None:
    response = await sim.client.post(
        sim.batches_path + "/dry_run",
        json={
            "to": ["+15551230001", "+15551230002"],
            "body": "Hi ${name}",
            "parameters": {"name": {"+15551230001": "Ann", "default": "there"}},
        },
    )
    listed = await sim.client.post(
        sim.batches_path + "/dry_run",
        params={"per_recipient": "true"},
        json={
            "to": ["+15551230001", "+15551230002"],
            "body": "Hi ${name}",
            "parameters": {"name": {"+15551230001": "Ann", "default": "there"}},
        },
    )

    assert "per_recipient" not in response.json()
    assert [row["body"] for row in listed.json()["per_recipient"]] == ["Hi Ann", "Hi there"]


async def test_unmatched_parameter_and_parts_limit_abort_the_message(sim: RunningSimulator) -> None:
    created = await sim.client.post(
        sim.batches_path,
        json={
            "to": ["+15551230001", "+15551230002"],
            "body": "Hi ${name} " + "x" * 200,
            "parameters": {"name": {"+15551230001": "Ann"}},
            "max_number_of_message_parts": 1,
        },
    )
    report = (
        await sim.client.get(
            sim.batch_path(created.json()["id"]) + "/delivery_report", params={"type": "full"}
        )
    ).json()

    assert report["statuses"] == [
        {"code": 405, "status": "Aborted", "count": 1, "recipients": ["+15551230002"]},
        {"code": 411, "status": "Aborted", "count": 1, "recipients": ["+15551230001"]},
    ]


async def test_oauth2_tokens_open_project_paths_and_expire() -> None:
    config = SimulatorConfig.for_tests(
        default_from=PLAN_DEFAULT_FROM,
        oauth_clients={"key-id": "key-secret"},
        oauth_project_ids=frozenset({"project-1"}),
    )
    async with running_simulator(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as raw:
        denied = await raw.post(
            "/oauth2/token", data={"grant_type": "client_credentials"}, auth=("key-id", "nope")
        )
        wrong_grant = await raw.post(
            "/oauth2/token", data={"grant_type": "password"}, auth=("key-id", "key-secret")
        )
        issued = await raw.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("key-id", "key-secret"),
        )
        token = issued.json()["access_token"]
        bearer = {"Authorization": f"Bearer {token}"}
        batch = {"to": ["+15551230001"], "body": "x"}

        accepted = await raw.post("/xms/v1/project-1/batches", json=batch, headers=bearer)
        plan_token = await raw.post(
            "/xms/v1/project-1/batches", json=batch, headers=sim.client.headers
        )
        await raw.post("/_admin/oauth/expire")
        expired = await raw.post("/xms/v1/project-1/batches", json=batch, headers=bearer)

    assert denied.status_code == 401
    assert denied.json() == {"error": "invalid_client"}
    assert wrong_grant.status_code == 400
    assert issued.status_code == 200
    assert issued.json()["token_type"] == "bearer"
    assert issued.json()["expires_in"] == 3600
    assert accepted.status_code == 201
    assert plan_token.status_code == 401
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Bearer error="expired"'


async def test_reset_forgets_batches(sim: RunningSimulator) -> None:
    await sim.client.post(
        sim.batches_path, json={"to": ["+15551230001"], "body": "x", "client_reference": "r"}
    )
    assert await sim.batch_count("r") == 1

    reset = await sim.client.post("/_admin/reset")

    assert reset.status_code == 204
    assert await sim.batch_count("r") == 0
    assert (await sim.client.get(sim.batches_path)).json()["count"] == 0


async def test_ids_are_unique_and_time_prefixed(sim: RunningSimulator) -> None:
    ids = []
    for _ in range(20):
        response = await sim.client.post(
            sim.batches_path, json={"to": ["+15551230001"], "body": "x"}
        )
        ids.append(response.json()["id"])

    assert len(set(ids)) == 20
    # The first 10 characters are the creation time in milliseconds, so they never go back.
    assert [i[:10] for i in ids] == sorted(i[:10] for i in ids)
