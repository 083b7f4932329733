"""The Kubernetes manifests: valid against the API's schemas (shipped in kubernetes-validate,
nothing downloaded), strict about unknown fields, and consistent with the gateway itself."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices

from smsgateway.settings import Settings
from tests.support.processes import REPO_ROOT

MANIFESTS = REPO_ROOT / "deploy" / "kubernetes"
# The oldest Kubernetes still supported upstream when these were written; newer ones accept
# the same objects.
KUBERNETES_VERSION = "1.30.0"
# Variables the manifests set before the gateway reads them (none now).
PENDING_SETTINGS: set[str] = set()


def resources() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            found.append((path.name, document))
    return found


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for _, r in resources() if r["kind"] == kind}


def setting_names() -> set[str]:
    names = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            names.add(alias.choices[0])
        else:
            names.add(f"SMSGW_{field_name.upper()}")
    return names


@pytest.mark.parametrize(("file", "resource"), resources(), ids=[f for f, _ in resources()])
def test_each_manifest_is_valid_kubernetes(file: str, resource: dict[str, Any]) -> None:
    kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_a_wrong_field_is_caught() -> None:
    deployment = by_kind("Deployment")["smsgateway-api"]
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_but_the_example_secret() -> None:
    listed = set(yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - {"secret.example.yaml"}


def test_api_pods_serve_without_dispatch_and_workers_dispatch() -> None:
    deployments = by_kind("Deployment")
    api = deployments["smsgateway-api"]["spec"]["template"]["spec"]["containers"][0]
    worker = deployments["smsgateway-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert api["command"] == ["smsgateway", "serve"]
    assert {"name": "SMSGW_DISPATCHER", "value": "off"} in api["env"]
    assert worker["command"] == ["smsgateway", "worker"]
    for container in (api, worker):
        assert {"startupProbe", "livenessProbe", "readinessProbe"} <= container.keys()
        assert container["resources"]["requests"].keys() == {"cpu", "memory"}
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_every_workload_has_a_disruption_budget_and_a_cpu_autoscaler() -> None:
    deployments = by_kind("Deployment")
    budgets = by_kind("PodDisruptionBudget")
    autoscalers = by_kind("HorizontalPodAutoscaler")
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert budgets[name]["spec"]["selector"]["matchLabels"].items() <= labels.items()
        autoscaler = autoscalers[name]["spec"]
        assert autoscaler["scaleTargetRef"]["name"] == name
        assert autoscaler["metrics"][0]["resource"]["name"] == "cpu"
    service = by_kind("Service")["smsgateway-api"]
    api_labels = deployments["smsgateway-api"]["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= api_labels.items()


def test_every_variable_set_is_a_gateway_setting() -> None:
    names = set(by_kind("ConfigMap")["smsgateway"]["data"])
    names |= set(by_kind("Secret")["smsgateway"]["stringData"])
    for deployment in by_kind("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names |= {variable["name"] for variable in container.get("env", [])}
    assert names - setting_names() - PENDING_SETTINGS == set()


def test_the_configured_values_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in by_kind("ConfigMap")["smsgateway"]["data"].items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.workers == 1
