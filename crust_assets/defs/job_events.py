"""Reading and writing the job queue's durable record in Dagster's event log.

Plans are the materialisations of `contact_enrichment_batch[date]`; each job's life is a series of
`AssetObservation`s on the same partition, written by the sensor the moment something happens.
The UI shows them on the asset's page; the sensor folds them back into its state after a crash;
`enriched_contacts` reads them to learn which job delivered which part of a plan.
"""

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg

from crust_assets.lifecycle.decide import superseded
from crust_assets.lifecycle.events import PlanEvent, parse_event
from crust_assets.lifecycle.ledger import Ledger, LoadState, PlanState
from crust_assets.names import DEFAULT_NAMES, current

# The default copy's key; the code reads the running copy's, `current().batch_key`.
BATCH_ASSET_KEY = DEFAULT_NAMES.batch_key
PAGE_SIZE = 500


def metadata_values(metadata: dict[str, Any]) -> dict[str, Any]:
    """Plain Python values of a metadata dict (MetadataValue.value, or the raw value)."""
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def record_event(instance: dg.DagsterInstance, event: PlanEvent) -> None:
    """Write one event now (not at the end of the tick): a crash must not lose it."""
    instance.report_runless_asset_event(
        dg.AssetObservation(
            asset_key=current().batch_key,
            partition=event.date,
            metadata=event.metadata(),
            description=event.description,
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
        asset_key=current().batch_key,
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


def iter_events(
    instance: dg.DagsterInstance, **filters: Any
) -> Iterator[tuple[dg.EventLogRecord, PlanEvent]]:
    """The job events the sensor wrote, typed, in storage order (other observations skipped)."""
    for record, metadata in iter_job_events(instance, **filters):
        event = parse_event(metadata)
        if event is not None:
            yield record, event


def recorded_batch_ids(instance: dg.DagsterInstance, since: float) -> set[str]:
    """Batch ids named by job events written after `since` (unix seconds): jobs known to be
    ours, including those already finished and gone from the sensor's ledger."""
    return {
        str(event["batch_id"])
        for _, event in iter_job_events(instance, after_timestamp=since)
        if event.get("batch_id")
    }


def known_batch_ids(instance: dg.DagsterInstance, ledger: Ledger, margin: float) -> set[str]:
    """Every job that is ours and so not a lost submit's: those in flight, and those any event
    named since `margin` seconds before the earliest unconfirmed submit (a job of the same size
    that completed a moment earlier must not make the look-up ambiguous)."""
    earliest = min((job.window_start or job.since) for _, job in ledger.unconfirmed())
    return ledger.known_batch_ids() | recorded_batch_ids(instance, earliest - margin)


def replay_events(instance: dg.DagsterInstance, ledger: Ledger) -> None:
    """Fold in the events written after the ledger's watermark (all of them for a new ledger;
    after a tick that died before saving its cursor, the ones it wrote)."""
    for record, event in iter_events(instance, after_storage_id=ledger.observation_watermark):
        ledger.apply(event, record.timestamp)
        ledger.observation_watermark = record.storage_id


def discover_plans(
    instance: dg.DagsterInstance, ledger: Ledger, loaded: Callable[[PlanState], bool]
) -> list[PlanEvent]:
    """Track the plans made after the ledger's plan watermark; returns the events superseding
    the plans of the same date they replace (none for a plan whose pending load turns out to
    have `loaded`: it is marked so instead)."""
    superseding: list[PlanEvent] = []
    _fill_planned_at(instance, ledger)
    for record in iter_plan_records(instance, after_storage_id=ledger.plan_watermark):
        ledger.plan_watermark = record.storage_id
        if (plan := plan_from_record(record)) is None:
            continue
        for old in ledger.add_plan(plan):
            if old.load_pending and loaded(old):
                old.load_state = LoadState.LOADED
            else:
                superseding.append(superseded(old, plan.plan_id))
    return superseding


def _fill_planned_at(instance: dg.DagsterInstance, ledger: Ledger) -> None:
    """When the plans a cursor written before plans had a time were made: how long a plan has
    waited is an alarm."""
    for plan in ledger.plans.values():
        if plan.planned_at is None:
            first = next(iter_plan_records(instance, after_storage_id=plan.storage_id - 1), None)
            if first is not None and first.storage_id == plan.storage_id:
                plan.planned_at = first.timestamp


def latest_observation_storage_id(instance: dg.DagsterInstance) -> int:
    result = instance.fetch_observations(current().batch_key, limit=1, ascending=False)
    return result.records[0].storage_id if result.records else 0


def iter_plan_records(
    instance: dg.DagsterInstance,
    *,
    after_storage_id: int | None = None,
    after_timestamp: float | None = None,
) -> Iterator[dg.EventLogRecord]:
    """Materialisations of the batch asset (each one a plan), oldest first."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=current().batch_key,
        after_storage_id=after_storage_id or None,
        after_timestamp=after_timestamp,
    )
    return _paged(instance.fetch_materializations, records_filter)


def iter_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, after_timestamp: float
) -> Iterator[dg.EventLogRecord]:
    """Materialisations of `asset_key` written after `after_timestamp`, oldest first."""
    records_filter = dg.AssetRecordsFilter(asset_key=asset_key, after_timestamp=after_timestamp)
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
        planned_at=record.timestamp,
    )


def find_plan(
    instance: dg.DagsterInstance, date: str, plan_id: str | None = None
) -> PlanState | None:
    """The newest plan of a partition, or the one with `plan_id`."""
    records_filter = dg.AssetRecordsFilter(asset_key=current().batch_key, asset_partitions=[date])
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

    # job index -> a mapping with the delivering job's batch_id (none when every URL of the job
    # was erased before it was sent: done, nothing delivered)
    completed: dict[int, dict[str, Any]]
    abandoned: dict[int, str]  # job index -> why it was given up
    outcome: str | None  # completed | failed | superseded | None (still running)
    failure: str | None


def fold_plans(instance: dg.DagsterInstance, plans: Iterable[PlanState]) -> Ledger:
    """A ledger of `plans` (with their deliveries), folded in one pass over the event log from
    the oldest of them."""
    ledger = Ledger(record_deliveries=True)
    for plan in sorted(plans, key=lambda p: p.storage_id):
        ledger.plans.setdefault(plan.key, copy.deepcopy(plan))  # the caller's plan is not folded
    if not ledger.plans:
        return ledger
    first = min(p.storage_id for p in ledger.plans.values())
    dates = sorted({p.date for p in ledger.plans.values()})
    filters: dict[str, Any] = {"partition": dates[0]} if len(dates) == 1 else {}
    for record, event in iter_events(instance, after_storage_id=first, **filters):
        ledger.apply(event, record.timestamp)
    return ledger


def plan_outcome(instance: dg.DagsterInstance, plan: PlanState) -> PlanOutcome:
    folded = fold_plans(instance, [plan]).plans[plan.key]
    completed = {
        index: ({"batch_id": batch_id} if batch_id else {})
        for index, batch_id in folded.delivered.items()
    }
    outcome = str(folded.outcome) if folded.outcome else None
    return PlanOutcome(completed, folded.abandoned_reasons(), outcome, folded.failure)


def unsettled_lenders(instance: dg.DagsterInstance, plan: PlanState) -> list[str]:
    """The plan's lenders that may still deliver (no outcome in the event log yet)."""
    lenders = []
    for key in plan.lenders:
        date, plan_id = key.split("/", 1)
        if (lender := find_plan(instance, date, plan_id)) is not None:
            lenders.append(lender)
    return [lender.key for lender in fold_plans(instance, lenders).open_lenders(plan)]
