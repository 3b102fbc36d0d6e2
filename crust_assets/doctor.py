"""`crust-assets doctor`: what a first real run needs, checked without spending a credit.

A wrong key, an instance in a temporary directory or a stopped submitter otherwise shows up only
after the schedule fired and nothing happened. Each check returns one `Finding` (ok, or what is
wrong and what to do); the command prints one line each and exits 1 when any is not ok. The only
API call is one page of `GET /batch`, which lists jobs and costs nothing.
"""

from __future__ import annotations

import os
import stat
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

    from crust_assets.defs.resources import CrustdataResource
    from crust_assets.storage import DataLayout

SUBMITTER = "contact_enrichment_sensor"
FILE_SENSOR = "contact_url_list_file_sensor"
SCHEDULE = "daily_contact_enrichment_schedule"


@dataclass(frozen=True)
class Finding:
    """One line of the report: what was checked, whether it is ok, and the detail or the fix."""

    what: str
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.what}: {self.text}"


def check_key(resource: CrustdataResource) -> Finding:
    """One page of `GET /batch` (free): 200 means the key is accepted at this base URL."""
    from crust_assets.crustdata import (
        AuthenticationError,
        CrustdataError,
        InsufficientCreditsError,
        PermissionDeniedError,
        TransportError,
    )

    base = resource.resolved_base_url()
    what = "API key"
    try:
        with resource.client(timeout=10.0, max_retry_seconds=5.0) as client:
            next(iter(client.list_batches(limit=1, page_size=1)), None)
    except AuthenticationError:
        return Finding(what, False, f"key refused by {base} (401): check CRUSTDATA_API_KEY")
    except InsufficientCreditsError:
        return Finding(what, False, f"{base}: out of credits; top up the account")
    except PermissionDeniedError:
        return Finding(what, False, f"{base}: no access (403); the key's plan lacks batch enrich")
    except TransportError as error:
        return Finding(
            what, False, f"no answer from {base} ({error}); check CRUSTDATA_BASE_URL and network"
        )
    except CrustdataError as error:
        return Finding(what, False, f"{base} answered {error.status_code or 'oddly'}: {error}")
    if resource.uses_emulator:
        return Finding(what, True, f"no CRUSTDATA_API_KEY: the local emulator at {base} answers")
    return Finding(what, True, f"accepted by {base} (GET /batch 200, no credit spent)")


def check_data_root(layout: DataLayout) -> Finding:
    """Write, check and delete a small file, as the pipeline writes its own."""
    from crust_assets.storage import configured_file_mode

    what = "data root"
    where = layout.url(layout.root)
    probe = layout.root / f".crust-doctor-{uuid.uuid4().hex[:12]}"
    try:
        mode = configured_file_mode()
        layout.write_bytes(probe, b"crust-assets doctor\n")
        actual = stat.S_IMODE(os.stat(Path(probe)).st_mode) if layout.is_local else None
        layout.remove(probe)
    except (OSError, ValueError) as error:
        return Finding(what, False, f"cannot write to {where} ({error}); fix CRUST_DATA_DIR")
    if actual is None:
        return Finding(what, True, f"{where} is writable (object store: access is its policy)")
    if actual & 0o077:
        return Finding(
            what,
            False,
            f"files under {where} come out {actual:04o} (CRUST_FILE_MODE={mode:04o}): others "
            "could read personal data; unset CRUST_FILE_MODE or set it to 0600",
        )
    return Finding(what, True, f"{where} is writable; files come out {actual:04o} (owner only)")


def open_instance() -> tuple[Finding, dg.DagsterInstance | None]:
    """The instance DAGSTER_HOME names: persistent, and its storage has concurrency pools."""
    import dagster as dg

    from crust_assets.defs.pools import PLANNER_POOL

    what = "Dagster instance"
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        text = (
            "DAGSTER_HOME is not set: `dagster dev` would keep runs, sensor state and job ids "
            "in a temporary directory removed when it stops; export DAGSTER_HOME=<a directory>"
        )
        return Finding(what, False, text), None
    try:
        instance = dg.DagsterInstance.get()
    except Exception as error:  # any load error is the user's to see, in one line
        return Finding(what, False, f"{home} does not load: {error}"), None
    if instance.is_ephemeral:
        return Finding(what, False, f"{home}: the instance is ephemeral; use a persistent one"), (
            instance
        )
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        text = (
            f"{home}: {type(storage).__name__} has no concurrency pools (the planner pool "
            f"{PLANNER_POOL} needs them); use the default SQLite or Postgres storage"
        )
        return Finding(what, False, text), instance
    text = f"{home}: persistent, {type(storage).__name__}, concurrency pools supported"
    return Finding(what, True, text), instance


def instigator_on(instance: dg.DagsterInstance, name: str, *, on_by_default: bool) -> bool:
    """Whether a sensor or schedule is on, as the instance records it (else its code default)."""
    from dagster._core.scheduler.instigation import InstigatorStatus

    if instance.schedule_storage is None:  # an in-memory instance records no states
        return on_by_default
    states = [s for s in instance.all_instigator_state() if s.instigator_name == name]
    if not states or all(s.status == InstigatorStatus.DECLARED_IN_CODE for s in states):
        return on_by_default
    return any(
        s.status in (InstigatorStatus.RUNNING, InstigatorStatus.AUTOMATICALLY_RUNNING)
        for s in states
    )


def check_sensors(instance: dg.DagsterInstance) -> list[Finding]:
    """The submitter must be on; the schedule and the file sensor are reported as they are."""
    import dagster as dg

    from crust_assets.defs.schedules import daily_contact_enrichment_schedule
    from crust_assets.defs.sensors import contact_enrichment_sensor, contact_url_list_file_sensor

    running = dg.DefaultSensorStatus.RUNNING
    submitter = instigator_on(
        instance, SUBMITTER, on_by_default=contact_enrichment_sensor.default_status == running
    )
    schedule = instigator_on(
        instance,
        SCHEDULE,
        on_by_default=daily_contact_enrichment_schedule.default_status
        == dg.DefaultScheduleStatus.RUNNING,
    )
    files = instigator_on(
        instance, FILE_SENSOR, on_by_default=contact_url_list_file_sensor.default_status == running
    )
    first = (
        Finding("submitter", True, f"{SUBMITTER} is on")
        if submitter
        else Finding(
            "submitter",
            False,
            f"{SUBMITTER} is stopped: no job is submitted; start it in the UI (Automation) or "
            f"with `dagster sensor start {SUBMITTER}`",
        )
    )
    starts = f"{SCHEDULE} {'on' if schedule else 'off'}, {FILE_SENSOR} {'on' if files else 'off'}"
    if not (schedule or files):
        starts += " (days start only when launched from the UI)"
    return [first, Finding("starts", True, starts)]


def check_input(layout: DataLayout, today: date) -> Finding:
    """Today's list, where the schedule and the file sensor look for it."""
    path = layout.input_file(today.isoformat())
    where = layout.url(path)
    if layout.is_file(path):
        return Finding("today's input", True, f"{where} ({layout.size(path)} bytes)")
    return Finding(
        "today's input", False, f"{where} is missing: the schedule would skip today; put it there"
    )


def run_doctor(data_dir: str, today: date) -> list[Finding]:
    """Every check, in the order a first run meets them; resources resolved as a run does."""
    import dagster as dg

    from crust_assets.defs.resources import DataRoot, build_resources
    from crust_assets.storage import DataLayout

    with dg.build_resources({"crustdata": build_resources()["crustdata"]}) as built:
        findings = [check_key(built.crustdata)]
    layout = DataLayout.from_location(DataRoot(data_dir=data_dir).data_dir)
    findings.append(check_data_root(layout))
    found, instance = open_instance()
    findings.append(found)
    if instance is None:
        findings.append(Finding("submitter", False, "unknown: no persistent instance to read"))
    else:
        try:
            findings += check_sensors(instance)
        except ImportError as error:  # the code location itself does not load
            findings.append(Finding("submitter", False, f"the code does not load: {error}"))
        finally:
            instance.dispose()
    findings.append(check_input(layout, today))
    return findings
