"""One code location, however it is started: its name, `dg`, and sensor state across launchers.

Dagster keeps a sensor's or schedule's on/off state per code-location name. If `make ui`, `dg dev`
and the deployment named the location differently, a sensor turned on under one would be off under
the others; these tests read every launch path's file and, for real, carry a sensor's state from
`dagster dev -w workspace.yaml` to `dg dev` on the same DAGSTER_HOME.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import tomllib
import yaml

from crust_assets import demo
from crust_assets.demo import DagsterDev, demo_environment, find_job, graphql, start_dagster_dev

REPO = Path(__file__).resolve().parent.parent
LOCATION = "crust_assets"
# Off by default, so turning it on is a change that only the instance's stored state remembers.
SENSOR = "contact_url_list_file_sensor"
BIN = Path(sys.executable).parent


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _workspace_location_names(path: Path) -> list[str]:
    """The location_name of every entry of a workspace file (None where it is left out)."""
    entries = yaml.safe_load(path.read_text())["load_from"]
    return [next(iter(entry.values())).get("location_name") for entry in entries]


def test_every_launch_path_names_the_location_crust_assets() -> None:
    pyproject = _pyproject()
    assert pyproject["tool"]["dagster"]["code_location_name"] == LOCATION
    dg_project = pyproject["tool"]["dg"]["project"]
    assert pyproject["tool"]["dg"]["directory_type"] == "project"
    assert dg_project["code_location_name"] == LOCATION
    assert dg_project["code_location_target_module"] == pyproject["tool"]["dagster"]["module_name"]
    # make ui / make demo start `dagster dev -w workspace.yaml` and launch in the location by name;
    # the example adds a location to the same one.
    assert _workspace_location_names(REPO / "workspace.yaml") == [LOCATION]
    assert demo.CODE_LOCATION == LOCATION
    example = REPO / "examples" / "crm_analytics" / "workspace.yaml"
    assert _workspace_location_names(example)[0] == LOCATION
    assert _workspace_location_names(REPO / "deploy" / "workspace.yaml") == [LOCATION]
    # The image's own command and the chart's code server both say who they are.
    cmd = re.search(r"^CMD (\[.*\])$", (REPO / "deploy" / "Dockerfile").read_text(), re.M)
    assert cmd is not None
    args = json.loads(cmd.group(1))
    assert args[args.index("--location-name") + 1] == LOCATION
    helm = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    deployment = helm["dagster-user-deployments"]["deployments"][0]
    server_args = deployment["codeServerArgs"]
    assert server_args[server_args.index("--location-name") + 1] == LOCATION
    # The chart would name the location after the deployment (`crust-assets`, a Kubernetes name
    # cannot hold `_`): its workspace is written out, pointing at the deployment's Service.
    workspace = helm["dagsterWebserver"]["workspace"]
    assert workspace["enabled"] is True
    assert workspace["servers"] == [
        {"host": deployment["name"], "port": deployment["port"], "name": LOCATION}
    ]


def _dg(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VIRTUAL_ENV": str(BIN.parent), "DAGSTER_DISABLE_TELEMETRY": "1"}
    return subprocess.run(
        [str(BIN / "dg"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


def test_dg_lists_the_code_location_from_the_repo_root() -> None:
    result = _dg("list", "defs", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assets = {entry["asset_key"] for entry in listed["assets"]}
    assert {"contact_url_list", "contact_enrichment_batch", "enriched_contacts"} <= assets
    assert {job["name"] for job in listed["jobs"]} >= {
        "plan_contact_enrichment",
        "load_enriched_contacts",
    }
    assert SENSOR in {sensor["name"] for sensor in listed["sensors"]}
    assert "SupersessionWarning" not in result.stderr
    assert "DeprecationWarning" not in result.stderr


SENSOR_STATE = """
query ($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
    __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }
"""
START_SENSOR = """
mutation ($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
    __typename ... on Sensor { sensorState { status } } ... on PythonError { message } } }
"""


def _sensor(url: str, query: str) -> dict:
    location, repository = find_job(url, "plan_contact_enrichment")
    assert location == LOCATION
    selector = {
        "repositoryLocationName": location,
        "repositoryName": repository,
        "sensorName": SENSOR,
    }
    return next(iter(graphql(url, query, {"selector": selector}).values()))


def _start_dg_dev(home: Path, env: dict[str, str]) -> DagsterDev:
    """`dg dev` from the repo root, as the README says to run it, on a free loopback port."""
    port = demo.free_port()
    log_path = home / "dg-dev.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(BIN / "dg"), "dev", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env={**os.environ, **env, "DAGSTER_HOME": str(home), "VIRTUAL_ENV": str(BIN.parent)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return DagsterDev(process=process, port=port, home=home, log_path=log_path)


@pytest.mark.slow
def test_a_sensor_turned_on_under_dagster_dev_is_still_on_under_dg_dev(
    tmp_path: Path, emulator_session
) -> None:
    home = tmp_path / "dagster_home"
    data_dir = tmp_path / "data"
    (data_dir / "input").mkdir(parents=True)
    env = demo_environment(emulator_session.base_url, data_dir)
    first = start_dagster_dev(home, env)
    try:
        first.wait_ready()
        assert _sensor(first.url, SENSOR_STATE)["sensorState"]["status"] == "STOPPED"
        started = _sensor(first.url, START_SENSOR)
        assert started["__typename"] == "Sensor", started
        assert started["sensorState"]["status"] == "RUNNING"
    finally:
        first.stop()
    second = _start_dg_dev(home, env)
    try:
        second.wait_ready()
        assert _sensor(second.url, SENSOR_STATE)["sensorState"]["status"] == "RUNNING"
    finally:
        second.stop()
    with pytest.raises(httpx.HTTPError):  # both are gone: nothing holds a port
        httpx.get(second.url, timeout=2.0)
