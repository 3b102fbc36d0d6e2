"""No secret anywhere: a full `dagster dev` run with an unmistakable key, then a byte search.

The key is given to `dagster dev` exactly as a user gives it (env CRUSTDATA_API_KEY, with
CRUSTDATA_BASE_URL pointing at the emulator) and the emulator accepts only that key. The run is
made to go through the paths that format errors and URLs: 5xx retries, a truncated download (a
DownloadError, a step retry), pre-signed URLs that expire between parts (refresh). Then every
file of DAGSTER_HOME (event log, run storage, compute logs, daemon logs), of the data dir and of
the emulator's state dir and log is searched, byte for byte, for the key and for every
X-Amz-Signature the emulator can have issued, and so is every error text Dagster recorded.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from crust_assets.crustdata import CrustdataClient
from crust_assets.defs.job_events import find_plan
from crust_assets.defs.resources import CrustdataResource
from crust_assets.demo import launch_partition, start_dagster_dev
from crust_assets.emulator.process import EmulatorProcess
from crust_assets_tests.fault_matrix import (
    SECRET_KEY,
    all_run_error_texts,
    issued_signatures,
    open_instance,
    scan_bytes,
    scan_paths,
    secret_needles,
)
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-24"
EXPIRY_SECONDS = 2


def wait_for_enriched_contacts(home: Path, plan_run_id: str, timeout: float) -> None:
    """Until the plan's enriched_contacts run has finished (the API-facing part of the run)."""
    instance = open_instance(home)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            plan = find_plan(instance, DATE, plan_run_id)
            if plan is not None:
                runs = instance.get_runs(
                    filters=dg.RunsFilter(
                        tags={"crust/plan_id": plan.plan_id},
                        statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE],
                    )
                )
                if runs:
                    assert runs[0].status == dg.DagsterRunStatus.SUCCESS, "the load run failed"
                    return
            time.sleep(1.0)
    finally:
        instance.dispose()
    raise TimeoutError(f"enriched_contacts[{DATE}] not loaded after {timeout:.0f} s")


@pytest.mark.slow
def test_a_full_dagster_dev_run_leaves_no_key_and_no_signature_anywhere(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    (data_dir / "input").mkdir(parents=True)
    urls = make_urls("secret", 420)
    (data_dir / "input" / f"{DATE}.csv").write_text("\n".join(["profile_url", *urls]) + "\n")
    home = tmp_path / "dagster_home"
    emulator = EmulatorProcess(
        tmp_path / "emulator",
        api_key=SECRET_KEY,
        pending_seconds=0.5,
        processing_seconds=1.0,
        part_size=5,
        url_expiry_seconds=EXPIRY_SECONDS,
        faults={"error_rate": 0.15, "seed": 3, "truncate_next_downloads": 1},
    )
    with emulator:
        env = {
            "CRUSTDATA_API_KEY": SECRET_KEY,
            "CRUSTDATA_BASE_URL": emulator.base_url,
            "CRUST_DATA_DIR": str(data_dir),
            "CRUST_POLL_INTERVAL_SECONDS": "2",
            "CRUST_RETRY_COOLDOWN_SECONDS": "2",
            "DAGSTER_DISABLE_TELEMETRY": "1",
        }
        dev = start_dagster_dev(home, env)
        try:
            dev.wait_ready()
            run_id = launch_partition(dev.url, "plan_contact_enrichment", DATE)
            wait_for_enriched_contacts(home, run_id, timeout=300)
        finally:
            dev.stop()
        submissions = emulator.admin.submissions()
        log = emulator.log_text()

    # The run went through the paths that format errors and URLs.
    assert len(submissions) == 2 and {s["status"] for s in submissions} == {"completed"}
    assert " 50" in log  # 5xx served
    instance = open_instance(home)
    try:
        texts = all_run_error_texts(instance)
    finally:
        instance.dispose()
    assert any("truncated" in t for t in texts), "the truncated download was not met"
    assert list(home.glob("storage/*/compute_logs/*")), "no compute logs to search"

    signatures = issued_signatures(emulator.state_dir, submissions, {EXPIRY_SECONDS}, time.time())
    assert signatures
    needles = secret_needles(SECRET_KEY)
    findings = scan_paths([home, data_dir, emulator.state_dir], needles, signatures)
    for text in texts:
        findings += [f"error text: {hit}" for hit in scan_bytes(text.encode(), needles, signatures)]
    assert findings == []


def test_repr_of_resource_and_client_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    literal = CrustdataResource(api_key=SECRET_KEY, base_url="http://127.0.0.1:9")
    assert SECRET_KEY not in repr(literal) and SECRET_KEY not in str(literal)
    with literal.client() as client:
        assert SECRET_KEY not in repr(client)
    # Inside a run the EnvVar is resolved: the resource the asset receives holds the value.
    monkeypatch.setenv("CRUSTDATA_API_KEY", SECRET_KEY)
    seen: list[str] = []

    @dg.asset
    def probe(crustdata: CrustdataResource) -> None:
        assert crustdata.api_key == SECRET_KEY
        seen.extend([repr(crustdata), str(crustdata), repr(crustdata.client())])

    resource = CrustdataResource(api_key=dg.EnvVar("CRUSTDATA_API_KEY"))
    assert dg.materialize([probe], resources={"crustdata": resource}).success
    assert seen and not [s for s in seen if SECRET_KEY in s]


def test_failures_with_a_refused_key_never_echo_it(tmp_path: Path) -> None:
    """The API refuses the key (401) and credits run out (402): no text carries the key."""
    with EmulatorProcess(
        tmp_path / "emulator", api_key="the-only-accepted-key", pending_seconds=0
    ) as emulator:
        pipeline = Pipeline(tmp_path / "data", emulator.base_url, api_key=SECRET_KEY)
        pipeline.write_list(DATE, make_urls("refused", 5))
        pipeline.plan(DATE)
        result = pipeline.tick()
        assert result.skip_reason is not None and pipeline.cursor is not None
        skipped = result.skip_reason.skip_message or ""
        assert "refused the key" in skipped
        assert SECRET_KEY not in skipped and SECRET_KEY not in pipeline.cursor
        observations = str(pipeline.observations(DATE))
        assert "Invalid API key" in observations and SECRET_KEY not in observations
        with CrustdataClient(SECRET_KEY, emulator.base_url) as client:
            try:
                client.submit(make_urls("direct", 1), ["business_email"])
            except Exception as error:  # the 401, as the caller sees it
                texts = [str(error), repr(error), repr(error.args)]
            else:
                pytest.fail("a wrong key was accepted")
        assert not [t for t in texts if SECRET_KEY in t]
