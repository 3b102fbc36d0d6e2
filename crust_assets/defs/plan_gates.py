"""When a plan may be replaced, and when it may be loaded: what the event log says about it.

The assets ask these before they plan or load. The answers come from the job-event lookups
(`find_plan`, `plan_outcome`); a "no" is a `dg.Failure` whose text says what to wait for or do.
"""

import dagster as dg

from crust_assets.defs.job_events import PlanOutcome, find_plan, plan_outcome, unsettled_lenders
from crust_assets.lifecycle.ledger import PlanState
from crust_assets.names import current


def unfinished_plan_failure(instance: dg.DagsterInstance, date: str) -> dg.Failure | None:
    """Why a new plan of `date` must not replace the previous one yet (None: it may).

    The previous plan may have jobs running, or be done with its own jobs but wait for the plans
    it borrowed URLs from: either way its results are not loaded, and a new plan would buy them
    again (a plan never borrows from its own partition's earlier plan).
    """
    previous = find_plan(instance, date)
    if previous is None:
        return None
    outcome = plan_outcome(instance, previous)
    if outcome.outcome is None and previous.job_count > 0:
        unfinished = previous.job_count - len(outcome.completed)
        reason = f"{unfinished} of {previous.job_count} jobs not finished"
    elif outcome.outcome != "superseded" and (waiting := unsettled_lenders(instance, previous)):
        reason = (
            f"{previous.borrowed} URLs borrowed from plans still running ({', '.join(waiting)})"
        )
    else:
        return None
    return dg.Failure(
        description=(
            f"Partition {date} already has plan {previous.plan_id} with {reason}. Wait for "
            f"{current().submitter_sensor} to finish it (is the sensor running?), or launch with "
            "config replace_unfinished_plan: true (its running jobs are still billed)."
        ),
        allow_retries=False,
    )


def loadable_plan(
    instance: dg.DagsterInstance, date: str, plan_id: str | None
) -> tuple[PlanState, PlanOutcome]:
    """The plan `enriched_contacts[date]` loads (the run's, or the newest) and its outcome.

    Raises a `dg.Failure` when there is no plan, when its jobs are still running, or when a plan
    it borrowed from may still deliver: the sensor requests the load when all of them are done.
    """
    plan = find_plan(instance, date, plan_id)
    if plan is None:
        raise _refused(f"No plan for {date}: materialise {_batch()}[{date}] first.")
    outcome = plan_outcome(instance, plan)
    if outcome.outcome is None and len(outcome.completed) + len(outcome.abandoned) < plan.job_count:
        raise _refused(
            f"Plan {plan.plan_id} of {date} is still running: {len(outcome.completed)} of "
            f"{plan.job_count} jobs completed. {current().submitter_sensor} requests this run "
            "when they are all done."
        )
    waiting = unsettled_lenders(instance, plan)
    if waiting:
        raise _refused(
            f"Plan {plan.plan_id} of {date} borrowed {plan.borrowed} URLs from plans still "
            f"running ({', '.join(waiting)}). {current().submitter_sensor} requests this run "
            "when they are settled."
        )
    return plan, outcome


def _batch() -> str:
    """The running copy's plan asset, as the UI writes it (`contact_enrichment_batch`)."""
    return current().batch_key.to_user_string()


def _refused(description: str) -> dg.Failure:
    return dg.Failure(description=description, allow_retries=False)
