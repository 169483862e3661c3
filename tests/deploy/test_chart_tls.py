"""The chart with zero trust on: mutual TLS from cert-manager or a Secret of the operator's,
exec probes, https between services; and sign-in (OIDC) and rate limits set from values."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import helm_python
import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
from helm_python.errors import HelmError

from deploy.chart import CHART, SECRET, of_kind, pod_environment, render
from deploy.test_chart import KUBERNETES_VERSIONS
from llmdocs.core.config import Settings
from llmdocs.services import all_specs

CERT_MANAGER = {"tls": {"enabled": True, "certManager": {"issuerRef": {"name": "llmdocs-ca"}}}}
SECRET_OF_CERTS = {"tls": {"enabled": True, "existingSecret": "llmdocs-tls"}}
OIDC = {"oidc": {"issuer": "https://idp.example.com/realms/eng", "audience": "llmdocs",
                 "rolesClaim": "realm_access.roles",
                 "roleMap": {"platform-team": "admin", "developers": "editor"}}}
GO_DURATION = r"(\d+(\.\d+)?(h|m|s|ms|us|ns))+"
# the fields of cert-manager.io/v1 Certificate this chart may use, with cert-manager's
# allowed values: a misspelt or unknown field fails here as it would at the API server
CERTIFICATE = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "cert-manager.io/v1"}, "kind": {"const": "Certificate"},
        "spec": {
            "type": "object", "additionalProperties": False,
            "required": ["secretName", "issuerRef"],
            "properties": {
                "secretName": {"type": "string", "minLength": 1},
                "issuerRef": {"type": "object", "additionalProperties": False,
                              "required": ["name"],
                              "properties": {"name": {"type": "string", "minLength": 1},
                                             "kind": {"enum": ["Issuer", "ClusterIssuer"]},
                                             "group": {"const": "cert-manager.io"}}},
                "duration": {"type": "string", "pattern": f"^{GO_DURATION}$"},
                "renewBefore": {"type": "string", "pattern": f"^{GO_DURATION}$"},
                "privateKey": {"type": "object", "additionalProperties": False, "properties": {
                    "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]},
                    "size": {"type": "integer"},
                    "encoding": {"enum": ["PKCS1", "PKCS8"]},
                    "rotationPolicy": {"enum": ["Never", "Always"]}}},
                "commonName": {"type": "string", "maxLength": 64},
                "dnsNames": {"type": "array", "items": {"type": "string"}},
                "ipAddresses": {"type": "array", "items": {"type": "string"}},
                "uris": {"type": "array", "items": {"type": "string"}},
                "usages": {"type": "array", "items": {"enum": [
                    "signing", "digital signature", "content commitment", "key encipherment",
                    "key agreement", "data encipherment", "cert sign", "crl sign",
                    "encipher only", "decipher only", "any", "server auth", "client auth",
                    "code signing", "email protection", "s/mime", "ipsec end system",
                    "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing",
                    "microsoft sgc", "netscape sgc"]}}}}}}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return cast(dict[str, Any], container)


def _hours(duration: str) -> float:
    units = {"h": 1.0, "m": 1 / 60, "s": 1 / 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", duration))


def _mounted_files(deployment: dict[str, Any]) -> dict[str, str]:
    """Path in the container -> the key of the Secret it holds."""
    pod = deployment["spec"]["template"]["spec"]
    mount = {m["name"]: m["mountPath"] for m in _container(deployment)["volumeMounts"]}["tls"]
    secret = {v["name"]: v for v in pod["volumes"]}["tls"]["secret"]
    items = secret.get("items") or [{"key": k, "path": k} for k in ("tls.crt", "tls.key", "ca.crt")]
    return {f"{mount}/{item['path']}": item["key"] for item in items}


@pytest.mark.parametrize("values", [CERT_MANAGER, SECRET_OF_CERTS, {**CERT_MANAGER, **OIDC}])
def test_objects_with_tls_on_are_valid_for_kubernetes_and_cert_manager(
        values: dict[str, Any]) -> None:
    objects = render(values)
    for obj in objects:
        if obj["kind"] == "Certificate":
            jsonschema.validate(obj, CERTIFICATE)
        else:
            for version in KUBERNETES_VERSIONS:
                kubernetes_validate.validate(obj, version, strict=True)
    report = helm_python.lint(CHART, values=values, strict=True, kube_version="v1.30.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []  # info only


def test_cert_manager_issues_each_service_its_own_pair_under_its_kubernetes_names() -> None:
    objects = render(CERT_MANAGER, release="docs")
    certificates = of_kind(objects, "Certificate")
    deployments = of_kind(objects, "Deployment")
    services = of_kind(objects, "Service")
    assert set(certificates) == set(deployments) == {spec.name for spec in all_specs()}
    assert len({c["spec"]["secretName"] for c in certificates.values()}) == len(certificates)
    for spec in all_specs():
        cert = certificates[spec.name]["spec"]
        host = services[spec.name]["metadata"]["name"]
        assert {host, f"{host}.default.svc", f"{host}.default.svc.cluster.local",
                "localhost"} <= set(cert["dnsNames"])
        assert cert["ipAddresses"] == ["127.0.0.1"]  # the healthcheck dials its own pod
        assert cert["uris"] == [f"spiffe://llmdocs/service/{spec.key}"]  # as certs init
        assert cert["privateKey"]["algorithm"] == "ECDSA" and cert["privateKey"]["size"] == 256
        assert {"server auth", "client auth"} <= set(cert["usages"])
        assert cert["issuerRef"] == {"name": "llmdocs-ca", "kind": "Issuer",
                                     "group": "cert-manager.io"}
        assert 0 < _hours(cert["renewBefore"]) < _hours(cert["duration"]) == 90 * 24
        # the pod mounts exactly this Certificate's Secret, and is told where the files are
        deployment = deployments[spec.name]
        pod = deployment["spec"]["template"]["spec"]
        assert {v["name"]: v for v in pod["volumes"]}["tls"]["secret"]["secretName"] == \
            cert["secretName"]
        env = {e["name"]: e["value"] for e in _container(deployment)["env"]}
        files = _mounted_files(deployment)
        assert {files[env[f"LLMDOCS_TLS_{part}"]] for part in ("CERT", "KEY", "CA")} == \
            {"tls.crt", "tls.key", "ca.crt"}
        assert files[env["LLMDOCS_TLS_KEY"]] == "tls.key"


def test_an_existing_secret_gives_each_pod_only_the_ca_and_its_own_pair() -> None:
    """The Secret holds `llmdocs certs init` output; the CA's key never reaches a pod."""
    objects = render(SECRET_OF_CERTS)
    assert of_kind(objects, "Certificate") == {}
    for name, deployment in of_kind(objects, "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        volume = {v["name"]: v for v in pod["volumes"]}["tls"]["secret"]
        assert volume["secretName"] == "llmdocs-tls"
        files = _mounted_files(deployment)
        assert sorted(files.values()) == sorted(["ca.pem", f"{name}.pem", f"{name}-key.pem"])
        env = {e["name"]: e["value"] for e in _container(deployment)["env"]}
        assert (files[env["LLMDOCS_TLS_CERT"]], files[env["LLMDOCS_TLS_KEY"]],
                files[env["LLMDOCS_TLS_CA"]]) == (f"{name}.pem", f"{name}-key.pem", "ca.pem")
        assert volume["defaultMode"] & 0o007 == 0  # the key is no one else's to read
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]


def test_tls_without_issuer_or_secret_is_refused_with_both_ways_named() -> None:
    with pytest.raises(HelmError, match=r"issuerRef\.name .* or tls\.existingSecret"):
        render({"tls": {"enabled": True}})


@pytest.mark.parametrize("values", [CERT_MANAGER, SECRET_OF_CERTS])
def test_probes_run_the_healthcheck_module_when_tls_is_on(values: dict[str, Any]) -> None:
    for name, deployment in of_kind(render(values), "Deployment").items():
        container = _container(deployment)
        probes = {p: container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe")}
        for probe in probes.values():
            assert "httpGet" not in probe, name
            assert probe["exec"]["command"][:3] == ["python", "-m", "llmdocs.healthcheck"]
            assert probe["timeoutSeconds"] >= 5  # Python starts in ~0.6 s on an idle node
        assert probes["readinessProbe"]["exec"]["command"][3:] == ["/health?deep=false"]
        assert probes["livenessProbe"]["exec"]["command"][3:] == []
        assert container["ports"][0]["name"] == "https"


def test_probes_stay_http_gets_when_tls_is_off() -> None:
    for deployment in of_kind(render(), "Deployment").values():
        container = _container(deployment)
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert "exec" not in container[probe] and "httpGet" in container[probe]
        assert "volumeMounts" not in container
        assert not any(e["name"].startswith("LLMDOCS_TLS_") for e in container["env"])


def test_services_call_each_other_over_https_and_network_policies_stay_the_same() -> None:
    objects = render(CERT_MANAGER)
    for deployment in of_kind(objects, "Deployment").values():
        env = pod_environment(deployment, objects, SECRET)
        settings = Settings.model_validate(
            {k.removeprefix("LLMDOCS_").lower(): v for k, v in env.items()
             if k.startswith("LLMDOCS_")})
        for spec in all_specs():
            assert settings.url_for(spec.key).startswith(f"https://llmdocs-{spec.name}:")
    for service in of_kind(objects, "Service").values():
        assert [p["name"] for p in service["spec"]["ports"]] == ["https"]
    assert of_kind(objects, "NetworkPolicy") == of_kind(render(), "NetworkPolicy")


def test_oidc_settings_come_from_values_and_stay_unset_without_an_issuer() -> None:
    for deployment in of_kind(render(OIDC), "Deployment").values():
        env = {e["name"]: e["value"] for e in _container(deployment)["env"]}
        assert env["LLMDOCS_OIDC_ISSUER"] == "https://idp.example.com/realms/eng"
        assert env["LLMDOCS_OIDC_AUDIENCE"] == "llmdocs"
        assert env["LLMDOCS_OIDC_ROLES_CLAIM"] == "realm_access.roles"
        assert json.loads(env["LLMDOCS_OIDC_ROLE_MAP"]) == OIDC["oidc"]["roleMap"]
    for deployment in of_kind(render(), "Deployment").values():
        assert not any(e["name"].startswith("LLMDOCS_OIDC_")
                       for e in _container(deployment)["env"])


@pytest.mark.parametrize(("issuer", "port"), [("https://idp.example.com/realms/eng", 443),
                                              ("http://keycloak.auth:8080/realms/eng", 8080)])
def test_every_service_may_reach_the_identity_provider_for_its_keys(issuer: str,
                                                                    port: int) -> None:
    """Each service checks tokens itself, so each fetches the provider's keys."""
    plain = of_kind(render(), "NetworkPolicy")
    values = {"oidc": {"issuer": issuer, "audience": "llmdocs"}}
    for name, policy in of_kind(render(values), "NetworkPolicy").items():
        rules = policy["spec"]["egress"]
        added = [rule for rule in rules if rule not in plain[name]["spec"]["egress"]]
        assert added == [{"ports": [{"port": port, "protocol": "TCP"}]}], name


def test_an_issuer_without_an_audience_is_refused() -> None:
    with pytest.raises(HelmError, match=r"oidc\.audience"):
        render({"oidc": {"issuer": "https://idp.example.com"}})


@pytest.mark.parametrize(("limit", "expected"), [(None, None), (0, "0"), (1200, "1200"),
                                                 (1000000, "1000000")])
def test_the_rate_limit_is_set_only_when_given(limit: int | None, expected: str | None) -> None:
    for deployment in of_kind(render({"rateLimitPerMinute": limit}), "Deployment").values():
        env = {e["name"]: e["value"] for e in _container(deployment)["env"]}
        assert env.get("LLMDOCS_RATE_LIMIT_PER_MINUTE") == expected
