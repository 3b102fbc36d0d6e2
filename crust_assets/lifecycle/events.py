"""The job lifecycle's events as typed values, and their form in Dagster's event log.

Each event is written as the metadata of one `AssetObservation` on `contact_enrichment_batch`
(`event` names the kind). The names and keys are the ones the pipeline always wrote, so an event
log written by any earlier version parses, and the UI, the tests and the fault matrix read the
same metadata: `parse_event` fills a field an older log lacks with its default and returns None
for a name it does not know; `PlanEvent.metadata()` writes exactly the keys with a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import ClassVar


class EventName(StrEnum):
    """The `event` metadata values; never renamed, or old logs would stop loading."""

    # The intent, written before the POST: a crash after it is looked up.
    JOB_SUBMITTING = "job_submitting"
    JOB_SUBMITTED = "job_submitted"
    JOB_PROCESSING = "job_processing"
    JOB_COMPLETED = "job_completed"
    # The API said failed; retried after a cool-down while attempts remain.
    JOB_FAILED = "job_failed"
    # Not accepted (no slot, API trouble): back in the queue, not billed.
    JOB_DEFERRED = "job_deferred"
    JOB_SUBMISSION_UNCONFIRMED = "job_submission_unconfirmed"  # sent, no answer, not found (yet)
    JOB_ABANDONED = "job_abandoned"  # given up: attempts exhausted, refused, or unconfirmable
    # Every URL of the job was erased before it was sent: done, nothing to buy or deliver.
    JOB_NOT_SUBMITTED_ERASED = "job_not_submitted_erased"
    JOBS_NOT_SUBMITTED = "jobs_not_submitted"  # e.g. credits ran out: jobs >= first_job_index
    PLAN_COMPLETED = "plan_completed"
    PLAN_FAILED = "plan_failed"
    PLAN_SUPERSEDED = "plan_superseded"
    LOAD_REQUESTED = "load_requested"  # enriched_contacts[date] requested (attempt n)
    LOAD_FAILED = "load_failed"  # that run failed before loading; retried after `retry_at`
    LOAD_GIVEN_UP = "load_given_up"  # attempts exhausted, or a person canceled the run
    # The sensor's own state, written so that a tick that fails (Dagster keeps no cursor of a
    # failed tick) replays it: a pause after a refusal, and since when the API has not answered.
    SUBMISSIONS_PAUSED = "submissions_paused"
    CREDITS_EXHAUSTED = "credits_exhausted"  # a submit was refused for credits (402/403)
    API_UNREACHABLE = "api_unreachable"  # calls began failing: connection errors, 5xx
    API_REACHABLE = "api_reachable"  # the API answered again
    ALERT_RAISED = "alert_raised"  # a failed tick reported this one-off fact: not again


class PauseCause(StrEnum):
    """Why submissions are paused (the `cause` of `submissions_paused`)."""

    KEY_REFUSED = "key_refused"  # 401: every call fails, polls pause too
    NO_ACCESS = "no_access"  # 403 not about credits: the key may not submit


@dataclass(frozen=True, kw_only=True)
class PlanEvent:
    """Something that happened to one plan (a materialisation of the batch asset)."""

    NAME: ClassVar[EventName]
    date: str
    plan_id: str
    # The observation's description (what the UI shows); not part of the metadata.
    description: str = field(default="", compare=False)

    def metadata(self) -> dict[str, object]:
        """The observation metadata: `event` first, then every field with a value."""
        values: dict[str, object] = {"event": str(self.NAME)}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name != "description" and value is not None:
                values[item.name] = value
        return values


@dataclass(frozen=True, kw_only=True)
class JobEvent(PlanEvent):
    """Something that happened to one job of a plan."""

    job_index: int
    attempt: int = 1
    job_count: int = 0


@dataclass(frozen=True, kw_only=True)
class JobSubmitting(JobEvent):
    NAME = EventName.JOB_SUBMITTING
    window_start: float | None = None
    url_count: int | None = None
    erased_not_submitted: int | None = None


@dataclass(frozen=True, kw_only=True)
class JobSubmitted(JobEvent):
    NAME = EventName.JOB_SUBMITTED
    batch_id: str | None = None
    status: str | None = None  # the API's own status of the job
    url_count: int | None = None
    reconciled: bool | None = None  # found through GET /batch after a lost answer


@dataclass(frozen=True, kw_only=True)
class JobProcessing(JobEvent):
    NAME = EventName.JOB_PROCESSING
    batch_id: str | None = None
    status: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobCompleted(JobEvent):
    NAME = EventName.JOB_COMPLETED
    batch_id: str | None = None
    status: str | None = None
    result_count: int | None = None
    entities_fulfilled: int | None = None
    completed_at: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobFailed(JobEvent):
    NAME = EventName.JOB_FAILED
    batch_id: str | None = None
    status: str | None = None
    message: str | None = None
    retry_at: float | None = None  # None: the last attempt


@dataclass(frozen=True, kw_only=True)
class JobDeferred(JobEvent):
    NAME = EventName.JOB_DEFERRED
    message: str | None = None
    retry_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class JobSubmissionUnconfirmed(JobEvent):
    NAME = EventName.JOB_SUBMISSION_UNCONFIRMED
    reconcile_tries: int | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobAbandoned(JobEvent):
    NAME = EventName.JOB_ABANDONED
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobNotSubmittedErased(JobEvent):
    NAME = EventName.JOB_NOT_SUBMITTED_ERASED
    url_count: int | None = None
    erased_not_submitted: int | None = None


@dataclass(frozen=True, kw_only=True)
class JobsNotSubmitted(PlanEvent):
    NAME = EventName.JOBS_NOT_SUBMITTED
    first_job_index: int
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlanCompleted(PlanEvent):
    NAME = EventName.PLAN_COMPLETED


@dataclass(frozen=True, kw_only=True)
class PlanFailed(PlanEvent):
    NAME = EventName.PLAN_FAILED
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class PlanSuperseded(PlanEvent):
    NAME = EventName.PLAN_SUPERSEDED


@dataclass(frozen=True, kw_only=True)
class LoadRequested(PlanEvent):
    NAME = EventName.LOAD_REQUESTED
    attempt: int | None = None
    run_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class LoadFailed(PlanEvent):
    NAME = EventName.LOAD_FAILED
    attempt: int | None = None
    message: str | None = None
    failed_at: float | None = None
    retry_at: float | None = None


@dataclass(frozen=True, kw_only=True)
class LoadGivenUp(PlanEvent):
    NAME = EventName.LOAD_GIVEN_UP
    attempt: int | None = None
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class SubmissionsPaused(PlanEvent):
    """Recorded on the partition whose call was refused; the pause is the sensor's, not the
    plan's."""

    NAME = EventName.SUBMISSIONS_PAUSED
    cause: str
    until: float
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreditsExhausted(PlanEvent):
    NAME = EventName.CREDITS_EXHAUSTED
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class ApiUnreachable(PlanEvent):
    NAME = EventName.API_UNREACHABLE
    since: float
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class ApiReachable(PlanEvent):
    NAME = EventName.API_REACHABLE
    down_since: float | None = None


@dataclass(frozen=True, kw_only=True)
class AlertRaised(PlanEvent):
    NAME = EventName.ALERT_RAISED
    alert: str  # the one-off fact's kind: plan_failed or credits_exhausted


# Events about the sensor rather than one plan: folded whether or not the plan is tracked.
SENSOR_EVENTS = (SubmissionsPaused, CreditsExhausted, ApiUnreachable, ApiReachable, AlertRaised)
EVENT_TYPES: dict[str, type[PlanEvent]] = {
    str(kind.NAME): kind
    for kind in (
        JobSubmitting,
        JobSubmitted,
        JobProcessing,
        JobCompleted,
        JobFailed,
        JobDeferred,
        JobSubmissionUnconfirmed,
        JobAbandoned,
        JobNotSubmittedErased,
        JobsNotSubmitted,
        PlanCompleted,
        PlanFailed,
        PlanSuperseded,
        LoadRequested,
        LoadFailed,
        LoadGivenUp,
        *SENSOR_EVENTS,
    )
}
_CONVERTERS = {"int": int, "float": float, "str": str, "bool": bool}


def parse_event(metadata: Mapping[str, object], description: str = "") -> PlanEvent | None:
    """The event an observation's metadata (plain values) records; None when it is not one
    (an unknown name, or a required field missing or malformed)."""
    kind = EVENT_TYPES.get(str(metadata.get("event")))
    if kind is None:
        return None
    values: dict[str, object] = {"description": description}
    for item in fields(kind):
        raw = metadata.get(item.name)
        if item.name == "description" or raw is None:
            continue
        convert = _CONVERTERS[str(item.type).split(" |")[0]]
        try:
            values[item.name] = convert(raw)  # type: ignore[operator]
        except (TypeError, ValueError):
            return None
    try:
        return kind(**values)  # type: ignore[arg-type]
    except TypeError:  # a required field (date, plan_id, job_index) is missing
        return None
