"""The Helm chart renders objects Kubernetes accepts, and each does what its service needs."""

from __future__ import annotations

from typing import Any

import helm_python
import kubernetes_validate
import pytest
from helm_python.errors import HelmError

from deploy.chart import CHART, of_kind, render
from llmdocs.services import all_specs, spec_of

# the oldest Kubernetes still served by the major clouds, and the newest the package knows
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
AUTOSCALED = {"services": {"interpreter": {"autoscaling": {"enabled": True}}}}
SHARED_BLOBS = {"services": {"doc-store": {"replicas": 3}}, "blobUrl": "s3://bucket/blobs"}


@pytest.mark.parametrize("values", [{}, AUTOSCALED, SHARED_BLOBS,
                                    {**SHARED_BLOBS, "blobUrl": "", "blobClaim": "blobs"}])
def test_every_object_is_valid_for_kubernetes(values: dict[str, Any]) -> None:
    objects = render(values)
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "NetworkPolicy",
                                            "PodDisruptionBudget"}
    for version in KUBERNETES_VERSIONS:
        for obj in objects:
            kubernetes_validate.validate(obj, version, strict=True)


def test_helm_lint_finds_nothing_worse_than_advice() -> None:
    report = helm_python.lint(CHART, strict=True, kube_version="v1.30.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []  # info only


def test_pods_start_without_service_links_and_with_a_patient_startup_probe() -> None:
    deployments = of_kind(render(), "Deployment")
    assert set(deployments) == {spec.name for spec in all_specs()}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["enableServiceLinks"] is False
        (container,) = pod["containers"]
        startup, live = container["startupProbe"], container["livenessProbe"]
        assert startup["httpGet"] == live["httpGet"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # a model loads


def test_each_service_may_reach_only_the_services_it_calls() -> None:
    """Its declared calls, and the discovery-agent it registers with; the services that
    reach addresses users configure (providers, registered services) also reach out."""
    objects = render()
    ports = {name: service["spec"]["ports"][0]["port"]
             for name, service in of_kind(objects, "Service").items()}
    policies = of_kind(objects, "NetworkPolicy")
    for spec in all_specs():
        rules = policies[spec.name]["spec"]["egress"]
        reached = {peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]: rule["ports"]
                   for rule in rules for peer in rule.get("to", []) if "podSelector" in peer}
        calls = {spec_of(call.target).name for call in spec.calls}
        assert set(reached) == (calls | {"discovery-agent"}) - {spec.name}, spec.name
        for name, allowed in reached.items():
            assert allowed == [{"port": ports[name], "protocol": "TCP"}]
        open_egress = {} in rules
        # model providers, probed services, spec URLs: addresses users configure
        assert open_egress == (spec.name in {"llm-gateway", "discovery-agent", "orchestrator",
                                             "analysis", "notification"})


def test_the_doc_store_reaches_s3_only_when_its_blobs_are_there() -> None:
    for values, reaches in (({}, False), (SHARED_BLOBS, True)):
        rules = of_kind(render(values), "NetworkPolicy")["doc-store"]["spec"]["egress"]
        assert ({"ports": [{"port": 443, "protocol": "TCP"}]} in rules) == reaches


def test_replicated_services_keep_a_pod_through_drains_and_may_autoscale() -> None:
    objects = render(AUTOSCALED)
    budgets = of_kind(objects, "PodDisruptionBudget")
    scalers = of_kind(objects, "HorizontalPodAutoscaler")
    assert set(budgets) == {"prompt-store", "interpreter"}  # the ones that may run two pods
    assert set(scalers) == {"interpreter"}
    deployment = of_kind(objects, "Deployment")["interpreter"]
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    target = scalers["interpreter"]["spec"]["scaleTargetRef"]
    assert target["name"] == deployment["metadata"]["name"]


@pytest.mark.parametrize("values", [
    {"services": {"doc-store": {"replicas": 2}}},
    {"services": {"doc-store": {"replicas": 1, "resources": {"requests": {"cpu": "1"}},
                                "autoscaling": {"enabled": True, "minReplicas": 1,
                                                "maxReplicas": 3,
                                                "targetCPUUtilizationPercentage": 80}}}},
    {"services": {"doc-store": {"replicas": 2}}, "blobUrl": "file:///blobs"},
])
def test_doc_store_replicas_without_shared_blobs_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(HelmError, match="blobUrl to s3://bucket/prefix or blobClaim"):
        render(values)


def test_autoscaling_without_a_cpu_request_is_refused() -> None:
    """An autoscaler on CPU use cannot measure a pod that requests no CPU: it would
    never scale."""
    values = {"services": {"interpreter": {"resources": {"requests": None},  # Helm: unset
                                           "autoscaling": {"enabled": True}}}}
    with pytest.raises(HelmError, match="interpreter: autoscaling on CPU needs resources"):
        render(values)


def test_a_claim_shares_the_blobs_of_doc_store_replicas() -> None:
    pod = of_kind(render({"services": {"doc-store": {"replicas": 2}}, "blobClaim": "blobs"}),
                  "Deployment")["doc-store"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"name": "LLMDOCS_DOCSTORE_BLOB_URL", "value": "file:///blobs"} in container["env"]
    assert container["volumeMounts"] == [{"name": "blobs", "mountPath": "/blobs"}]
    assert pod["volumes"] == [{"name": "blobs", "persistentVolumeClaim": {"claimName": "blobs"}}]
