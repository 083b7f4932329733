from __future__ import annotations

import pytest
from fastapi import APIRouter
from prometheus_client.parser import text_string_to_metric_families

from smsgateway.app import create_app
from tests.support.asgi import lifespan_client
from tests.support.settings import make_settings

pytestmark = pytest.mark.asyncio

probe = APIRouter()


@probe.get("/test/things/{thing_id}")
async def thing(thing_id: str) -> dict[str, str]:
    return {"thing_id": thing_id}


def sample_value(text: str, name: str, labels: dict[str, str]) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def test_requests_are_counted_by_route_template_not_raw_path(database_url: str) -> None:
    app = create_app(make_settings(database_url))
    app.include_router(probe)
    template = {"method": "GET", "route": "/test/things/{thing_id}", "status_class": "2xx"}
    async with lifespan_client(app) as client:
        before = sample_value(
            (await client.get("/metrics")).text, "smsgw_http_requests_total", template
        )
        for thing_id in ("a", "b", "c"):
            assert (await client.get(f"/test/things/{thing_id}")).status_code == 200
        await client.get("/definitely/not/here")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    after = sample_value(text, "smsgw_http_requests_total", template)
    assert after - before == 3
    assert "/test/things/a" not in text
    assert "/definitely/not/here" not in text
    assert (
        sample_value(
            text, "smsgw_http_requests_total", {"route": "<unmatched>", "status_class": "4xx"}
        )
        >= 1
    )
    assert (
        sample_value(
            text, "smsgw_http_request_duration_seconds_count", {"route": "/test/things/{thing_id}"}
        )
        >= 3
    )


async def test_process_metrics_are_exposed(database_url: str) -> None:
    async with lifespan_client(create_app(make_settings(database_url))) as client:
        text = (await client.get("/metrics")).text
    assert sample_value(text, "process_resident_memory_bytes", {}) > 0
    assert sample_value(text, "smsgw_worker_resident_memory_bytes", {}) > 0
