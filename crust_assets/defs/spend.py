"""Gathers the month's spend for `monthly_budget` from Dagster's event log.

The plans are the materialisations of `contact_enrichment_batch` made since the start of the
previous month (a plan still running after a month would long have raised the plan-wait alarm),
folded with the lifecycle's ledger: that says which are still running and which of their jobs
have delivered or been given up. The completions are the `job_completed` events recorded this
month. Both are durable records the sensor writes anyway: `forget`, a re-plan or a reload
changes none of them, so what was bought is never counted down, and nothing new is stored.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import dagster as dg

from crust_assets.defs.job_events import fold_plans, iter_events, iter_plan_records
from crust_assets.defs.job_events import plan_from_record as _plan
from crust_assets.lifecycle.events import JobCompleted
from crust_assets.lifecycle.ledger import plan_key
from crust_assets.monthly_budget import (
    MonthToDate,
    delivery,
    month_start,
    monthly_metadata,
    previous_month_start,
)
from crust_assets.monthly_budget import month_to_date as _month_figures
from crust_assets.planning import PlanRequest


def month_to_date(instance: dg.DagsterInstance, now: datetime) -> MonthToDate:
    """The calendar month of `now`: credits bought by completed jobs, and the worst case of the
    running plans' remaining jobs."""
    since = previous_month_start(now).timestamp()
    made = [plan for r in iter_plan_records(instance, after_timestamp=since) if (plan := _plan(r))]
    plans = fold_plans(instance, made).plans
    deliveries = [
        delivery(event, record.timestamp, plans.get(plan_key(event.date, event.plan_id)))
        for record, event in iter_events(instance, after_timestamp=month_start(now).timestamp())
        if isinstance(event, JobCompleted)
    ]
    return _month_figures(now, list(plans.values()), deliveries)


def spend_metadata(
    instance: dg.DagsterInstance, now: datetime, budget: int | None
) -> dict[str, int | float]:
    """The month's credits (and the budget, when set) as numbers the asset's plots can show."""
    return monthly_metadata(month_to_date(instance, now), budget)


def with_month_to_date(request: PlanRequest, instance: dg.DagsterInstance) -> PlanRequest:
    """The request with the month so far, when CRUST_MONTHLY_CREDIT_BUDGET is set."""
    if request.monthly_credit_budget is None:
        return request
    return replace(request, month=month_to_date(instance, request.now))
