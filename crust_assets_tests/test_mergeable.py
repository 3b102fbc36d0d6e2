"""This project's Definitions merged into someone else's, which chooses its own executor.

`Definitions.merge` refuses two Definitions that both set an executor, and an executor set on
ours would become the executor of every job of a project that has none. So ours sets none: its
jobs carry theirs, and the user's jobs (and ad-hoc asset runs) keep the user's choice.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa

from crust_assets.defs.jobs import PIPELINE_EXECUTOR
from crust_assets.defs.partitions import daily_partitions
from crust_assets.emulator import EmulatorProcess
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-20"
OUR_JOBS = ("plan_contact_enrichment", "load_enriched_contacts")
USER_EXECUTOR = dg.multiprocess_executor.configured({"max_concurrent": 2}, name="user_executor")


@dg.asset(partitions_def=daily_partitions)
def matched_profiles(enriched_contacts: pa.Table) -> dg.MaterializeResult:
    """A user's asset downstream of ours, reading the table through our IO manager."""
    matched = sum(1 for row in enriched_contacts.to_pylist() if row["business_emails"])
    return dg.MaterializeResult(metadata={"rows": enriched_contacts.num_rows, "matched": matched})


user_report = dg.define_asset_job("user_report", selection=[matched_profiles])


def _user_defs(executor: dg.ExecutorDefinition | None) -> dg.Definitions:
    return dg.Definitions(assets=[matched_profiles], jobs=[user_report], executor=executor)


def test_without_a_user_executor_the_users_jobs_keep_dagsters_default(tmp_path: Path) -> None:
    ours = Pipeline(tmp_path / "data", "http://127.0.0.1:9").defs
    merged = dg.Definitions.merge(_user_defs(None), ours)
    # Dagster's default: a process per step. Ours (in-process) must not leak into the user's job.
    assert merged.resolve_job_def("user_report").executor_def is dg.multi_or_in_process_executor
    implicit = merged.resolve_implicit_global_asset_job_def()
    assert implicit.executor_def is dg.multi_or_in_process_executor
    for name in OUR_JOBS:
        assert merged.resolve_job_def(name).executor_def is PIPELINE_EXECUTOR


def test_merged_with_a_users_executor_a_partition_runs_end_to_end(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, api_key="merge-key")
    merged = dg.Definitions.merge(_user_defs(USER_EXECUTOR), pipeline.defs)
    pipeline.defs = merged  # the harness plans, ticks and loads through the merged project
    for name in OUR_JOBS:
        assert merged.resolve_job_def(name).executor_def is PIPELINE_EXECUTOR
    assert merged.resolve_job_def("user_report").executor_def is USER_EXECUTOR
    assert merged.resolve_implicit_global_asset_job_def().executor_def is USER_EXECUTOR

    urls = make_urls("merged", 12)
    pipeline.write_list(DATE, urls)
    assert pipeline.plan(DATE).success
    (load,) = pipeline.drive(until_runs=1)
    assert load.success
    rows = pipeline.table(DATE)
    assert sorted(row["profile_url"] for row in rows) == sorted(urls)

    report = merged.resolve_job_def("user_report").execute_in_process(
        instance=pipeline.instance, partition_key=DATE
    )
    assert report.success
    metadata = pipeline.latest_materialization("matched_profiles", DATE).metadata
    assert metadata["rows"].value == len(urls)
    assert metadata["matched"].value == sum(1 for row in rows if row["business_emails"])
