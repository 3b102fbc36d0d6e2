"""No secret anywhere: a full `dagster dev` run with an unmistakable key, then a byte search.

The key is given to `dagster dev` exactly as a user gives it (env CRUSTDATA_API_KEY, with
CRUSTDATA_BASE_URL pointing at the emulator) and the emulator accepts only that key. The run is
made to go through the paths that format errors and URLs: 5xx retries, a truncated download (a
DownloadError, a step retry), pre-signed URLs that expire between parts (refresh). Then every
file of DAGSTER_HOME (event log, run storage, compute logs, daemon logs), of the data dir and of
the emulator's state dir and log is searched, byte for byte, for the key and for every
X-Amz-Signature the emulator can have issued, and so is every error text Dagster recorded.
The webhook token (the secret path of CRUST_WEBHOOK_URL) is searched for too, everywhere but
the emulator's database (an API has to keep the URL it calls back).

A second run drives the real sensor against an emulator that echoes the key and the webhook
URL in its 400s and failed jobs (the ``echo_secrets`` fault): nothing of them may be stored.
"""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest

from crust_assets.crustdata import CrustdataClient
from crust_assets.defs.job_events import find_plan
from crust_assets.defs.resources import CrustdataResource, build_resources
from crust_assets.demo import launch_partition, start_dagster_dev
from crust_assets.emulator.process import EmulatorProcess
from crust_assets_tests.fault_matrix import (
    SECRET_KEY,
    all_run_error_texts,
    capture_logs,
    issued_signatures,
    open_instance,
    scan_bytes,
    scan_paths,
    secret_needles,
)
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-24"
EXPIRY_SECONDS = 2
WEBHOOK_TOKEN = "whk-UNMISTAKABLE-TOKEN-4d2e9f7a1b"


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
            # Callbacks on, to a port nobody listens on: the token travels with every submit.
            "CRUST_WEBHOOK_URL": f"http://127.0.0.1:9/hooks/crustdata/{WEBHOOK_TOKEN}",
            "CRUST_DATA_DIR": str(data_dir),
            "CRUST_POLL_INTERVAL_SECONDS": "2",
            "CRUST_RETRY_COOLDOWN_SECONDS": "2",
            # One download per part: the truncated part must fail the step (an error text).
            "CRUST_DOWNLOAD_PART_ATTEMPTS": "1",
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
    # The token too: everywhere but the emulator's database, which (like the real API) must
    # keep the webhook URL to call it back.
    assert all(WEBHOOK_TOKEN in s["webhook_url"] for s in submissions)
    with_token = secret_needles(SECRET_KEY, WEBHOOK_TOKEN)
    findings += scan_paths([home, data_dir], with_token, signatures)
    findings += [f"emulator log: {hit}" for hit in scan_bytes(log.encode(), with_token, set())]
    for text in texts:
        findings += [f"error text: {hit}" for hit in scan_bytes(text.encode(), with_token, set())]
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


def test_every_client_of_the_resource_masks_the_configured_webhook_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load run's client (built with no arguments) knows the token, not only the sensor's."""
    hook = f"http://127.0.0.1:9/hooks/crustdata/{WEBHOOK_TOKEN}"
    faults = {"echo_secrets": True, "fail_next_jobs": 1}
    with EmulatorProcess(
        tmp_path / "emulator", api_key=SECRET_KEY, pending_seconds=0, faults=faults
    ) as emulator:
        with CrustdataClient(SECRET_KEY, emulator.base_url) as submitter:
            urls = make_urls("hook-echo", 1)
            batch = submitter.submit(urls, ["business_email"], webhook_url=hook)
            submitter.wait_until_terminal(batch.batch_id, poll_interval=0.1, timeout=10)
        with CrustdataClient(SECRET_KEY, emulator.base_url) as unaware:  # the echo is real
            assert WEBHOOK_TOKEN in (unaware.status(batch.batch_id).error_message or "")
        monkeypatch.setenv("CRUSTDATA_API_KEY", SECRET_KEY)
        monkeypatch.setenv("CRUSTDATA_BASE_URL", emulator.base_url)
        monkeypatch.setenv("CRUST_WEBHOOK_URL", hook)
        seen: list[str] = []

        @dg.asset
        def load_probe(crustdata: CrustdataResource) -> None:
            with crustdata.client() as client:  # as enriched_contacts builds its client
                seen.append(client.status(batch.batch_id).error_message or "")

        resource = build_resources()["crustdata"]
        assert dg.materialize([load_probe], resources={"crustdata": resource}).success
    assert seen and "callback http://127.0.0.1:9/***" in seen[0]
    assert WEBHOOK_TOKEN not in seen[0] and SECRET_KEY not in seen[0]


def test_failures_with_a_refused_key_never_echo_it(tmp_path: Path) -> None:
    """The API refuses the key (401) and credits run out (402): no text carries the key."""
    with EmulatorProcess(
        tmp_path / "emulator", api_key="the-only-accepted-key", pending_seconds=0
    ) as emulator:
        pipeline = Pipeline(tmp_path / "data", emulator.base_url, api_key=SECRET_KEY)
        pipeline.write_list(DATE, make_urls("refused", 5))
        pipeline.plan(DATE)
        pipeline.tick()
        [failure] = pipeline.failed_ticks  # a refused key fails the tick, saying so
        assert "refused the API key" in failure and SECRET_KEY not in failure
        assert pipeline.cursor is None  # a failed tick keeps no cursor: the events hold it
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


def test_echoed_key_and_webhook_token_reach_no_event_log_or_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An API that echoes the key and the webhook URL, driven by the real sensor.

    Job 1 is refused with a 400 naming the webhook URL and carrying the key (the "given up"
    event), job 2 fails with an error_message naming both (the failure events), job 3 is
    delivered and loaded. Nothing of the key or the token may be stored anywhere.
    """
    monkeypatch.setenv("CRUST_POLL_INTERVAL_SECONDS", "1")  # callbacks are on: poll anyway
    hook = f"http://127.0.0.1:9/hooks/crustdata/{WEBHOOK_TOKEN}"  # nobody listens on port 9
    home = tmp_path / "dagster_home"
    home.mkdir()
    emulator = EmulatorProcess(
        tmp_path / "emulator",
        api_key=SECRET_KEY,
        pending_seconds=0.2,
        processing_seconds=0.5,
        faults={"echo_secrets": True, "reject_next_submits": 1, "fail_next_jobs": 1},
    )
    instance = dg.DagsterInstance.local_temp(tempdir=str(home))
    with emulator, capture_logs() as logs:
        pipeline = Pipeline(
            tmp_path / "data",
            emulator.base_url,
            api_key=SECRET_KEY,
            settings={"webhook_url": hook, "max_job_attempts": 1},
            instance=instance,
        )
        pipeline.write_list(DATE, make_urls("echo", 700))  # three jobs: 300, 300, 100
        pipeline.plan(DATE)
        ticks: list[dg.SensorResult] = []
        runs = pipeline.drive_partitions({DATE}, on_tick=ticks.append, timeout=120)
        submissions = emulator.admin.submissions()
        emulator_log = emulator.log_text()
    checks = {e.check_name: e for e in runs[DATE].get_asset_check_evaluations()}
    try:
        texts = [str(pipeline.observations(DATE)), *all_run_error_texts(instance)]
        texts += [str(t.skip_reason) + str(t.cursor) for t in ticks] + logs.lines
        texts += [f"{c.description} {c.metadata}" for c in checks.values()]
    finally:
        instance.dispose()

    # The API really echoed both secrets, and the pipeline went through those paths: two jobs
    # were given up (the blocking check says so and fails the load), the third was delivered.
    one_row = checks["one_row_per_submitted_url"]
    assert not one_row.passed and "2 jobs were not delivered" in (one_row.description or "")
    assert len(pipeline.table(DATE)) == 100
    assert [s["status"] for s in submissions] == ["failed", "completed"]
    observed = texts[0]
    assert "the API rejected the job" in observed
    assert "(webhook_url: http://127.0.0.1:9/***)" in observed
    assert "request key ***, callback http://127.0.0.1:9/***" in observed
    assert "webhook for batch" in emulator_log  # failed deliveries to the hook were logged

    needles = secret_needles(SECRET_KEY, WEBHOOK_TOKEN)
    findings = scan_paths([home, tmp_path / "data"], needles, set())
    findings += [
        f"emulator log: {hit}" for hit in scan_bytes(emulator_log.encode(), needles, set())
    ]
    for text in texts:
        findings += [f"text: {hit}" for hit in scan_bytes(text.encode(), needles, set())]
    assert findings == []
