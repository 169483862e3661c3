"""The deployment files name every service, with the port and URL settings the code reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from llmdocs.core.config import DEFAULT_PORTS, Settings
from llmdocs.services import all_specs

DEPLOY = Path(__file__).parents[2] / "deploy"


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_compose_runs_each_service_with_urls_the_settings_understand() -> None:
    compose = _load(DEPLOY / "compose.yaml")
    services = compose["services"]
    for spec in all_specs():
        assert services[spec.name]["command"] == ["serve", spec.name]
    env = services["orchestrator"]["environment"]
    settings = Settings(**{k.removeprefix("LLMDOCS_").lower(): v for k, v in env.items()
                           if k.startswith("LLMDOCS_") and "${" not in v})
    for spec in all_specs():
        assert settings.url_for(spec.key) == f"http://{spec.name}:{DEFAULT_PORTS[spec.key]}"
    assert settings.events_url.startswith("redis://")


def test_helm_values_list_each_service_on_its_port() -> None:
    values = _load(DEPLOY / "helm" / "llmdocs" / "values.yaml")
    assert {name: svc["port"] for name, svc in values["services"].items()} == {
        spec.name: DEFAULT_PORTS[spec.key] for spec in all_specs()}
    assert "jwt" not in yaml.safe_dump(values).lower()  # secrets come from a Secret only
