"""Reading and writing the job queue's durable record in Dagster's event log.

Plans are the materialisations of `contact_enrichment_batch[date]`; each job's life is a series of
`AssetObservation`s on the same partition, written by the sensor the moment something happens.
The UI shows them on the asset's page; the sensor folds them back into its state after a crash;
`enriched_contacts` reads them to learn which job delivered which part of a plan.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from crust_assets.job_queue import JobEvent, PlanState

BATCH_ASSET_KEY = dg.AssetKey("contact_enrichment_batch")
PAGE_SIZE = 500


def metadata_values(metadata: dict[str, Any]) -> dict[str, Any]:
    """Plain Python values of a metadata dict (MetadataValue.value, or the raw value)."""
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def record_job_event(
    instance: dg.DagsterInstance, date: str, event: dict[str, Any], description: str
) -> None:
    """Write one event now (not at the end of the tick): a crash must not lose it."""
    metadata = {k: v for k, v in event.items() if v is not None}
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=BATCH_ASSET_KEY, partition=date, metadata=metadata, description=description
        )
    )


def _paged(
    fetch: Callable[..., dg.EventRecordsResult], records_filter: dg.AssetRecordsFilter
) -> Iterator[dg.EventLogRecord]:
    """Every record matching the filter, oldest first, one page at a time."""
    cursor = None
    while True:
        result = fetch(records_filter, limit=PAGE_SIZE, cursor=cursor, ascending=True)
        yield from result.records
        if not result.has_more:
            return
        cursor = result.cursor


def iter_observations(
    instance: dg.DagsterInstance,
    *,
    after_storage_id: int | None = None,
    after_timestamp: float | None = None,
    partition: str | None = None,
) -> Iterator[dg.EventLogRecord]:
    """Observations of the batch asset in storage order, page by page."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=BATCH_ASSET_KEY,
        asset_partitions=[partition] if partition else None,
        after_storage_id=after_storage_id or None,
        after_timestamp=after_timestamp,
    )
    return _paged(instance.fetch_observations, records_filter)


def iter_job_events(
    instance: dg.DagsterInstance, **filters: Any
) -> Iterator[tuple[dg.EventLogRecord, dict[str, Any]]]:
    """Observations as (record, plain metadata values): the job events the sensor wrote."""
    for record in iter_observations(instance, **filters):
        if record.asset_observation is not None:
            yield record, metadata_values(dict(record.asset_observation.metadata))


def latest_observation_storage_id(instance: dg.DagsterInstance) -> int:
    result = instance.fetch_observations(BATCH_ASSET_KEY, limit=1, ascending=False)
    return result.records[0].storage_id if result.records else 0


def iter_plan_records(
    instance: dg.DagsterInstance,
    *,
    after_storage_id: int | None = None,
    after_timestamp: float | None = None,
) -> Iterator[dg.EventLogRecord]:
    """Materialisations of the batch asset (each one a plan), oldest first."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=BATCH_ASSET_KEY,
        after_storage_id=after_storage_id or None,
        after_timestamp=after_timestamp,
    )
    return _paged(instance.fetch_materializations, records_filter)


def plan_from_record(record: dg.EventLogRecord) -> PlanState | None:
    """The plan a batch materialisation describes (None if it is not a plan)."""
    materialization = record.asset_materialization
    if materialization is None or materialization.partition is None:
        return None
    meta = metadata_values(dict(materialization.metadata))
    if "plan_id" not in meta:
        return None
    return PlanState(
        date=materialization.partition,
        plan_id=str(meta["plan_id"]),
        job_count=int(meta["job_count"]),
        url_count=int(meta["urls_to_submit"]),
        fields=[f for f in str(meta["fields"]).split(",") if f],
        plan_path=str(meta["plan_file"]),
        storage_id=record.storage_id,
        lenders=[str(key) for key in meta.get("lender_plans") or []],
        borrowed=int(meta.get("urls_borrowed", 0)),
    )


def find_plan(
    instance: dg.DagsterInstance, date: str, plan_id: str | None = None
) -> PlanState | None:
    """The newest plan of a partition, or the one with `plan_id`."""
    records_filter = dg.AssetRecordsFilter(asset_key=BATCH_ASSET_KEY, asset_partitions=[date])
    cursor = None
    while True:
        result = instance.fetch_materializations(records_filter, limit=50, cursor=cursor)
        for record in result.records:
            plan = plan_from_record(record)
            if plan is not None and (plan_id is None or plan.plan_id == plan_id):
                return plan
        if not result.has_more or plan_id is None:
            return None
        cursor = result.cursor


@dataclass
class PlanOutcome:
    """What the event log says happened to one plan's jobs."""

    # job index -> its job_completed event, or its job_not_submitted_erased one (no batch_id)
    completed: dict[int, dict[str, Any]]
    abandoned: dict[int, str]  # job index -> why it was given up
    outcome: str | None  # completed | failed | superseded | None (still running)
    failure: str | None


def plan_outcome(instance: dg.DagsterInstance, plan: PlanState) -> PlanOutcome:
    completed: dict[int, dict[str, Any]] = {}
    abandoned: dict[int, str] = {}
    outcome: str | None = None
    failure: str | None = None
    for _, event in iter_job_events(
        instance, after_storage_id=plan.storage_id, partition=plan.date
    ):
        if event.get("plan_id") != plan.plan_id:
            continue
        name = event.get("event")
        if name in (JobEvent.COMPLETED, JobEvent.NOT_SUBMITTED_ERASED):  # erased: done, no batch_id
            completed[int(event["job_index"])] = event
        elif name == JobEvent.ABANDONED:
            abandoned[int(event["job_index"])] = str(event.get("message", ""))
        elif name == JobEvent.JOBS_NOT_SUBMITTED:
            first = int(event["first_job_index"])
            for index in range(first, plan.job_count):
                abandoned.setdefault(index, str(event.get("message", "")))
        elif name == JobEvent.PLAN_COMPLETED:
            outcome = "completed"
        elif name == JobEvent.PLAN_FAILED:
            outcome, failure = "failed", str(event.get("message", ""))
        elif name == JobEvent.PLAN_SUPERSEDED:
            outcome = "superseded"
    return PlanOutcome(completed, abandoned, outcome, failure)
