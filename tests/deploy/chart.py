"""The Helm chart rendered by Helm's own engine, and the environment Kubernetes would give
each of its pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]
from helm_python import Chart

CHART = Path(__file__).parents[2] / "deploy" / "helm" / "llmdocs"

# the Secret the chart's values tell the operator to create
SECRET = {"LLMDOCS_DATABASE_URL": "postgresql+asyncpg://llmdocs:pw@postgres/llmdocs",
          "LLMDOCS_JWT_SECRET": "deploy-test-" + "x" * 40}
# the API server's own Service, which every namespace sees
KUBERNETES_SERVICE = {"kind": "Service", "metadata": {"name": "kubernetes"},
                      "spec": {"ports": [{"name": "https", "port": 443}]}}


def render(values: dict[str, Any] | None = None, release: str = "llmdocs") -> list[dict[str, Any]]:
    """Every object the chart makes for `release` (helm template)."""
    with Chart.load(CHART) as chart:
        manifests = chart.render(values or {}, name=release, namespace="default")
    return [doc for name, text in sorted(manifests.items()) if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The objects of one kind by their component (the llmdocs service they belong to)."""
    return {o["metadata"]["labels"]["app.kubernetes.io/component"]: o
            for o in objects if o["kind"] == kind}


def service_links(service: dict[str, Any], cluster_ip: str) -> dict[str, str]:
    """The variables Kubernetes' service links set for one Service (as the kubelet does)."""
    prefix = service["metadata"]["name"].upper().replace("-", "_")
    ports = service["spec"]["ports"]
    first = ports[0]["port"]
    links = {f"{prefix}_SERVICE_HOST": cluster_ip, f"{prefix}_SERVICE_PORT": str(first),
             f"{prefix}_PORT": f"tcp://{cluster_ip}:{first}"}
    for port in ports:
        number, proto = port["port"], port.get("protocol", "TCP")
        base = f"{prefix}_PORT_{number}_{proto}"
        links |= {f"{prefix}_SERVICE_PORT_{port['name'].upper()}": str(number),
                  base: f"{proto.lower()}://{cluster_ip}:{number}",
                  f"{base}_PROTO": proto.lower(), f"{base}_PORT": str(number),
                  f"{base}_ADDR": cluster_ip}
    return links


def pod_environment(deployment: dict[str, Any], objects: list[dict[str, Any]],
                    secret: dict[str, str]) -> dict[str, str]:
    """The variables the container of `deployment` starts with: service links (unless
    the pod turns them off), then its `envFrom` Secret, then its own `env`, later ones
    winning as in Kubernetes."""
    pod = deployment["spec"]["template"]["spec"]
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    if pod.get("enableServiceLinks", True):
        services = [KUBERNETES_SERVICE, *(o for o in objects if o["kind"] == "Service")]
        for number, service in enumerate(services, start=1):
            env |= service_links(service, f"10.96.0.{number}")
    (container,) = pod["containers"]
    for source in container.get("envFrom", []):
        assert "secretRef" in source
        env |= secret
    return env | {item["name"]: item["value"] for item in container.get("env", [])}
