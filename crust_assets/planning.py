"""Planning a day's list: which URLs to buy, which rows to reuse, which URLs to borrow.

`make_plan` is a function of plain values (the list, the people erased, the plans that may lend,
the fields, the window, the budget and the time); it reads the warehouse and the lenders' plan
files through the layout and returns a `Plan`, refused or not. `write_plan` writes a plan's files
inside the erasure fence. Neither knows Dagster: the asset turns the value into files, a failure
or metadata, and tests call them directly.

Why reuse and borrow: a URL enriched recently (with every field wanted) is copied from its
partition instead of bought again, and a URL an unfinished plan of another day is already buying
is borrowed from that plan (see defs/borrowing.py for which plans may lend).
"""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from crust_assets.contact_history import contacts_dataset, newest_per_profile
from crust_assets.crustdata.models import MAX_URLS_PER_JOB
from crust_assets.erasure import erasure_fence
from crust_assets.lifecycle.ledger import PlanState, job_count_for, plan_key
from crust_assets.monthly_budget import MonthToDate, monthly_metadata, monthly_refusal
from crust_assets.storage import DataLayout, PlanFiles
from crust_assets.table import (
    ENRICHED_CONTACTS_SCHEMA,
    covers_columns,
    project_to_columns,
    requested_columns,
    worst_case_credits,
)

PLAN_SCHEMA = pa.schema(
    [pa.field("job_index", pa.int32(), nullable=False), pa.field("profile_url", pa.string())]
)
BORROWED_SCHEMA = pa.schema(
    [
        pa.field("profile_url", pa.string(), nullable=False),
        pa.field("lender_date", pa.string(), nullable=False),
        pa.field("lender_plan_id", pa.string(), nullable=False),
        pa.field("lender_job_index", pa.int32(), nullable=False),
    ]
)


@dataclass(frozen=True)
class PlanRequest:
    """What a plan of `date` is made with: the user's settings and the time."""

    date: str
    fields: tuple[str, ...]
    reenrich_window_days: int
    credit_budget: int
    refuse_erased: bool  # False: CRUST_ALLOW_REENRICH_ERASED, erased people are bought again
    now: datetime
    monthly_credit_budget: int | None = None  # CRUST_MONTHLY_CREDIT_BUDGET
    month: MonthToDate | None = None  # the month so far, when that budget is set

    @property
    def since(self) -> datetime:
        """Rows enriched (and plans made) from this time on may be reused (or lend)."""
        return self.now - timedelta(days=self.reenrich_window_days)


@dataclass
class Lender:
    """A plan that may lend, and its jobs that will never deliver (so lend nothing)."""

    plan: PlanState
    abandoned: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Refusal:
    """Why a plan must not be enqueued: the text and figures of the failed run."""

    description: str
    metadata: dict[str, int]


@dataclass(frozen=True)
class Reason:
    """A line for the run's log saying why some URLs are not submitted."""

    text: str
    warning: bool = False


@dataclass(frozen=True)
class Plan:
    """A day's plan: URLs to submit, rows reused from partitions, URLs borrowed from lenders."""

    request: PlanRequest
    to_submit: pa.Table  # profile_url
    reused: pa.Table  # ENRICHED_CONTACTS_SCHEMA, projected to the requested fields
    borrowed: pa.Table  # BORROWED_SCHEMA
    refused_erased: int  # URLs of people erased with `crust-assets forget`, not bought
    credits_estimate: int  # worst case for `to_submit` as planned, before the fence
    refusal: Refusal | None = None

    @property
    def job_count(self) -> int:
        return job_count_for(self.to_submit.num_rows)

    @property
    def lender_keys(self) -> list[str]:
        return lender_keys(self.borrowed)

    @property
    def reasons(self) -> list[Reason]:
        date, reasons = self.request.date, []
        if self.refused_erased:
            reasons.append(
                Reason(
                    f"{self.refused_erased} URLs of {date} were erased with `crust-assets "
                    "forget`: not enriched (set CRUST_ALLOW_REENRICH_ERASED=true to enrich them "
                    "again)",
                    warning=True,
                )
            )
        if self.borrowed.num_rows:
            reasons.append(
                Reason(
                    f"{self.borrowed.num_rows} URLs of {date} are already being bought by "
                    f"{', '.join(self.lender_keys)}: borrowed, not submitted again; "
                    "enriched_contacts waits for those plans"
                )
            )
        return reasons


def make_plan(
    layout: DataLayout,
    urls: pa.Table,
    erased: set[str] | frozenset[str],
    lenders: list[Lender],
    request: PlanRequest,
) -> Plan:
    """Split the day's valid URLs (a `profile_url` table) into reused, borrowed and to-submit.

    `erased` is ignored unless `request.refuse_erased`. A plan whose worst-case credits exceed
    the budget carries a `refusal` and must not be written.
    """
    refused = 0
    if erased and request.refuse_erased:
        kept = without_urls(urls, pa.array(sorted(erased), pa.string()))
        refused, urls = urls.num_rows - kept.num_rows, kept
    wanted = requested_columns(request.fields)
    reused = recent_enrichments(layout, urls.column("profile_url"), request.since, wanted)
    not_reused = without_urls(urls, reused.column("profile_url"))
    borrowed = borrow(layout, not_reused.column("profile_url"), lenders)
    to_submit = without_urls(not_reused, borrowed.column("profile_url"))
    estimate = worst_case_credits(to_submit.num_rows, request.fields)
    plan = Plan(request, to_submit, reused, borrowed, refused, estimate)
    return replace(plan, refusal=budget_refusal(plan) or monthly_budget_refusal(plan))


def monthly_budget_refusal(plan: Plan) -> Refusal | None:
    """The refusal of a plan that could take the month past CRUST_MONTHLY_CREDIT_BUDGET."""
    request, month = plan.request, plan.request.month
    budget = request.monthly_credit_budget
    if month is None or budget is None:
        return None
    text = monthly_refusal(request.date, plan.credits_estimate, month, budget)
    if text is None:
        return None
    figures = {"credits_estimate": plan.credits_estimate, **monthly_metadata(month, budget)}
    return Refusal(text, {k: int(v) for k, v in figures.items() if isinstance(v, int)})


def budget_refusal(plan: Plan) -> Refusal | None:
    """The refusal of a plan that could cost more than CRUST_CREDIT_BUDGET (None: it fits)."""
    request, estimate = plan.request, plan.credits_estimate
    if estimate <= request.credit_budget:
        return None
    return Refusal(
        f"Partition {request.date}: {plan.to_submit.num_rows} URLs to enrich could cost up to "
        f"{estimate} credits (fields {', '.join(request.fields)}), above the budget of "
        f"{request.credit_budget}. Raise CRUST_CREDIT_BUDGET or split the list.",
        {"credits_estimate": estimate, "credit_budget": request.credit_budget},
    )


def write_plan(layout: DataLayout, files: PlanFiles, plan: Plan) -> Plan:
    """Write a plan's three staging files inside the erasure fence (see erasure.py); returns the
    plan as written.

    The plan read the erasure log when it started, and a `forget` may have run since. Inside the
    fence the log is read again and the people it names are dropped from the reused rows (contact
    data, never published for an erased person) and, unless re-enriching them is allowed, from
    the URLs to submit and to borrow: a plan made during a `forget` neither stores nor buys them.
    """
    if plan.refusal is not None:
        raise ValueError(f"a refused plan is not written: {plan.refusal.description}")
    with erasure_fence(layout, f"contact_enrichment_batch[{plan.request.date}]") as erased:
        gone = pa.array(sorted(erased), pa.string())
        reused = without_urls(plan.reused, gone)
        to_submit, borrowed = plan.to_submit, plan.borrowed
        if plan.request.refuse_erased:
            to_submit, borrowed = without_urls(to_submit, gone), without_urls(borrowed, gone)
        late = plan.to_submit.num_rows + plan.borrowed.num_rows
        late -= to_submit.num_rows + borrowed.num_rows
        job_index = pa.array(
            [i // MAX_URLS_PER_JOB for i in range(to_submit.num_rows)], type=pa.int32()
        )
        plan_table = pa.table(
            {"job_index": job_index, "profile_url": to_submit.column("profile_url")},
            schema=PLAN_SCHEMA,
        )
        # One row group per job: the sensor reads exactly one job's URLs at submit time.
        layout.write_table(files.submit, plan_table, row_group_size=MAX_URLS_PER_JOB)
        layout.write_table(files.reused, reused)
        layout.write_table(files.borrowed, borrowed)
    refused = plan.refused_erased + late
    return replace(
        plan, to_submit=to_submit, reused=reused, borrowed=borrowed, refused_erased=refused
    )


def without_urls(table: pa.Table, urls: pa.ChunkedArray | pa.Array) -> pa.Table:
    """The rows of `table` whose profile_url is not one of `urls`."""
    return table.filter(pc.invert(pc.is_in(table.column("profile_url"), value_set=urls)))


def recent_enrichments(
    layout: DataLayout, urls: pa.ChunkedArray, since: datetime, columns: set[str]
) -> pa.Table:
    """For each of `urls`, the newest row enriched at or after `since` in any partition that was
    bought with every one of `columns`, shown with those columns only (`project_to_columns`)."""
    dataset = contacts_dataset(layout)
    if dataset is None or len(urls) == 0:
        return ENRICHED_CONTACTS_SCHEMA.empty_table()
    found = dataset.to_table(
        filter=(ds.field("enriched_at") >= pa.scalar(since, pa.timestamp("us", tz="UTC")))
        & ds.field("profile_url").isin(urls.combine_chunks())
    )
    found = found.filter(covers_columns(found, columns))
    newest = (
        newest_per_profile(found)
        .select(ENRICHED_CONTACTS_SCHEMA.names)
        .cast(ENRICHED_CONTACTS_SCHEMA)
    )
    batches = [project_to_columns(batch, columns) for batch in newest.to_batches()]
    return pa.Table.from_batches(batches, schema=ENRICHED_CONTACTS_SCHEMA)


def borrow(layout: DataLayout, urls: pa.ChunkedArray, lenders: list[Lender]) -> pa.Table:
    """Which of `urls` each lender's jobs deliver: one lender per URL, the oldest first."""
    remaining = urls.combine_chunks()
    pieces = []
    for lender in lenders:
        if len(remaining) == 0:
            break
        lent = _lent_by(layout, lender, remaining)
        if lent.num_rows:
            pieces.append(lent)
            taken = pc.is_in(remaining, value_set=lent.column("profile_url"))
            remaining = remaining.filter(pc.invert(taken))
    return pa.concat_tables(pieces) if pieces else BORROWED_SCHEMA.empty_table()


def _lent_by(layout: DataLayout, lender: Lender, urls: pa.Array) -> pa.Table:
    plan = layout.read_table(layout.plan_files_at(lender.plan.plan_path).submit)
    planned = plan.filter(pc.is_in(plan.column("profile_url"), value_set=urls))
    if lender.abandoned:
        given_up = pa.array(sorted(lender.abandoned), pa.int32())
        planned = planned.filter(
            pc.invert(pc.is_in(planned.column("job_index"), value_set=given_up))
        )
    rows = planned.num_rows
    return pa.table(
        {
            "profile_url": planned.column("profile_url"),
            "lender_date": pa.array([lender.plan.date] * rows, pa.string()),
            "lender_plan_id": pa.array([lender.plan.plan_id] * rows, pa.string()),
            "lender_job_index": planned.column("job_index"),
        },
        schema=BORROWED_SCHEMA,
    )


def lender_keys(borrowed: pa.Table) -> list[str]:
    """The lenders' plan keys (`date/plan_id`, as the sensor names plans), in a stable order."""
    dates = borrowed.column("lender_date").to_pylist()
    plan_ids = borrowed.column("lender_plan_id").to_pylist()
    return sorted({plan_key(d, p) for d, p in zip(dates, plan_ids, strict=True)})
