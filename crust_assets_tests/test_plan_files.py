"""The names of a plan's files: fixed, because data roots written by older versions hold them."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from crust_assets.storage import DataLayout, PlanFiles


def test_a_plan_writes_the_three_files_older_versions_wrote(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    files = layout.plan_files("2026-01-02", "run-1")
    day = tmp_path / "staging" / "contact_enrichment_batch" / "date=2026-01-02"
    assert files == PlanFiles(
        day / "run-1.parquet", day / "run-1.reused.parquet", day / "run-1.borrowed.parquet"
    )
    assert layout.plans_dir == tmp_path / "staging" / "contact_enrichment_batch"
    assert layout.warehouse_dir == tmp_path / "warehouse"


def test_a_recorded_plan_path_finds_the_same_files_on_a_remote_root() -> None:
    layout = DataLayout(PurePosixPath("bucket/prefix"))
    written = layout.plan_files("2026-01-02", "run-1")
    recorded = str(written.submit.relative_to(layout.root))
    assert recorded == "staging/contact_enrichment_batch/date=2026-01-02/run-1.parquet"
    assert layout.plan_files_at(recorded) == written


def test_forget_tells_reused_rows_from_url_files(tmp_path: Path) -> None:
    files = DataLayout(tmp_path).plan_files("2026-01-02", "run-1")
    assert PlanFiles.is_reused(files.reused)
    assert not PlanFiles.is_reused(files.submit) and not PlanFiles.is_reused(files.borrowed)
    assert files.reused.relative_to(tmp_path / "staging" / "contact_enrichment_batch").match(
        PlanFiles.REUSED_GLOB
    )
