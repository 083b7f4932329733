"""The shipped alert rules and dashboard: every expression parses and names only metrics that a
running gateway exposes (read from a live scrape); the rules pass their promtool unit tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from smsgateway.app import create_app
from tests.support.live_server import live_server
from tests.support.processes import REPO_ROOT
from tests.support.settings import make_settings

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "dashboards" / "smsgateway.json"
# Prometheus's own series, not the gateway's.
PROMETHEUS_SERIES = {"up"}
# Grafana's variables, given a value Prometheus would accept, so that the query parses.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}

_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expression = expression.replace(variable, value)
            found[f"{panel['title']} / {target['refId']}"] = expression
    return found


def metric_names(node: object) -> Iterator[str]:
    """The metric names an expression selects, from its syntax tree."""
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            yield node.name
        for matcher in node.matchers.matchers:
            if matcher.name == "__name__":
                yield matcher.value
    elif isinstance(node, promql_parser.MatrixSelector):
        yield from metric_names(node.vector_selector)
    elif isinstance(node, promql_parser.BinaryExpr):
        yield from metric_names(node.lhs)
        yield from metric_names(node.rhs)
    elif isinstance(node, promql_parser.AggregateExpr):
        yield from metric_names(node.expr)
        if node.param is not None:
            yield from metric_names(node.param)
    elif isinstance(node, promql_parser.Call):
        for argument in node.args:
            yield from metric_names(argument)
    elif isinstance(
        node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr
    ):
        yield from metric_names(node.expr)


def exposed_names(exposition: str) -> set[str]:
    """Every series name the scrape offers, including those of labelled metrics that have no
    sample yet (the exposition still declares them, with their type)."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        names |= {sample.name for sample in family.samples}
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names


async def scraped_names(database_url: str) -> set[str]:
    """The names a gateway on a real socket offers at /metrics."""
    app = create_app(make_settings(database_url))
    async with live_server(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        response = await client.get("/metrics")
        response.raise_for_status()
        return exposed_names(response.text)


@pytest.mark.asyncio
async def test_every_expression_parses_and_names_only_exposed_metrics(database_url: str) -> None:
    exposed = await scraped_names(database_url)
    expressions = {**alert_expressions(), **dashboard_expressions()}
    problems = {}
    for where, expression in expressions.items():
        try:
            names = set(metric_names(promql_parser.parse(expression)))
        except ValueError as exc:
            problems[where] = f"does not parse: {exc}"
            continue
        unknown = names - exposed - PROMETHEUS_SERIES
        if not names or unknown:
            problems[where] = f"names {sorted(unknown)} that the gateway does not expose"
    assert len(expressions) > 30
    assert problems == {}
    assert {
        "smsgw_outbox_oldest_due_age_seconds",
        "smsgw_callback_backlog",
        "smsgw_callback_oldest_pending_age_seconds",
        "smsgw_reconcile_backlog",
        "smsgw_sinch_responses_total",
        "smsgw_sinch_errors_total",
        "smsgw_build_info",
        "smsgw_database_unavailable",
    } <= exposed


def test_a_misspelt_or_unparsable_expression_would_be_caught() -> None:
    assert "smsgw_outbox_depth" not in set(metric_names(promql_parser.parse("smsgw_outbox_dept")))
    with pytest.raises(ValueError, match=r"."):
        promql_parser.parse("sum(rate(smsgw_http_requests_total[5m])")


def test_the_walker_finds_names_behind_every_construct() -> None:
    tree = promql_parser.parse(
        "sum by (le) (rate(a_bucket[5m])) / on() group_left -b"
        ' + max_over_time((c)[10m:1m]) + {__name__="d"} + topk(scalar(e), f)'
    )
    assert sorted(metric_names(tree)) == ["a_bucket", "b", "c", "d", "e", "f"]


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_compose_file_provisions_the_dashboard_and_the_rules() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    mounted = {
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
    }
    assert {
        "./deploy/prometheus/prometheus.yml",
        "./deploy/prometheus/alerts.yml",
        "./deploy/grafana/provisioning",
        "./deploy/grafana/dashboards",
    } <= mounted
    for path in mounted - {"pgdata", "grafana"}:
        assert Path(REPO_ROOT, path).exists(), path
