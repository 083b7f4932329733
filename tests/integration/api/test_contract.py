"""The OpenAPI document as a contract: valid, named for generated clients, complete about the
statuses, headers and codes the server sends, with an error catalogue that answers its URIs."""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from openapi_spec_validator import validate

from smsgateway.api.problem_catalogue import FIELD_CODES, PROBLEM_KINDS, field_code
from smsgateway.app import create_app
from smsgateway.domain.errors import DomainError
from smsgateway.domain.inbound import InboundType
from smsgateway.domain.message_events import MessageEventKind
from smsgateway.domain.status import MessageStatus, RecipientStatus
from tests.support.api_keys import issue_api_key
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

SRC = Path(__file__).resolve().parents[3] / "src" / "smsgateway"
OPERATION_ID = re.compile(r"^[a-z][A-Za-z]+$")


def _document() -> dict[str, Any]:
    return create_app(make_settings("postgresql://schema-only@127.0.0.1/none")).openapi()


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


@pytest_asyncio.fixture
async def client(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    key = await issue_api_key(database_url, name="contract")
    async with lifespan_client(create_app(make_settings(database_url))) as client:
        client.headers["X-API-Key"] = key
        yield client


def test_the_document_is_valid_openapi() -> None:
    validate(_document())


def test_every_operation_has_a_stable_camel_case_id_tags_and_described_parameters() -> None:
    document = _document()
    declared_tags = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert all(declared_tags.values())
    ids = []
    for method, path, operation in _operations(document):
        label = f"{method} {path}"
        assert OPERATION_ID.match(operation.get("operationId", "")), label
        ids.append(operation["operationId"])
        assert operation["tags"], label
        assert set(operation["tags"]) <= set(declared_tags), label
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), f"{label}: {parameter['name']}"
            # Left out is how a caller says "none": a nullable parameter makes clients send None.
            assert "null" not in str(parameter["schema"].get("anyOf", "")), label
    assert len(ids) == len(set(ids))
    assert {"sendMessage", "getMessage", "listMessages", "previewMessage", "cancelMessage"} <= set(
        ids
    )


def test_every_answer_documents_its_headers_and_every_error_is_a_problem() -> None:
    document = _document()
    for method, path, operation in _operations(document):
        label = f"{method} {path}"
        responses = operation["responses"]
        assert {"500", "default"} <= set(responses), label
        for status, answer in responses.items():
            assert "X-Request-ID" in answer["headers"], f"{label} {status}"
            if status == "default" or status[0] in "45":
                assert list(answer["content"]) == ["application/problem+json"], f"{label} {status}"
        if operation.get("security"):
            assert "WWW-Authenticate" in responses["401"]["headers"], label
            assert {"Retry-After", "RateLimit-Remaining"} <= set(responses["429"]["headers"])
            assert "Retry-After" in responses["503"]["headers"], label
        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), label
    send = document["paths"]["/v1/messages"]["post"]
    assert {"Location", "Idempotent-Replayed", "RateLimit-Limit"} <= set(
        send["responses"]["202"]["headers"]
    )
    assert document["paths"]["/send-sms"]["post"]["deprecated"] is True


def test_fields_always_sent_are_required_and_statuses_are_enums() -> None:
    schemas = _document()["components"]["schemas"]
    message = schemas["MessageOut"]
    assert set(message["properties"]) == set(message["required"])
    assert message["properties"]["status"]["$ref"] == "#/components/schemas/MessageStatus"
    assert "partially_delivered" in schemas["MessageStatus"]["enum"]
    assert "opted_out" in schemas["RecipientStatus"]["enum"]
    problem = schemas["Problem"]
    assert set(problem["properties"]["code"]["enum"]) == set(PROBLEM_KINDS)
    # batch_id is the one member only some problems carry (not_cancellable).
    assert set(problem["required"]) == set(problem["properties"]) - {"batch_id"}
    legacy = schemas["LegacyProblem"]
    assert set(legacy["required"]) == set(problem["required"])


def _referenced(schema: Any, schemas: dict[str, Any], seen: set[str]) -> set[str]:
    """The names of the component schemas ``schema`` uses, transitively."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                _referenced(schemas[name], schemas, seen)
        for value in schema.values():
            _referenced(value, schemas, seen)
    elif isinstance(schema, list):
        for value in schema:
            _referenced(value, schemas, seen)
    return seen


def test_every_field_of_every_success_answer_is_required() -> None:
    """A field the server always sends is required, so typed clients get no `None` that
    never comes (nullable stays where null occurs)."""
    document = _document()
    schemas = document["components"]["schemas"]
    answers = [
        answer
        for _, _, operation in _operations(document)
        for status, answer in operation["responses"].items()
        if status.startswith("2")
    ]
    used = _referenced(answers, schemas, set())
    assert {"MessageOut", "EventPage", "CallbackEventOut", "OptOutPage"} <= used
    for name in sorted(used):
        properties = set(schemas[name].get("properties", {}))
        assert properties == set(schemas[name].get("required", [])), name


def test_kinds_types_sources_and_codes_are_enums_of_every_value_the_server_sends() -> None:
    schemas = _document()["components"]["schemas"]

    def enum_of(schema: dict[str, Any]) -> set[str]:
        if "$ref" in schema:
            return enum_of(schemas[schema["$ref"].rsplit("/", 1)[1]])
        if "anyOf" in schema:
            return set().union(*(enum_of(option) for option in schema["anyOf"]))
        return set(schema.get("enum", ()))

    event = schemas["MessageEventOut"]["properties"]
    assert enum_of(event["kind"]) == set(MessageEventKind)
    assert enum_of(event["status"]) == set(RecipientStatus) | set(MessageStatus)
    assert enum_of(schemas["InboundMessageOut"]["properties"]["type"]) == set(InboundType)
    assert enum_of(schemas["PolicyOut"]["properties"]["source"]) == {"stored", "gateway default"}
    assert enum_of(schemas["ProblemTypeOut"]["properties"]["code"]) == set(PROBLEM_KINDS)
    assert enum_of(schemas["FieldCodeOut"]["properties"]["code"]) == set(FIELD_CODES)


def test_sinch_callbacks_and_our_own_are_described() -> None:
    document = _document()
    schemas = document["components"]["schemas"]
    mapping = schemas["SinchCallback"]["discriminator"]["mapping"]
    assert set(mapping) == {
        "delivery_report_sms",
        "delivery_report_mms",
        "recipient_delivery_report_sms",
        "recipient_delivery_report_mms",
        "mo_text",
        "mo_binary",
        "mo_media",
    }
    assert schemas["SinchMoText"]["properties"]["from"]["examples"] == ["15551230001"]
    body = document["paths"]["/webhooks/sinch"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/SinchCallback")
    bodies = {
        name: hook["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for name, hook in document["webhooks"].items()
    }
    assert bodies == {
        "recipientStatusChanged": "#/components/schemas/RecipientStatusChanged",
        "messageInbound": "#/components/schemas/MessageInbound",
        "optOutChanged": "#/components/schemas/OptOutChanged",
    }
    for name in ("MessageInbound", "OptOutChanged", "InboundMessageBody", "OptOutChange"):
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name


def test_every_problem_code_the_source_answers_with_is_in_the_catalogue() -> None:
    """A code raised anywhere (ProblemError, problem_response, ...) must be explained at
    /problems/<code>; this fails naming any that is not."""
    raising = {"ProblemError", "problem_response", "send_problem", "build_problem", "_problem"}
    found: set[str] = set()
    for source in SRC.rglob("*.py"):
        if "simulator" in source.parts:
            continue  # the fake Sinch answers with Sinch's codes, not ours
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name in raising and len(node.args) >= 2:
                code = node.args[1]
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    found.add(code.value)
            if name == "_bad" and len(node.args) >= 3:
                code = node.args[2]
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    found.add(code.value)
    assert found, "the scan should find the codes"
    assert found - set(PROBLEM_KINDS) == set()


def test_every_domain_refusal_code_is_in_the_catalogue() -> None:
    # Imported so that their DomainError subclasses exist for the walk below.
    importlib.import_module("smsgateway.services.accept")
    importlib.import_module("smsgateway.domain.schedule")
    # Never an answer's code: a number's or sender's refusal takes its reason as code, and
    # price tables are read at start-up.
    never_answered = {"domain_error", "invalid_number", "invalid_sender", "invalid_price_table"}
    codes: set[str] = set()
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        kind = pending.pop()
        codes.add(kind.default_code)
        pending.extend(kind.__subclasses__())
    assert codes - never_answered - set(PROBLEM_KINDS) == set()


@pytest.mark.parametrize(
    ("pydantic_type", "ours"),
    [
        ("missing", "required"),
        ("string_type", "invalid_type"),
        ("int_parsing", "invalid_type"),
        ("uuid_parsing", "invalid_format"),
        ("datetime_from_date_parsing", "invalid_format"),
        ("string_too_long", "invalid_length"),
        ("too_short", "invalid_length"),
        ("extra_forbidden", "unknown_field"),
        ("url_scheme", "invalid_url"),
        ("less_than_equal", "out_of_range"),
        ("invalid_character", "invalid_character"),
        ("something_new_in_pydantic", "invalid_value"),
    ],
)
def test_pydantic_error_types_become_our_field_codes(pydantic_type: str, ours: str) -> None:
    assert field_code(pydantic_type) == ours
    assert ours in FIELD_CODES


@pytest.mark.asyncio
async def test_a_problems_type_uri_answers_with_its_meaning(client: httpx.AsyncClient) -> None:
    problem = (await client.get("/v1/messages/019ac7f1-6e2b-7c3a-9d41-2f5e8b1a0c77")).json()
    assert problem["code"] == "message_not_found"
    explained = await client.get(problem["type"])
    assert explained.status_code == 200
    assert explained.json()["status"] == 404
    catalogue = (await client.get("/problems")).json()
    assert {kind["code"] for kind in catalogue["problems"]} == set(PROBLEM_KINDS)
    for code in PROBLEM_KINDS:
        assert (await client.get(f"/problems/{code}")).status_code == 200, code
    unknown = await client.get("/problems/no_such_code")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")


@pytest.mark.asyncio
async def test_a_bad_number_is_invalid_phone_number_in_a_body_and_in_a_path(
    client: httpx.AsyncClient,
) -> None:
    in_body = await client.post("/v1/opt-outs", json={"msisdn": "+1"})
    in_path = await client.get("/v1/opt-outs/+1")
    for response, field in ((in_body, "body.msisdn"), (in_path, "path.msisdn")):
        problem = response.json()
        assert (response.status_code, problem["code"]) == (422, "invalid_phone_number")
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [
            (field, "invalid_phone_number")
        ]


@pytest.mark.asyncio
async def test_only_our_codes_reach_errors(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/messages", params={"limit": "many"})
    problem = response.json()
    assert problem["code"] == "validation_error"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("query.limit", "invalid_type")]
    unknown = (await client.post("/v1/messages", json={"bdy": "x"})).json()
    assert {e["code"] for e in unknown["errors"]} == {"required", "unknown_field"}


@pytest.mark.asyncio
async def test_the_documented_send_example_is_accepted_as_shipped(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    example = document["components"]["schemas"]["MessageIn"]["examples"][0]
    response = await client.post("/v1/messages", json=example)
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/v1/messages/{response.json()['id']}"


@pytest.mark.asyncio
async def test_date_filters_have_their_names_and_the_old_ones_still_work(
    client: httpx.AsyncClient,
) -> None:
    sent = await client.post("/v1/messages", json={"to": "+46701234567", "body": "hi"})
    created = sent.json()["created_at"]
    for after, before in (("created_after", "created_before"), ("from", "to")):
        found = await client.get("/v1/messages", params={after: created})
        assert [item["id"] for item in found.json()["items"]] == [sent.json()["id"]]
        none = await client.get("/v1/messages", params={before: created})
        assert none.json()["items"] == []
    inbound = await client.get(
        "/v1/inbound-messages", params={"received_after": created, "received_from": created}
    )
    assert inbound.status_code == 200


@pytest.mark.asyncio
async def test_docs_pages_make_no_request_off_the_machine(client: httpx.AsyncClient) -> None:
    redoc = await client.get("/redoc")
    script_url = re.search(r'src="([^"]+redoc[^"]+\.js)"', redoc.text)
    assert script_url is not None
    script = (await client.get(script_url.group(1))).text
    assert "cdn.redoc.ly" not in script
    swagger = (await client.get("/docs")).text
    assert '"validatorUrl": null' in swagger


def test_the_readme_lists_every_problem_code() -> None:
    readme = (SRC.parents[1] / "README.md").read_text()
    catalogue = readme[readme.index("### Error catalogue") :]
    assert [code for code in PROBLEM_KINDS if f"| `{code}` |" not in catalogue] == []


@pytest.mark.asyncio
async def test_a_405_allows_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.request("OPTIONS", "/v1/messages")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")
    assert response.headers["allow"] == "GET, HEAD, POST"


@pytest.mark.asyncio
async def test_a_body_that_is_not_json_is_malformed_json_on_send_sms_too(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/send-sms", content=b"\xff", headers={"content-type": "application/json"}
    )
    assert (response.status_code, response.json()["code"]) == (400, "malformed_json")


@pytest.mark.asyncio
async def test_values_are_taken_as_the_document_types_them_not_coerced(
    client: httpx.AsyncClient,
) -> None:
    """A number is not a date-time (Pydantic would read it as Unix time) and 0 is not false."""
    listing = await client.get("/v1/messages", params={"created_after": "0.5"})
    assert [(e["field"], e["code"]) for e in listing.json()["errors"]] == [
        ("query.created_after", "invalid_format")
    ]
    send = await client.post(
        "/v1/messages",
        json={"to": "+46701234567", "body": "x", "send_at": 0, "smart_encoding": 0},
    )
    assert send.status_code == 422
    assert {(e["field"], e["code"]) for e in send.json()["errors"]} == {
        ("body.send_at", "invalid_format"),
        ("body.smart_encoding", "invalid_type"),
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("authorization", ["Basic Zm9vOmJhcg==", "Bearer", "nonsense", ""])
async def test_an_unreadable_authorization_header_is_refused_even_beside_a_good_key(
    client: httpx.AsyncClient, authorization: str
) -> None:
    response = await client.get("/v1/opt-outs", headers={"Authorization": authorization})
    assert (response.status_code, response.json()["code"]) == (401, "invalid_api_key")
    assert (await client.get("/v1/opt-outs")).status_code == 200
