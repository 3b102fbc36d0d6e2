"""The deployment files say the same thing, and what they say is valid (fast; no server).

deploy/dagster.yaml (a host) and deploy/helm/values.yaml (Kubernetes) are two spellings of one
instance: the same queue limits, run monitoring and Postgres driver. The Helm values must take
the API key from a Secret and set the variables design.md promises; the image must serve the
module pyproject.toml names. test_postgres.py runs deploy/dagster.yaml for real.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

REPO_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = REPO_ROOT / "deploy"
PG_ENV = {
    "DAGSTER_PG_HOST": "db.example",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD": "not-a-real-password",
    "DAGSTER_PG_DB": "dagster",
}


# What the chart's instance template reads from dagsterDaemon.runMonitoring (Dagster chart 1.x).
CHART_RUN_MONITORING_KEYS = {
    "enabled",
    "startTimeoutSeconds",
    "cancelTimeoutSeconds",
    "maxResumeRunAttempts",
    "pollIntervalSeconds",
    "freeSlotsAfterRunEndSeconds",
}


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def instance_yaml() -> dict:
    return _yaml(DEPLOY / "dagster.yaml")


@pytest.fixture
def helm() -> dict:
    return _yaml(DEPLOY / "helm" / "values.yaml")


def _user_deployment(helm: dict) -> dict:
    deployments = helm["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1
    return deployments[0]


def test_instance_yaml_is_valid_dagster_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "dagster.yaml").write_text((DEPLOY / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # raises on any schema error
    postgres = config["storage"]["postgres"]["postgres_db"]
    # Every connection setting is an env var reference: nothing secret in the file.
    assert all(
        isinstance(value, dict) and "env" in value
        for key, value in postgres.items()
        if key != "scheme"
    ), postgres
    assert postgres["scheme"] == "postgresql+psycopg2"


def test_helm_values_mirror_the_instance_yaml(instance_yaml: dict, helm: dict) -> None:
    queue = instance_yaml["run_coordinator"]["config"]
    helm_queue = helm["dagsterDaemon"]["runCoordinator"]
    assert helm_queue["enabled"] and helm_queue["type"] == "QueuedRunCoordinator"
    helm_queue = helm_queue["config"]["queuedRunCoordinator"]
    assert helm_queue["tagConcurrencyLimits"] == queue["tag_concurrency_limits"]
    assert helm_queue["maxConcurrentRuns"] == queue["max_concurrent_runs"]
    assert {"key": "crust/pipeline", "value": "contact_enrichment", "limit": 4} in (
        queue["tag_concurrency_limits"]
    )

    monitoring, helm_monitoring = (
        instance_yaml["run_monitoring"],
        helm["dagsterDaemon"]["runMonitoring"],
    )
    assert monitoring["enabled"] and helm_monitoring["enabled"]
    # The chart renders only these runMonitoring keys into the instance (a typo is dropped).
    assert set(helm_monitoring) <= CHART_RUN_MONITORING_KEYS, set(helm_monitoring)
    for helm_key, key in (
        ("startTimeoutSeconds", "start_timeout_seconds"),
        ("cancelTimeoutSeconds", "cancel_timeout_seconds"),
        ("maxResumeRunAttempts", "max_resume_run_attempts"),
        ("pollIntervalSeconds", "poll_interval_seconds"),
    ):
        assert helm_monitoring[helm_key] == monitoring[key], helm_key
    # max_runtime_seconds has no runMonitoring key: the run Job's activeDeadlineSeconds says it.
    run_k8s = helm["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    assert run_k8s["jobSpecConfig"]["activeDeadlineSeconds"] == monitoring["max_runtime_seconds"]

    scheme = instance_yaml["storage"]["postgres"]["postgres_db"]["scheme"]
    assert helm["postgresql"]["postgresqlScheme"] == scheme
    assert helm["postgresql"]["enabled"] is False  # an existing database, not the chart's
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"


def test_helm_values_take_the_api_key_from_a_secret_only(helm: dict) -> None:
    deployment = _user_deployment(helm)
    env = {item["name"]: item for item in deployment["env"]}
    assert "CRUSTDATA_API_KEY" not in env, "the API key must come from a Secret, not a value"
    assert [s["name"] for s in deployment["envSecrets"]] == ["crustdata-api"]
    # Runs get the deployment's env and Secret: the load run downloads with the same key.
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    # Nothing anywhere in the values looks like an inline key or password.
    text = (DEPLOY / "helm" / "values.yaml").read_text()
    assert not re.search(r"(?i)(api_?key|password)\s*:\s*['\"]?[^'\"\s#]{6,}", text)
    assert helm["generatePostgresqlPasswordSecret"] is False
    assert helm["global"]["postgresqlSecretName"]


def test_helm_values_set_the_documented_variables(helm: dict) -> None:
    env = {item["name"]: item["value"] for item in _user_deployment(helm)["env"]}
    for name in ("CRUSTDATA_BASE_URL", "CRUST_DATA_DIR", "CRUST_POLL_INTERVAL_SECONDS"):
        assert name in env, f"{name} (design.md) is not set in the Helm values"
    assert env["CRUSTDATA_BASE_URL"] == "https://api.crustdata.com"
    assert int(env["CRUST_POLL_INTERVAL_SECONDS"]) >= 5


def test_image_and_chart_serve_the_module_pyproject_names(helm: dict) -> None:
    # [tool.dagster] module_name, read with a regex.
    pyproject = (REPO_ROOT / "pyproject.toml").read_text()
    found = re.search(r'(?ms)^\[tool\.dagster\].*?^module_name\s*=\s*"([^"]+)"', pyproject)
    assert found is not None
    module = found.group(1)
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd is not None
    assert yaml.safe_load(cmd.group(1))[-2:] == ["-m", module]
    deployment = _user_deployment(helm)
    assert deployment["codeServerArgs"][-2:] == ["--module-name", module]
    assert str(deployment["port"]) in dockerfile  # EXPOSE / health check on the same port
    # The image has the libraries a run pod needs to load the instance the chart writes.
    for library in ("dagster-postgres", "dagster-k8s"):
        assert f'"{library}==' in dockerfile


def test_pods_run_as_the_image_user(helm: dict) -> None:
    # The Dockerfile's numeric USER, the code server's pod and every run pod agree, so both write
    # the shared data volume as the same non-root user (includeConfigInLaunchedRuns does not
    # carry podSecurityContext over to run pods: the run launcher sets it).
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
    assert user is not None, "the image must name a numeric non-root user"
    uid, gid = int(user.group(1)), int(user.group(2))
    assert uid != 0
    run_pod = helm["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]
    for context in (_user_deployment(helm)["podSecurityContext"], run_pod["securityContext"]):
        assert context["runAsNonRoot"] is True
        assert (context["runAsUser"], context["runAsGroup"], context["fsGroup"]) == (uid, gid, gid)


def test_image_build_context_holds_only_the_package() -> None:
    ignore = [
        line.strip()
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ignore[0] == "*", "exclude everything first (data/ holds personal data)"
    assert {line for line in ignore if line.startswith("!")} == {
        "!pyproject.toml",
        "!README.md",
        "!crust_assets/",
    }
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert not re.search(r"(?im)^\s*(ENV|ARG)\s+\S*(KEY|PASSWORD|SECRET|TOKEN)", dockerfile)


def test_the_module_the_image_serves_has_one_definitions_object() -> None:
    import importlib

    import dagster as dg

    module = importlib.import_module("crust_assets.definitions")
    found = [v for v in vars(module).values() if isinstance(v, dg.Definitions)]
    assert len(found) == 1
