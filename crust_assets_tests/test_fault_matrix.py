"""The fast part of the fault matrix, and proof that the matrix's invariant checks can fail.

The scenarios themselves live in `fault_matrix.py` (`python -m crust_assets_tests.fault_matrix`
runs all of them, `make faults`); the slow ones (dagster dev SIGKILL, hangs, run killed mid-write,
retry-exhausting downloads) only run there.
"""

from __future__ import annotations

import gzip
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crust_assets.emulator.process import EmulatorProcess
from crust_assets_tests.fault_matrix import (
    FIELDS,
    SCENARIOS,
    SECRET_KEY,
    Partition,
    Scenario,
    Verdict,
    World,
    check_files,
    check_rows,
    check_submissions,
    issued_signatures,
    run_scenario,
    scan_paths,
    scratch_dir,
    secret_needles,
)
from crust_assets_tests.pipeline_harness import make_urls

FAST = [s for s in SCENARIOS if s.fast]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory in RAM when possible (see `scratch_dir`), removed afterwards."""
    path = scratch_dir("crust-fast-faults-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("scenario", FAST, ids=[s.name for s in FAST])
def test_fast_scenario_keeps_every_invariant(scenario: Scenario, scratch: Path) -> None:
    verdict = run_scenario(scenario, scratch)
    assert verdict.passed, "\n".join([verdict.line(), *verdict.problems])
    assert verdict.duplicate_submits == 0
    assert verdict.rows_got == verdict.rows_expected or "reported failed" in verdict.outcome


def test_the_fast_subset_covers_the_promised_faults() -> None:
    assert {s.name for s in FAST} >= {
        "5xx-30pct",
        "lost-submit-reconciled",
        "truncated-download",
        "missing-duplicate-records",
        "credits-out-402",
        "tick-lost-cursor",
    }


# ---- the checks catch what they are meant to catch ---------------------------------------------
@pytest.fixture
def world(tmp_path: Path):
    emulator = EmulatorProcess(
        tmp_path / "emulator", api_key=SECRET_KEY, pending_seconds=0, processing_seconds=0.1
    )
    emulator.start()
    world = World("self-test", tmp_path, emulator, {})
    try:
        yield world
    finally:
        world.close()
        emulator.stop()


def test_secret_scan_finds_the_key_and_an_issued_signature_anywhere(world: World) -> None:
    with world.client() as client:
        batch = client.submit(make_urls("sig", 3), FIELDS)
        time.sleep(0.3)
        status = client.status(batch.batch_id)
    url = status.part_urls[0]
    signature = url.split("X-Amz-Signature=")[1].encode()
    (world.root / "deep" / "er").mkdir(parents=True)
    (world.root / "deep" / "er" / "events.db").write_bytes(b"\x00x" + SECRET_KEY.encode() + b"\x01")
    (world.root / "deep" / "log.txt").write_bytes(b"fetched part ... sig " + signature + b" ok")
    (world.root / "clean.txt").write_text("nothing to see")
    signatures = issued_signatures(
        world.emulator.state_dir, world.admin.submissions(), {432_000}, time.time()
    )
    assert signature in signatures
    findings = scan_paths(
        [world.root / "deep", world.root / "clean.txt"], secret_needles(SECRET_KEY), signatures
    )
    assert any("API key in" in f and "events.db" in f for f in findings)
    assert any("signature in" in f and "log.txt" in f for f in findings)
    assert not any("clean.txt" in f for f in findings)


def test_submission_check_counts_a_url_set_submitted_twice(world: World) -> None:
    urls = make_urls("twice", 4)
    with world.client() as client:
        client.submit(urls, FIELDS)
        client.submit(urls, FIELDS)
    time.sleep(0.3)
    world.admin.submissions()  # finalises the jobs
    verdict = Verdict("self-test")
    check_submissions(world, verdict)
    assert verdict.submits == 2
    assert verdict.duplicate_submits == 1 + 4  # one set twice; its 4 URLs delivered twice
    assert any("submitted twice" in p for p in verdict.problems)


def test_row_check_needs_every_row_or_a_failure_report(world: World) -> None:
    world.partitions.append(Partition("2026-11-23", make_urls("norows", 5)))
    verdict = Verdict("self-test")
    check_rows(world, verdict)
    assert verdict.rows_got == 0
    assert any("no failure report" in p for p in verdict.problems)


def test_file_check_finds_a_half_written_visible_parquet(world: World) -> None:
    partition = world.data_dir / "warehouse" / "enriched_contacts" / "date=2026-11-23"
    partition.mkdir(parents=True)
    (partition / "data.parquet").write_bytes(b"PAR1" + b"\x00" * 100)  # no footer
    (partition / ".data.parquet.tmp-x").write_bytes(b"PAR1")
    verdict = Verdict("self-test")
    check_files(world, verdict)
    assert any("unreadable" in p for p in verdict.problems)
    assert any("temp files left behind" in p for p in verdict.problems)


def test_delivered_urls_are_read_from_the_emulators_result_files(world: World) -> None:
    with world.client() as client:
        batch = client.submit(make_urls("files", 3), FIELDS)
    time.sleep(0.3)
    world.admin.submissions()
    [part] = (world.emulator.state_dir / "results" / batch.batch_id).glob("part-*")
    with gzip.open(part, "rt") as handle:
        assert len([json.loads(line) for line in handle]) == 3
