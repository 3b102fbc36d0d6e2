"""Every name one copy of the pipeline gives Dagster, derived from one key prefix.

A project may hold several copies (another team, another API account), each with a prefix:
asset keys gain it as their first path element (`sales/enriched_contacts`), and job, sensor,
schedule, pool and resource names gain `<prefix>_`. The empty prefix gives the names the code
location has always had, so existing instances keep their history.

The code that looks things up in the instance by name (the submitter's job events, the load
runs, the plan gates, the spend) runs deep inside plain functions called from several places.
Rather than thread a `Names` through every one of them, each asset, check, sensor and schedule
body of a copy runs inside `using(its_names)` (the factory's closure sets it), and those
functions ask `current()`. Outside any body (a test, a CLI) `current()` is the default copy.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import dagster as dg

PREFIX_PATTERN = re.compile(r"^(?:[a-z][a-z0-9_]{0,39})?$")
DEFAULT_GROUP = "contact_enrichment"


@dataclass(frozen=True)
class Names:
    """The names of one copy of the pipeline; `Names()` is the unprefixed code location."""

    prefix: str = ""
    group: str = DEFAULT_GROUP

    def __post_init__(self) -> None:
        if not PREFIX_PATTERN.match(self.prefix):
            raise ValueError(
                f"key prefix {self.prefix!r} must be empty or lower-case letters, digits and "
                "underscores, starting with a letter (at most 40)"
            )

    def name(self, base: str) -> str:
        """A job, sensor, schedule, pool or resource name."""
        return f"{self.prefix}_{base}" if self.prefix else base

    def key(self, base: str) -> dg.AssetKey:
        return dg.AssetKey([self.prefix, base]) if self.prefix else dg.AssetKey(base)

    # ---- asset keys ----------------------------------------------------------------------
    @property
    def url_list_key(self) -> dg.AssetKey:
        return self.key("contact_url_list")

    @property
    def batch_key(self) -> dg.AssetKey:
        return self.key("contact_enrichment_batch")

    @property
    def contacts_key(self) -> dg.AssetKey:
        return self.key("enriched_contacts")

    @property
    def coverage_key(self) -> dg.AssetKey:
        return self.key("contact_coverage")

    @property
    def latest_key(self) -> dg.AssetKey:
        return self.key("contacts_latest")

    @property
    def duckdb_key(self) -> dg.AssetKey:
        return self.key("contacts_duckdb")

    @property
    def list_key(self) -> dg.AssetKey:
        return self.key("enriched_list")

    # ---- jobs, sensors, schedule, pools ----------------------------------------------------
    @property
    def plan_job(self) -> str:
        return self.name("plan_contact_enrichment")

    @property
    def load_job(self) -> str:
        return self.name("load_enriched_contacts")

    @property
    def submitter_sensor(self) -> str:
        return self.name("contact_enrichment_sensor")

    @property
    def file_sensor(self) -> str:
        return self.name("contact_url_list_file_sensor")

    @property
    def automation_sensor(self) -> str:
        return self.name("contact_automation_sensor")

    @property
    def freshness_sensor(self) -> str:
        return self.name("enriched_contacts_freshness_sensor")

    @property
    def schedule(self) -> str:
        return self.name("daily_contact_enrichment_schedule")

    @property
    def planner_pool(self) -> str:
        return self.name("crustdata_planner")

    @property
    def downloads_pool(self) -> str:
        return self.name("crustdata_downloads")

    # ---- resource keys ---------------------------------------------------------------------
    @property
    def crustdata(self) -> str:
        return self.name("crustdata")

    @property
    def enrichment(self) -> str:
        return self.name("enrichment")

    @property
    def data_root(self) -> str:
        return self.name("data_root")

    @property
    def tables_io_manager(self) -> str:
        return self.name("contact_tables_io_manager")


DEFAULT_NAMES = Names()
_CURRENT: ContextVar[Names] = ContextVar("crust_assets_names", default=DEFAULT_NAMES)


def current() -> Names:
    """The names of the copy whose body is running (the default copy outside any)."""
    return _CURRENT.get()


@contextlib.contextmanager
def using(names: Names) -> Iterator[Names]:
    """Run a body of the copy named `names`: look-ups by name inside it use these names."""
    token = _CURRENT.set(names)
    try:
        yield names
    finally:
        _CURRENT.reset(token)
