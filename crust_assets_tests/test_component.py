"""The pipeline as a Component in a user's own project: two copies, each under its key prefix.

The end-to-end test writes a fresh dg project (create-dagster is not installed here), scaffolds
two copies with `dg scaffold defs`, passes `dg check defs`, then loads the project as Dagster
does and runs one partition of each copy against its own emulator (each emulator accepts only
its copy's key): real plan runs, real sensor evaluations, real load runs, a real instance.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest

from crust_assets.components.api_keys import (
    fingerprints,
    key_reference,
    key_value,
    shared_key_error,
)
from crust_assets.components.enrichment import defs_yaml, shared_data_dir_error
from crust_assets.emulator import EmulatorProcess
from crust_assets.names import DEFAULT_NAMES, Names
from crust_assets_tests.pipeline_harness import make_urls

DG = Path(sys.executable).parent / "dg"
COMPONENT = "crust_assets.components.CrustdataEnrichmentComponent"
DATE = "2026-11-24"


# ---- names and keys, pure ----------------------------------------------------------------------
def test_the_empty_prefix_gives_the_names_the_code_location_always_had() -> None:
    assert DEFAULT_NAMES.contacts_key == dg.AssetKey("enriched_contacts")
    assert DEFAULT_NAMES.load_job == "load_enriched_contacts"
    assert DEFAULT_NAMES.planner_pool == "crustdata_planner"
    assert DEFAULT_NAMES.crustdata == "crustdata"
    sales = Names("sales")
    assert sales.contacts_key == dg.AssetKey(["sales", "enriched_contacts"])
    assert sales.submitter_sensor == "sales_contact_enrichment_sensor"
    assert sales.schedule == "sales_daily_contact_enrichment_schedule"
    assert (sales.planner_pool, sales.downloads_pool) == (
        "sales_crustdata_planner",
        "sales_crustdata_downloads",
    )
    assert sales.tables_io_manager == "sales_contact_tables_io_manager"
    with pytest.raises(ValueError, match="key prefix 'Sales/x'"):
        Names("Sales/x")


def test_two_copies_on_one_key_are_refused_naming_both_and_not_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEY_A", "sk-shared-secret")
    monkeypatch.setenv("KEY_B", "sk-shared-secret")
    monkeypatch.setenv("KEY_C", "sk-other")
    copies = [
        ("sales", "{{ env.KEY_A }}"),
        ("support", "{{env.KEY_B}}"),
        ("ops", "{{ env.KEY_C }}"),
    ]
    keys = fingerprints(copies)
    error = shared_key_error("support", keys)
    assert error is not None and "'sales', 'support'" in error and "ops" not in error
    assert "sk-shared-secret" not in error and "sk-shared-secret" not in str(keys)
    assert shared_key_error("ops", keys) is None
    reference = key_reference("{{ env.KEY_A }}")
    assert isinstance(reference, dg.EnvVar) and reference.env_var_name == "KEY_A"
    assert key_value(reference) == "sk-shared-secret"
    assert key_reference(None) is None and key_value(None) == ""


# ---- a user's project ---------------------------------------------------------------------------
def write_project(root: Path, package: str) -> Path:
    """A minimal dg project: pyproject with [tool.dg], a package, its defs folder."""
    source = root / "src" / package
    (source / "defs").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{package}"\nversion = "0.1.0"\n\n'
        '[tool.dg]\ndirectory_type = "project"\n\n'
        f'[tool.dg.project]\nroot_module = "{package}"\n\n'
        "[tool.dg.cli.telemetry]\nenabled = false\n"
    )
    (source / "__init__.py").write_text("")
    (source / "defs" / "__init__.py").write_text("")
    (source / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n"
        "defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    return source


def dg_command(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DG), *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root / "src"), **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def set_attribute(defs_yaml: Path, name: str, value: str) -> None:
    """Replace one attribute line of a scaffolded defs.yaml (its comments stay)."""
    text, count = re.subn(
        rf"^  {name}: .*$", f"  {name}: {value}", defs_yaml.read_text(), flags=re.M
    )
    assert count == 1, name
    defs_yaml.write_text(text)


def add_copy(
    root: Path,
    source: Path,
    prefix: str,
    key_env: str,
    emulator: EmulatorProcess | None,
    *,
    scaffold: bool = True,
) -> Path:
    """`dg scaffold defs` one copy (or write what it writes, without the subprocess), then point
    it at its data dir, key variable and emulator."""
    defs_file = source / "defs" / prefix / "defs.yaml"
    if scaffold:
        done = dg_command(root, "scaffold", "defs", COMPONENT, prefix, env={})
        assert done.returncode == 0, done.stderr
    else:
        defs_file.parent.mkdir(parents=True)
        defs_file.write_text(defs_yaml(COMPONENT, prefix, group="g"))
    text = defs_file.read_text()
    for field in ("key_prefix", "group", "partitions_start_date", "data_dir", "fields"):
        assert re.search(rf"^  # .*\n  {field}: ", text, flags=re.M), f"{field} undocumented"
    assert '  api_key: "{{ env.CRUSTDATA_API_KEY }}"' in text
    assert "  schedule_on: false" in text and "  file_sensor_on: false" in text
    set_attribute(defs_file, "api_key", f'"{{{{ env.{key_env} }}}}"')
    set_attribute(defs_file, "data_dir", str(root / "data" / prefix))
    if emulator is not None:
        defs_file.write_text(defs_file.read_text() + f"  base_url: {emulator.base_url}\n")
    return defs_file


def load_user_defs(monkeypatch: pytest.MonkeyPatch, root: Path, package: str) -> dg.Definitions:
    """The project's Definitions as `dg dev` loads them (its definitions module, imported)."""
    monkeypatch.syspath_prepend(str(root / "src"))
    module = __import__(f"{package}.definitions", fromlist=["defs"])
    return module.defs


def test_a_copy_on_the_same_key_as_another_does_not_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_project(tmp_path, "same_key_project")
    for prefix in ("sales", "support"):
        add_copy(tmp_path, source, prefix, "SHARED_CRUST_KEY", None, scaffold=False)
    monkeypatch.setenv("SHARED_CRUST_KEY", "sk-one-account-key")
    with pytest.raises(Exception) as refused:
        load_user_defs(monkeypatch, tmp_path, "same_key_project")
    chain, error = [], refused.value
    while error is not None:  # Dagster wraps the component's error in its own
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    text = "\n".join(chain)
    assert "'sales', 'support' use the same Crustdata API key" in text
    assert "sk-one-account-key" not in text


def test_a_key_written_in_defs_yaml_is_refused_without_echoing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for literal in ("sk-live-literal-key", "{{ env.A }} sk-live-literal-key", "${CRUST_KEY}"):
        with pytest.raises(ValueError) as refused:
            key_reference(literal, "sales")
        assert "copy 'sales': api_key must be written \"{{ env.NAME }}\"" in str(refused.value)
        assert literal not in str(refused.value)
    source = write_project(tmp_path, "literal_key_project")
    defs_yaml = add_copy(tmp_path, source, "sales", "UNUSED_KEY", None, scaffold=False)
    set_attribute(defs_yaml, "api_key", "sk-live-literal-key")
    with pytest.raises(Exception) as refused:
        load_user_defs(monkeypatch, tmp_path, "literal_key_project")
    chain, error = [], refused.value
    while error is not None:  # Dagster wraps the component's error in its own
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    text = "\n".join(chain)
    assert "copy 'sales': api_key must be written" in text
    assert "sk-live-literal-key" not in text


def test_two_copies_on_one_data_dir_are_refused() -> None:
    dirs = {"sales": "/srv/crust/", "support": "/srv/crust", "ops": "/srv/ops"}
    error = shared_data_dir_error("sales", dirs)
    assert error == (
        "crust_assets copies 'sales', 'support' use the same data_dir '/srv/crust': give each "
        "copy its own."
    )
    assert shared_data_dir_error("ops", dirs) is None


@pytest.mark.slow
def test_dg_lists_the_component_from_the_entry_point(tmp_path: Path) -> None:
    write_project(tmp_path, "listing_project")  # a user's project: no registry_modules of ours
    listed = dg_command(tmp_path, "list", "components", "--json", env={})
    assert listed.returncode == 0, listed.stderr
    assert COMPONENT in {item["key"] for item in json.loads(listed.stdout)["items"]}


# ---- end to end ---------------------------------------------------------------------------------
class Copy:
    """One copy of the pipeline in the loaded project, driven as the daemon would drive it."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance, prefix: str) -> None:
        self.defs, self.instance, self.names = defs, instance, Names(prefix)
        self.sensor = defs.resolve_sensor_def(self.names.submitter_sensor)
        self.cursor: str | None = None
        self.loads: list[dg.ExecuteInProcessResult] = []

    def plan(self) -> dg.ExecuteInProcessResult:
        job = self.defs.resolve_job_def(self.names.plan_job)
        return job.execute_in_process(instance=self.instance, partition_key=DATE)

    def tick(self) -> None:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=self.defs.resources,
            definitions=self.defs,
        )
        result = self.sensor(context)
        self.cursor = result.cursor
        for request in result.run_requests or []:
            job = self.defs.resolve_job_def(self.names.load_job)
            self.loads.append(
                job.execute_in_process(
                    instance=self.instance,
                    partition_key=request.partition_key,
                    tags=request.tags,
                )
            )


@pytest.mark.slow
def test_two_copies_in_a_users_project_run_side_by_side(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    keys = {"sales": "sales-account-key", "support": "support-account-key"}
    emulators = {prefix: emulator_factory(api_key=key) for prefix, key in keys.items()}
    env = {f"{p.upper()}_CRUST_KEY": key for p, key in keys.items()}
    source = write_project(tmp_path, "user_project")
    for prefix in keys:  # the first through `dg scaffold defs`, the second as it writes it
        key_env, scaffold = f"{prefix.upper()}_CRUST_KEY", prefix == "sales"
        add_copy(tmp_path, source, prefix, key_env, emulators[prefix], scaffold=scaffold)

    checked = dg_command(tmp_path, "check", "defs", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    defs = load_user_defs(monkeypatch, tmp_path, "user_project")
    instance = dg.DagsterInstance.ephemeral()
    urls = {prefix: make_urls(f"component-{prefix}", 6) for prefix in keys}
    copies = {prefix: Copy(defs, instance, prefix) for prefix in keys}
    for prefix, copy in copies.items():
        inputs = tmp_path / "data" / prefix / "input"
        inputs.mkdir(parents=True)
        (inputs / f"{DATE}.csv").write_text("profile_url\n" + "\n".join(urls[prefix]) + "\n")
        assert copy.plan().success

    deadline = time.monotonic() + 90
    while not all(copy.loads for copy in copies.values()):
        assert time.monotonic() < deadline, {p: c.cursor for p, c in copies.items()}
        for copy in copies.values():
            copy.tick()
        time.sleep(0.3)

    for prefix, copy in copies.items():
        (load,) = copy.loads
        assert load.success and load.dagster_run.job_name == f"{prefix}_load_enriched_contacts"
        key = dg.AssetKey([prefix, "enriched_contacts"])
        written = instance.get_latest_materialization_event(key)
        assert written is not None and written.asset_materialization.partition == DATE
        assert written.asset_materialization.metadata["dagster/row_count"].value == 6
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, "one_row_per_submitted_url"), limit=1
        )
        assert checks and checks[0].status.value == "SUCCEEDED"
        # Each account got its own copy's URLs, on its own key, and nothing else.
        sent = [url for job in emulators[prefix].admin.submissions() for url in job["urls"]]
        assert sorted(sent) == sorted(urls[prefix])
    names = {s.name for s in defs.sensors} | {j.name for j in defs.jobs}
    assert names and all(name.startswith(("sales_", "support_")) for name in names)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    asset_keys = [key for a in assets for key in a.keys]
    check_keys = [key.asset_key for a in assets for key in a.check_keys]
    assert len(asset_keys) == 14 and len(check_keys) == 8
    schedules = {s.name for s in defs.schedules or []}
    assert schedules == {f"{p}_daily_contact_enrichment_schedule" for p in keys}
    pools = {a.op.pool for a in assets} - {None}
    assert pools == {f"{p}_crustdata_{pool}" for p in keys for pool in ("planner", "downloads")}
    assert all(key.path[0] in keys for key in [*asset_keys, *check_keys])
    assert {r for r in defs.resources or {}} == {
        f"{p}_{r}" for p in keys for r in ("crustdata", "enrichment", "data_root")
    } | {f"{p}_contact_tables_io_manager" for p in keys}
    assert instance.get_latest_materialization_event(dg.AssetKey("enriched_contacts")) is None
