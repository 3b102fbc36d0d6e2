"""An erasure that no race can undo, and `forget` refusing the wrong root.

Every `forget` here is the real CLI in its own process (`python -m crust_assets.cli forget`).
The writers are the real assets, run by a real Dagster instance against the emulator over HTTP.
A race is made to happen, not hoped for: `erasure.publish_hooks` is called by each writer after
it has read what it will publish and before it publishes, and the hook runs the `forget` process
to completion right there. Then every file that may hold people is read back from disk.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crust_assets import erasure
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.erasure import ErasureSettings, erasure_log, forget, scrub_file
from crust_assets.lifecycle.events import EventName, parse_event
from crust_assets.lifecycle.ledger import Job, JobState, Ledger, PlanState
from crust_assets.storage import DataLayout, LockTimeout, file_lock, write_parquet_atomic
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets_tests.pipeline_harness import Pipeline, make_urls
from crust_assets_tests.test_object_store import bucket, object_store  # noqa: F401 (fixtures)

FIRST, SECOND = "2026-11-21", "2026-11-22"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    with EmulatorProcess(tmp_path / "emulator", pending_seconds=0.1, processing_seconds=0.2) as e:
        yield e


def forget_cli(root: str | Path, *urls: str, extra: tuple[str, ...] = ()) -> subprocess.Popen:
    """A real `crust-assets forget` process (stdout and stderr captured as text)."""
    command = [sys.executable, "-m", "crust_assets.cli", "forget", *urls, "--data-dir", str(root)]
    return subprocess.Popen(
        [*command, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )


def run_forget(root: str | Path, *urls: str, extra: tuple[str, ...] = ()) -> tuple[int, str]:
    process = forget_cli(root, *urls, extra=extra)
    out, err = process.communicate(timeout=120)
    return process.returncode, out + err


def urls_in_every_file(layout: DataLayout) -> dict[str, list[str]]:
    """profile_url of every Parquet file with contact rows under warehouse/ and staging/ (not
    the URL lists: the input's, the plans' and what they borrow name people, hold no contacts)."""
    found = {}
    for top in ("warehouse", "staging"):
        for path in layout.find(layout.root / top, "**/*.parquet"):
            if "phone_numbers" in layout.read_schema(path).names:
                table = layout.read_table(path, columns=["profile_url"])
                found[str(path.relative_to(layout.root))] = table.column(0).to_pylist()
    return found


def holders(layout: DataLayout, person: str) -> list[str]:
    return [path for path, urls in urls_in_every_file(layout).items() if person in urls]


def contact_rows(urls: list[str]) -> pa.Table:
    """Rows of the contract schema, with a phone number each (enough to look like people)."""
    count = len(urls)
    return pa.table(
        {
            "profile_url": urls,
            "business_emails": pa.nulls(count, ENRICHED_CONTACTS_SCHEMA.field(1).type),
            "personal_emails": pa.nulls(count, ENRICHED_CONTACTS_SCHEMA.field(2).type),
            "phone_numbers": [[f"+1555{i:07d}"] for i in range(count)],
            "crustdata_person_id": pa.array(range(count), pa.int64()),
            "batch_id": ["b"] * count,
            "enriched_at": [datetime(2026, 11, 1, tzinfo=timezone.utc)] * count,
            "matched": [True] * count,
            "primary_business_email": pa.nulls(count, pa.string()),
        },
        schema=ENRICHED_CONTACTS_SCHEMA,
    )


def write_partitions(layout: DataLayout, dates: list[str], urls: list[str]) -> None:
    for date in dates:
        table = contact_rows(urls)
        path = layout.warehouse_partition("enriched_contacts", date)
        layout.write_batches(path, table.to_batches(max_chunksize=20_000), table.schema)


# ---- two forgets at once ------------------------------------------------------------------------
def test_concurrent_forgets_for_different_people_both_hold_and_both_are_recorded(
    tmp_path: Path,
) -> None:
    """Three partitions of 60k rows; each round, two forget processes start at the same moment
    for two different people present in every partition."""
    layout = DataLayout(tmp_path / "data")
    rounds = 4
    people = [(f"race-a-{r}", f"race-b-{r}") for r in range(rounds)]
    named = [f"https://www.linkedin.com/in/{slug}" for pair in people for slug in pair]
    urls = make_urls("crowd", 60_000 - len(named)) + named
    dates = [f"2026-11-{day:02d}" for day in (10, 11, 12)]
    write_partitions(layout, dates, urls)
    for first, second in people:
        processes = [forget_cli(layout.root, f"linkedin.com/in/{slug}") for slug in (first, second)]
        results = [(p.wait(timeout=120), p.communicate()) for p in processes]
        for code, (out, err) in results:
            assert code == 0, out + err
            assert "3 rows removed from 3 files" in out and "verified" in out
    for date in dates:
        remaining = pq.read_table(layout.warehouse_partition("enriched_contacts", date))
        assert remaining.num_rows == len(urls) - len(named)  # everybody else is still there
        assert not set(remaining.column("profile_url").to_pylist()) & set(named), date
    log = erasure_log(layout).to_pylist()
    assert sorted(r["profile_url"] for r in log) == sorted(named)  # no record lost
    assert len(list((layout.root / "erasures" / "runs").glob("*.parquet"))) == 2 * rounds


def test_a_forget_waits_for_a_writer_in_the_fence_and_says_who_holds_it(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    write_partitions(layout, [FIRST], make_urls("waiting", 10))
    lock = layout.root / "erasures" / "lock"
    with file_lock(lock, timeout=1, holder="enriched_contacts[2026-11-21]"):
        code, output = run_forget(
            layout.root, "linkedin.com/in/waiting-00003", extra=("--lock-timeout", "0.5")
        )
        held = pytest.raises(LockTimeout, match=r"enriched_contacts\[2026-11-21\], pid")
        with held, file_lock(lock, timeout=0.1, holder="test"):
            pass
    assert code == 2 and "still held after 0.5 s (by enriched_contacts[2026-11-21]" in output
    assert "Nothing was erased or recorded; run forget again" in output
    assert erasure_log(layout).num_rows == 0
    assert holders(layout, "https://www.linkedin.com/in/waiting-00003") != []
    code, output = run_forget(layout.root, "linkedin.com/in/waiting-00003")
    assert code == 0, output


def test_the_lock_of_a_process_killed_in_the_fence_is_free_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "data" / "erasures" / "lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from crust_assets.storage import file_lock\n"
            f"with file_lock(Path({str(lock)!r}), timeout=5, holder='doomed'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(LockTimeout, match="doomed"), file_lock(lock, timeout=0.2, holder="t"):
            pass
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs
        holder.wait(timeout=10)
    started = time.monotonic()
    with file_lock(lock, timeout=5, holder="next"):
        assert time.monotonic() - started < 1


# ---- a forget racing each writer ----------------------------------------------------------------
def forget_when(writer: str, moment: str, root: Path, person: str, seen: list[tuple[int, str]]):
    """A hook that runs a real forget to completion when `writer` reaches `moment`; its exit
    code and output go to `seen`."""

    def hook(name: str, at: str) -> None:
        if name == writer and at == moment:
            seen.append(run_forget(root, person))

    return hook


def loaded_day(pipeline: Pipeline, date: str, urls: list[str]) -> None:
    pipeline.write_list(date, urls)
    pipeline.plan(date)
    [run] = pipeline.drive(until_runs=1)
    assert run.success


def test_contacts_latest_that_read_the_partitions_before_a_forget_does_not_put_the_person_back(
    tmp_path: Path, emulator: EmulatorProcess, hooks: list
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    urls = make_urls("latest-race", 20)
    loaded_day(pipeline, FIRST, urls)
    person, seen = urls[4], []
    hooks.append(forget_when("contacts_latest", "staged", pipeline.layout.root, person, seen))
    run = pipeline.materialize("contacts_latest")
    [(code, output)] = seen
    # The writer's staged file was on disk, holding the person, while forget ran: it says so.
    assert run.success and code == 1 and "contacts_latest/.data.parquet.tmp-" in output
    assert holders(pipeline.layout, person) == []
    latest = pq.read_table(pipeline.layout.warehouse_dataset("contacts_latest") / "data.parquet")
    assert latest.num_rows == 19
    meta = pipeline.latest_materialization("contacts_latest").metadata
    assert meta["rows_dropped_erased"].value == 1 and meta["dagster/row_count"].value == 19


def test_a_forget_started_while_a_writer_is_in_the_fence_waits_then_removes_the_person(
    tmp_path: Path, emulator: EmulatorProcess, hooks: list
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    urls = make_urls("fenced-race", 20)
    loaded_day(pipeline, FIRST, urls)
    person, started = urls[9], []

    def hook(name: str, at: str) -> None:
        if name == "contacts_latest" and at == "fenced":
            started.append(forget_cli(pipeline.layout.root, person))
            time.sleep(2.0)  # plenty for the forget process to start and reach the lock
            assert started[0].poll() is None, "forget ran while the writer held the fence"

    hooks.append(hook)
    assert pipeline.materialize("contacts_latest").success
    out, err = started[0].communicate(timeout=120)
    assert started[0].returncode == 0, out + err
    assert "2 rows removed from 2 files" in out  # the partition and the file just published
    assert holders(pipeline.layout, person) == []


def test_an_enriched_contacts_load_that_read_reused_rows_before_a_forget_does_not_write_them_back(
    tmp_path: Path, emulator: EmulatorProcess, hooks: list
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    shared = make_urls("load-race", 20)
    loaded_day(pipeline, FIRST, shared)
    newcomers = make_urls("load-race-new", 5)
    pipeline.write_list(SECOND, [*shared, *newcomers])  # the shared rows are reused
    pipeline.plan(SECOND)
    person, seen = shared[2], []
    writer = f"enriched_contacts[{SECOND}]"
    hooks.append(forget_when(writer, "staged", pipeline.layout.root, person, seen))
    [run] = pipeline.drive(until_runs=1)
    [(code, output)] = seen
    assert run.success and code == 1 and f"date={SECOND}/.data.parquet.tmp-" in output
    # the first day's partition and the reused rows the load had already read
    assert f"2 rows removed from 2 files ({FIRST})" in output
    assert holders(pipeline.layout, person) == []
    assert {r["profile_url"] for r in pipeline.table(SECOND)} == set(shared + newcomers) - {person}
    assert set(pipeline.check_results(run).values()) == {True}  # the count knows the erasure
    meta = pipeline.latest_materialization("enriched_contacts", SECOND).metadata
    assert meta["rows_dropped_erased"].value == 1 and meta["dagster/row_count"].value == 24


def test_a_plan_that_read_a_person_to_reuse_before_a_forget_neither_stages_nor_buys_them(
    tmp_path: Path, emulator: EmulatorProcess, hooks: list
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    shared = make_urls("reuse-race", 20)
    loaded_day(pipeline, FIRST, shared)
    reused_person, new_person = shared[5], "https://www.linkedin.com/in/reuse-race-new-one"
    pipeline.write_list(SECOND, [*shared, new_person])
    codes: list[int] = []
    writer = f"contact_enrichment_batch[{SECOND}]"

    def hook(name: str, at: str) -> None:
        if name == writer and at == "staged":
            code, output = run_forget(pipeline.layout.root, reused_person, new_person)
            codes.append(code)
            assert "re-enrichment is refused" in output

    hooks.append(hook)
    result = pipeline.plan(SECOND)
    assert codes == [0]
    [materialization] = result.asset_materializations_for_node("contact_enrichment_batch")
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["urls_reused"] == 19 and meta["urls_to_submit"] == 0
    assert meta["urls_refused_erased"] == 1 and meta["job_count"] == 0
    assert holders(pipeline.layout, reused_person) == []
    plan_file = pq.read_table(pipeline.layout.root / str(meta["plan_file"]))
    assert new_person not in plan_file.column("profile_url").to_pylist()  # not to be bought
    assert not [s for s in emulator.admin.submissions() if new_person in s["urls"]]


def test_a_plan_that_borrowed_a_person_before_a_forget_does_not_borrow_them(
    tmp_path: Path, hooks: list
) -> None:
    emulator_dir = tmp_path / "emulator"
    with EmulatorProcess(emulator_dir, pending_seconds=0.5, processing_seconds=1.5) as emulator:
        pipeline = Pipeline(tmp_path / "data", emulator.base_url)
        shared = make_urls("borrow-race", 20)
        pipeline.write_list(FIRST, shared)
        pipeline.write_list(SECOND, [*shared, *make_urls("borrow-race-own", 5)])
        pipeline.plan(FIRST)
        pipeline.tick()  # the lender's job is submitted; nothing is loaded yet
        person, seen = shared[11], []
        writer = f"contact_enrichment_batch[{SECOND}]"
        hooks.append(forget_when(writer, "staged", pipeline.layout.root, person, seen))
        result = pipeline.plan(SECOND)
        [(code, output)] = seen
        assert code == 0 and f"date={FIRST}" in output  # the lender's plan is not loaded: noted
        [materialization] = result.asset_materializations_for_node("contact_enrichment_batch")
        meta = {k: v.value for k, v in materialization.metadata.items()}
        assert meta["urls_borrowed"] == 19 and meta["urls_refused_erased"] == 1
        borrowed = pipeline.layout.root / str(meta["borrowed_file"])
        assert person not in pq.read_table(borrowed).column("profile_url").to_pylist()
        runs = pipeline.drive_partitions({FIRST, SECOND})
        assert all(run.success for run in runs.values())
    assert holders(pipeline.layout, person) == []
    assert len(pipeline.table(SECOND)) == 24 and len(pipeline.table(FIRST)) == 19


# ---- the submitter: a plan made before a forget -------------------------------------------------
def sent_urls(emulator: EmulatorProcess) -> list[str]:
    return [url for submission in emulator.admin.submissions() for url in submission["urls"]]


def job_events(pipeline: Pipeline, date: str, name: str) -> list[dict]:
    return [e for e in pipeline.observations(date) if e.get("event") == name]


def test_queue_counts_a_job_of_erased_people_done_and_keeps_each_jobs_sent_count() -> None:
    state = Ledger()
    plan = PlanState(
        FIRST, "p1", job_count=2, url_count=301, fields=[], plan_path="p", storage_id=1
    )
    state.add_plan(plan)
    event = {"date": FIRST, "plan_id": "p1"}
    state.apply(
        parse_event({**event, "event": EventName.JOB_SUBMITTING, "job_index": 0, "url_count": 299}),
        1.0,
    )
    state.apply(
        parse_event(
            {**event, "event": EventName.JOB_NOT_SUBMITTED_ERASED, "job_index": 1, "url_count": 0}
        ),
        2.0,
    )
    restored = Ledger.from_cursor(state.to_cursor()).plans[plan.key]
    assert restored.next_index == 2 and restored.done == 1 and list(restored.jobs) == ["0"]
    assert restored.sent_size(restored.jobs["0"]) == 299 and restored.job_size(0) == 300
    old = Job(index=0, state=JobState.SUBMITTING)  # a cursor written before the count was kept
    assert restored.sent_size(old) == 300


def test_a_plan_made_before_a_forget_never_sends_the_person_and_the_day_completes(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """Two jobs (300 URLs and 1): one person erased from the first, the second's only person
    erased. The first is sent without its person, the second is not sent at all, and the day
    loads every other row with its checks passing."""
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    urls = make_urls("unsent", 301)
    person, alone = urls[5], urls[300]
    pipeline.write_list(FIRST, urls)
    pipeline.plan(FIRST)
    code, output = run_forget(pipeline.layout.root, person, alone)
    assert code == 0 and f"{person}: 0 rows removed" in output, output
    assert f"note: staging/contact_enrichment_batch/date={FIRST}/" in output
    [run] = pipeline.drive(until_runs=1)

    sent = sent_urls(emulator)
    assert person not in sent and alone not in sent
    assert len(emulator.admin.submissions()) == 1 and sorted(sent) == sorted(urls[:5] + urls[6:300])
    [skipped] = job_events(pipeline, FIRST, "job_not_submitted_erased")
    assert skipped["job_index"] == 1 and skipped["erased_not_submitted"] == 1
    [submitting] = job_events(pipeline, FIRST, "job_submitting")
    assert submitting["url_count"] == 299 and submitting["erased_not_submitted"] == 1
    assert run.success and all(pipeline.check_results(run).values()), run
    assert {row["profile_url"] for row in pipeline.table(FIRST)} == set(urls) - {person, alone}
    loaded = pipeline.latest_materialization("enriched_contacts", FIRST).metadata
    assert loaded["urls_erased_not_delivered"].value == 2
    assert loaded["missing_records"].value == 0
    assert holders(pipeline.layout, person) == holders(pipeline.layout, alone) == []


def test_a_lost_submit_of_a_job_with_an_erased_person_is_found_by_the_count_sent(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """GET /batch is searched for a job of the size actually sent (9), not the plan's (10)."""
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    urls = make_urls("lost-erased", 10)
    pipeline.write_list(FIRST, urls)
    pipeline.plan(FIRST)
    run_forget(pipeline.layout.root, urls[2])
    emulator.admin.set_faults(delay_next_submits=1, submit_delay_seconds=8.0)  # > 5 s timeout
    [run] = pipeline.drive(until_runs=1, timeout=120)

    assert job_events(pipeline, FIRST, "job_submission_unconfirmed"), "the answer was not lost"
    confirmed = [e for e in job_events(pipeline, FIRST, "job_submitted") if e.get("reconciled")]
    assert len(confirmed) == 1
    assert len(emulator.admin.submissions()) == 1 and urls[2] not in sent_urls(emulator)
    assert run.success and len(pipeline.table(FIRST)) == 9


def test_a_lender_plan_made_before_a_forget_sends_nobody_erased_and_its_borrower_completes(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    """The borrower borrowed three URLs from the lender's two jobs; two of those people are
    erased before the lender sends anything: one from the full job, and the only URL of the
    last job (never sent). Neither day expects their rows, and every check passes."""
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    lender = make_urls("lender-erased", 301)
    own = make_urls("borrower-own", 5)
    pipeline.write_list(FIRST, lender)
    pipeline.write_list(SECOND, [lender[3], lender[4], lender[300], *own])
    pipeline.plan(FIRST)
    planned = pipeline.plan(SECOND).asset_materializations_for_node("contact_enrichment_batch")
    assert planned[0].metadata["urls_borrowed"].value == 3
    gone = [lender[4], lender[300]]
    run_forget(pipeline.layout.root, *gone)
    runs = pipeline.drive_partitions({FIRST, SECOND})

    assert not set(gone) & set(sent_urls(emulator))
    assert len(sent_urls(emulator)) == 299 + 5  # the lender's 299, the borrower's own 5
    for date, run in runs.items():
        assert run.success and all(pipeline.check_results(run).values()), date
    assert {r["profile_url"] for r in pipeline.table(SECOND)} == {lender[3], *own}
    assert len(pipeline.table(FIRST)) == 299
    assert all(holders(pipeline.layout, person) == [] for person in gone)


# ---- the wrong root -----------------------------------------------------------------------------
def test_forget_refuses_a_root_without_a_warehouse_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "dta"
    code, output = run_forget(typo, "linkedin.com/in/someone")
    assert code == 2 and "has no warehouse/ directory" in output and "--new-root" in output
    assert not typo.exists()
    inputs_only = tmp_path / "data"
    (inputs_only / "input").mkdir(parents=True)
    code, output = run_forget(inputs_only, "linkedin.com/in/someone")
    assert code == 2 and "Nothing was erased or recorded" in output
    assert sorted(p.name for p in inputs_only.iterdir()) == ["input"]


def test_forget_refuses_symlinked_data_files_and_leaves_link_and_target_alone(
    tmp_path: Path,
) -> None:
    layout = DataLayout(tmp_path / "data")
    person = "https://www.linkedin.com/in/linked-person"
    elsewhere = tmp_path / "elsewhere" / "contacts.parquet"
    rows = contact_rows([person, "https://www.linkedin.com/in/x"])
    write_parquet_atomic(elsewhere, rows.to_batches(), rows.schema)
    before = elsewhere.read_bytes()
    link = Path(layout.warehouse_partition("enriched_contacts", FIRST))
    link.parent.mkdir(parents=True)
    link.symlink_to(elsewhere)
    code, output = run_forget(layout.root, person)
    assert code == 2, output
    assert f"warehouse/enriched_contacts/date={FIRST}/data.parquet -> {elsewhere}" in output
    assert link.is_symlink() and elsewhere.read_bytes() == before
    assert not (layout.root / "erasures").exists()


# ---- pieces -------------------------------------------------------------------------------------
def test_scrub_file_drops_only_the_erased_rows_and_keeps_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    urls = make_urls("scrub", 5)
    write_parquet_atomic(path, contact_rows(urls).to_batches(), ENRICHED_CONTACTS_SCHEMA)
    assert scrub_file(path, set()) == 0 and scrub_file(path, {"https://nobody"}) == 0
    assert scrub_file(path, {urls[1], urls[3]}) == 2
    table = pq.read_table(path)
    assert table.column("profile_url").to_pylist() == [urls[0], urls[2], urls[4]]
    assert table.schema.remove_metadata().equals(ENRICHED_CONTACTS_SCHEMA)


def test_settings_come_from_the_environment_and_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ErasureSettings.from_env() == ErasureSettings(600.0, 15.0, 5)
    monkeypatch.setenv("CRUST_ERASURE_SETTLE_SECONDS", "2.5")
    monkeypatch.setenv("CRUST_ERASURE_VERIFY_ROUNDS", "3")
    monkeypatch.setenv("CRUST_ERASURE_LOCK_TIMEOUT_SECONDS", "30")
    assert ErasureSettings.from_env() == ErasureSettings(30.0, 2.5, 3)
    monkeypatch.setenv("CRUST_ERASURE_VERIFY_ROUNDS", "0")
    with pytest.raises(ValueError, match="CRUST_ERASURE_VERIFY_ROUNDS"):
        ErasureSettings.from_env()
    monkeypatch.setenv("CRUST_ERASURE_VERIFY_ROUNDS", "3")
    monkeypatch.setenv("CRUST_ERASURE_SETTLE_SECONDS", "soon")
    with pytest.raises(ValueError, match="CRUST_ERASURE_SETTLE_SECONDS"):
        ErasureSettings.from_env()


def test_forget_reports_a_file_it_cannot_clean_instead_of_success(
    tmp_path: Path, hooks: list
) -> None:
    """Something outside the fence that keeps writing the person back (here: a copy of the old
    file put back before each verify pass) is named, and the erasure is not called complete."""
    layout = DataLayout(tmp_path / "data")
    person = "https://www.linkedin.com/in/stubborn"
    write_partitions(layout, [FIRST], [person, *make_urls("stubborn-crowd", 5)])
    partition = layout.warehouse_partition("enriched_contacts", FIRST)
    original = Path(partition).read_bytes()
    put_back: list[int] = []

    def hook(name: str, at: str) -> None:
        if name == erasure.FORGET and at == "verifying":
            Path(partition).write_bytes(original)  # a writer that ignores the fence
            put_back.append(1)

    hooks.append(hook)
    report = forget(layout, [person], settings=ErasureSettings(verify_rounds=3))
    assert not report.complete and report.verify_passes == 3 and len(put_back) == 3
    assert report.erasures[0].rows_removed == 1  # one row, put back and removed again twice
    assert report.erasures[0].files == [f"warehouse/enriched_contacts/date={FIRST}/data.parquet"]
    assert report.unverified == {f"warehouse/enriched_contacts/date={FIRST}/data.parquet": [person]}


def test_forget_counts_a_row_found_in_a_new_file_by_a_verify_pass_once(
    tmp_path: Path, hooks: list
) -> None:
    """A verify pass that finds the person in a file not seen before counts that row too."""
    layout = DataLayout(tmp_path / "data")
    person = "https://www.linkedin.com/in/late-copy"
    write_partitions(layout, [FIRST], [person, *make_urls("late-copy-crowd", 5)])
    written: list[int] = []

    def hook(name: str, at: str) -> None:
        if name == erasure.FORGET and at == "verifying" and not written:
            write_partitions(layout, [SECOND], [person, *make_urls("late-copy-other", 3)])
            written.append(1)

    hooks.append(hook)
    report = forget(layout, [person], settings=ErasureSettings(verify_rounds=3))
    assert report.complete and report.verify_passes == 2
    [erased] = report.erasures
    assert erased.rows_removed == 2 and erased.partitions == [FIRST, SECOND]
    assert holders(layout, person) == []


# ---- on an object store (moto over HTTP): no lock, the log as one object per run -----------------
@pytest.fixture
def s3_root(request: pytest.FixtureRequest) -> str:
    """A fresh bucket on the moto server of test_object_store (which says what it needs)."""
    return f"s3://{request.getfixturevalue('bucket')}/crust"


@pytest.mark.objectstore
def test_concurrent_forgets_on_a_bucket_both_hold_and_both_are_recorded(s3_root: str) -> None:
    layout = DataLayout.from_location(s3_root)
    rounds = 2
    people = [(f"s3-race-a-{r}", f"s3-race-b-{r}") for r in range(rounds)]
    named = [f"https://www.linkedin.com/in/{slug}" for pair in people for slug in pair]
    urls = make_urls("s3-crowd", 20_000 - len(named)) + named
    dates = ["2026-11-10", "2026-11-11", "2026-11-12"]
    write_partitions(layout, dates, urls)
    settle = ("--settle-seconds", "1")
    for first, second in people:
        processes = [
            forget_cli(layout.url(layout.root), f"linkedin.com/in/{slug}", extra=settle)
            for slug in (first, second)
        ]
        for process in processes:
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, out + err
            # Without a lock the other run may write a person back once; verify removes them
            # again (then more than 3 rows are removed in all, and the passes say so).
            assert re.search(r": [1-9]\d* rows removed from 3 files", out), out
            assert "verified (" in out
    for date in dates:
        path = layout.warehouse_partition("enriched_contacts", date)
        remaining = layout.read_table(path, columns=["profile_url"]).column(0).to_pylist()
        assert len(remaining) == len(urls) - len(named) and not set(remaining) & set(named)
    assert sorted(erasure_log(layout).column("profile_url").to_pylist()) == sorted(named)
    assert len(layout.find(erasure.erasure_runs_dir(layout), "*.parquet")) == 2 * rounds


@pytest.mark.objectstore
def test_on_a_bucket_a_writer_that_read_the_log_just_before_a_forget_cleans_its_own_upload(
    s3_root: str, emulator: EmulatorProcess, hooks: list
) -> None:
    """No lock: contacts_latest re-read the log (without the person) and is about to upload when
    forget records the erasure. The writer reads the log again after its upload and uploads a
    scrubbed file; forget's verify pass, a settle period later, finds nothing."""
    pipeline = Pipeline(s3_root, emulator.base_url)
    layout = pipeline.layout
    urls = make_urls("s3-fenced", 20)
    loaded_day(pipeline, FIRST, urls)
    person, started = urls[6], []

    def hook(name: str, at: str) -> None:
        if name == "contacts_latest" and at == "fenced":
            started.append(
                forget_cli(layout.url(layout.root), person, extra=("--settle-seconds", "4"))
            )
            deadline = time.monotonic() + 60
            while person not in erasure.erased_urls(layout):  # recorded: now upload
                assert time.monotonic() < deadline and started[0].poll() is None
                time.sleep(0.05)

    hooks.append(hook)
    assert pipeline.materialize("contacts_latest").success
    out, err = started[0].communicate(timeout=120)
    assert started[0].returncode == 0, out + err
    assert holders(layout, person) == []
    meta = pipeline.latest_materialization("contacts_latest").metadata
    assert meta["rows_dropped_erased"].value == 1 and meta["dagster/row_count"].value == 19
