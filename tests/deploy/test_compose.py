"""The compose file and the image: every service named, healthy when it answers, one image
built once, and credentials that survive any character."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx
import pathspec
import yaml  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from llmdocs.core.config import DEFAULT_PORTS, Settings
from llmdocs.devservers import PostgresServer
from llmdocs.services import all_specs, create_app

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
PASSWORD = "p@ss:w/rd#%"  # every character a URL gives a meaning to
ENV_FILE = {"POSTGRES_PASSWORD": PASSWORD, "LLMDOCS_JWT_SECRET": "j$wt " + "x" * 40}
REFERENCE = re.compile(r"\$\{(\w+)(?::\?[^}]*)?\}")  # compose's ${NAME} and ${NAME:?why}


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _settings_of(environment: dict[str, str]) -> Settings:
    """Settings from a compose service's environment, with deploy/.env's values in."""
    values = {name: REFERENCE.sub(lambda m: ENV_FILE[m.group(1)], value)
              for name, value in environment.items()}
    return Settings.model_validate({  # these values alone: no environment, no .env
        name.removeprefix("LLMDOCS_").lower(): value for name, value in values.items()})


def test_compose_runs_each_service_with_urls_the_settings_understand() -> None:
    services = _load(DEPLOY / "compose.yaml")["services"]
    for spec in all_specs():
        assert services[spec.name]["command"] == ["serve", spec.name]
    settings = _settings_of(services["orchestrator"]["environment"])
    for spec in all_specs():
        assert settings.url_for(spec.key) == f"http://{spec.name}:{DEFAULT_PORTS[spec.key]}"
    assert settings.events_url.startswith("redis://")
    assert settings.signing_key == ENV_FILE["LLMDOCS_JWT_SECRET"]


def test_the_database_password_survives_any_character() -> None:
    settings = _settings_of(_load(DEPLOY / "compose.yaml")["services"]["doc-store"]["environment"])
    url = make_url(settings.database_url)
    assert (url.password, url.username, url.host, url.port, url.database) == (
        PASSWORD, "llmdocs", "postgres", 5432, "llmdocs")


def _with_tls() -> dict[str, Any]:
    """compose.yaml with compose.tls.yaml laid over it, merged as compose merges files:
    environments by variable, volumes by their path in the container."""
    services = _load(DEPLOY / "compose.yaml")["services"]
    for name, override in _load(DEPLOY / "compose.tls.yaml")["services"].items():
        base = services[name]
        mounts = {v.split(":")[1]: v for v in base.get("volumes", []) + override["volumes"]}
        services[name] = base | override | {
            "environment": base["environment"] | override["environment"],
            "volumes": list(mounts.values())}
    return cast(dict[str, Any], services)


def test_the_tls_variant_gives_each_service_its_pair_and_https_urls_for_the_others() -> None:
    overrides = _load(DEPLOY / "compose.tls.yaml")["services"]
    assert set(overrides) == {spec.name for spec in all_specs()}
    services = _with_tls()
    for spec in all_specs():
        service = services[spec.name]
        environment = service["environment"]
        settings = _settings_of(environment)
        for other in all_specs():
            assert settings.url_for(other.key) == \
                f"https://{other.name}:{DEFAULT_PORTS[other.key]}"
        assert "./certs:/certs:ro" in service["volumes"]  # the directory: rotation shows
        assert (environment["LLMDOCS_TLS_CERT"], environment["LLMDOCS_TLS_KEY"],
                environment["LLMDOCS_TLS_CA"]) == (
            f"/certs/{spec.name}.pem", f"/certs/{spec.name}-key.pem", "/certs/ca.pem")
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "llmdocs.healthcheck"]
        assert settings.signing_key == ENV_FILE["LLMDOCS_JWT_SECRET"]  # the rest still in
    assert "blobs:/blobs" in services["doc-store"]["volumes"]


def test_the_tls_variant_says_how_to_make_and_share_its_certificates() -> None:
    """Its header makes deploy/certs, lets the containers' user read the services' keys
    but not the CA's, and starts compose with the override."""
    header = (DEPLOY / "compose.tls.yaml").read_text()
    assert "llmdocs certs init --dir deploy/certs" in header
    (user,) = re.findall(r"useradd .*--uid (\d+)", (DEPLOY / "Dockerfile").read_text())
    assert f"setfacl -m u:{user}:r deploy/certs/*.pem" in header
    revoked = re.search(rf"setfacl -x u:{user} (.+)$", header, re.M)
    assert revoked and "deploy/certs/ca-key.pem" in revoked.group(1).split()
    assert "-f deploy/compose.yaml -f deploy/compose.tls.yaml up" in header


def test_one_image_built_once_and_every_service_checked_for_health() -> None:
    services = _load(DEPLOY / "compose.yaml")["services"]
    ours = [services[spec.name] for spec in all_specs()]
    assert len({service["image"] for service in ours}) == 1
    assert sum("build" in service for service in ours) == 1
    for service in ours:
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "llmdocs.healthcheck"]
    for name in ("postgres", "redis"):  # pinned to a version, not a moving name
        assert re.fullmatch(r"[\w.-]+:\d+(\.\d+)+", services[name]["image"])


def test_the_image_is_built_from_source_only() -> None:
    """Docker's .dockerignore rules agree with gitignore's on this file's patterns (all
    anchored with `/` or `**/`), so pathspec tells what a build receives."""
    ignored = pathspec.GitIgnoreSpec.from_lines((ROOT / ".dockerignore").read_text().splitlines())
    for secret in (".venv/bin/python", ".llmdocs/jwt-secret", "src/.llmdocs/llmdocs.db",
                   ".env", "deploy/.env", ".git/config", "src/llmdocs/__pycache__/cli.pyc",
                   ".mypy_cache/3.11/x.json", "tests/conftest.py",
                   "deploy/certs/ca-key.pem", "deploy/certs/doc-store-key.pem"):
        assert ignored.match_file(secret), secret
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", (DEPLOY / "Dockerfile").read_text(), re.M)
    for source in (name for line in copied for name in line.split()):
        assert not ignored.match_file(source) and (ROOT / source).exists(), source
    assert not ignored.match_file("src/llmdocs/cli.py")


def test_the_image_is_pinned_checks_its_health_and_serves_one_service() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    (base,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base)
    assert dockerfile.count("FROM ${PYTHON_IMAGE}") == 2
    assert 'CMD ["python", "-m", "llmdocs.healthcheck"]' in dockerfile
    assert dockerfile.rstrip().endswith('CMD ["serve", "interpreter"]')


async def test_services_reach_postgresql_with_such_a_password(serve: Any, tmp_path: Path) -> None:
    """The orchestrator opens both kinds of connection: SQLAlchemy's and its checkpointer's."""
    server = PostgresServer().start()
    try:
        address = f"postgresql://llmdocs@127.0.0.1:{server.port}/llmdocs"
        admin = await asyncpg.connect(server.url().replace("+asyncpg", ""))
        await admin.execute(f"CREATE ROLE llmdocs LOGIN PASSWORD '{PASSWORD}'")
        await admin.execute("CREATE DATABASE llmdocs OWNER llmdocs")
        hba = server.data / "pg_hba.conf"
        hba.write_text(f"host all llmdocs 127.0.0.1/32 scram-sha-256\n{hba.read_text()}")
        await admin.execute("SELECT pg_reload_conf()")
        await admin.close()
        await _until_refused(address, password="not-" + PASSWORD)
        settings = Settings(_env_file=None, data_dir=tmp_path,
                            database_url=address.replace("postgresql:", "postgresql+asyncpg:"),
                            database_password=PASSWORD, jwt_secret="compose-" + "x" * 40)
        running = await serve(create_app("orchestrator", settings))
        async with httpx.AsyncClient(base_url=running.url) as http:
            report = (await http.get("/health")).json()
        database = [d for d in report["dependencies"] if d["kind"] == "database"]
        assert database and all(d["status"] == "up" for d in database), report
        await running.stop()
    finally:
        server.cleanup()


async def _until_refused(address: str, password: str) -> None:
    """Wait for the reloaded server to demand the password (a reload takes effect soon)."""
    for _ in range(100):
        try:
            connection = await asyncpg.connect(address, password=password)
        except asyncpg.InvalidPasswordError:
            return
        await connection.close()
        await asyncio.sleep(0.05)
    raise AssertionError("PostgreSQL never asked for the password")
