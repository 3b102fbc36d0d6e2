"""The pipeline as a Dagster Component: one copy per `defs.yaml`, with its own key prefix.

`dg scaffold defs crust_assets.components.CrustdataEnrichmentComponent enrich` writes a
`defs.yaml` with every attribute documented. Each copy gets its own asset keys
(`<prefix>/enriched_contacts`), job, sensor, schedule, pool and resource names
(`<prefix>_...`, see `crust_assets.names`), its own data root and its own API key; two copies
on the same key refuse to load (`crust_assets.components.api_keys`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
import yaml
from pydantic import Field

from crust_assets.components.api_keys import fingerprints, key_reference, shared_key_error
from crust_assets.defaults import (
    DEFAULT_CREDIT_BUDGET,
    DEFAULT_DATA_DIR,
    DEFAULT_REENRICH_WINDOW_DAYS,
)
from crust_assets.defs.pipeline import PipelineOptions, build_pipeline
from crust_assets.defs.resources import (
    DEFAULT_FIELDS,
    CrustdataResource,
    DataRoot,
    EnrichmentSettings,
)
from crust_assets.names import DEFAULT_GROUP, Names

TYPE_NAME = "CrustdataEnrichmentComponent"

DEFS_YAML = """\
type: {type_name}
attributes:
  # Every asset key of this copy starts with it (<prefix>/enriched_contacts), and every job,
  # sensor, schedule, pool and resource name with <prefix>_. Lower case, digits, underscores.
  key_prefix: {prefix}
  # The asset group in the UI.
  group: {group}
  # The first day that is a partition (one partition per input list date).
  partitions_start_date: "2026-01-01"
  # Input lists (<data_dir>/input/<YYYY-MM-DD>.csv) and the warehouse: a path or s3:// URL.
  data_dir: data/{prefix}
  # The API fields bought, comma-separated (business_email, personal_contact_info, ...).
  fields: {fields}
  # A day whose worst-case cost in credits is above this is refused.
  credit_budget: {credit_budget}
  # URLs enriched more recently than this many days are reused, not bought again.
  reenrich_window_days: {reenrich_window_days}
  # This copy's Crustdata key, read from the environment at run time (the UI shows the
  # variable's name). Leave it out to use the local emulator. Two copies may not share a key.
  api_key: "{{{{ env.CRUSTDATA_API_KEY }}}}"
  # The daily 06:00 UTC schedule, and the sensor that starts a day when its list lands: both
  # spend credits, so both are off until turned on here (or in the UI).
  schedule_on: false
  file_sensor_on: false
"""


def _key_template(context: dg.ResolutionContext, raw: str | None) -> str | None:
    """The attribute as written: `{{ env.NAME }}` is not resolved into the component, so the key
    never sits in it; build_defs turns it into `dg.EnvVar(NAME)` (`key_reference`)."""
    del context
    return raw


class CrustdataEnrichmentScaffolder(dg.Scaffolder):
    """Writes a documented `defs.yaml`, the prefix taken from the folder's name."""

    def scaffold(self, request: dg.ScaffoldRequest) -> None:
        target = Path(request.target_path)
        target.mkdir(parents=True, exist_ok=True)
        prefix = "".join(c if c.isalnum() else "_" for c in target.name.lower()) or "crust"
        (target / "defs.yaml").write_text(defs_yaml(request.type_name, prefix), encoding="utf-8")


def defs_yaml(type_name: str, prefix: str, group: str = DEFAULT_GROUP) -> str:
    """The scaffolded `defs.yaml` of one copy: every attribute documented, at its default."""
    return DEFS_YAML.format(
        type_name=type_name,
        prefix=prefix,
        group=group,
        fields=DEFAULT_FIELDS,
        credit_budget=DEFAULT_CREDIT_BUDGET,
        reenrich_window_days=DEFAULT_REENRICH_WINDOW_DAYS,
    )


@dg.scaffold_with(CrustdataEnrichmentScaffolder)
class CrustdataEnrichmentComponent(dg.Component, dg.Resolvable, dg.Model):
    """Crustdata contact enrichment of daily profile-URL lists: plan, submit (one submitter per
    API key), load, coverage, latest, DuckDB views and the per-line list, under a key prefix."""

    key_prefix: str = Field(description="First element of every asset key; <prefix>_ names.")
    group: str = Field(default=DEFAULT_GROUP, description="The asset group.")
    partitions_start_date: str = Field(
        default="2026-01-01", description="The first daily partition (YYYY-MM-DD)."
    )
    data_dir: str = Field(
        default=DEFAULT_DATA_DIR, description="Input lists and warehouse (path or URL)."
    )
    fields: str = Field(default=DEFAULT_FIELDS, description="API fields, comma-separated.")
    credit_budget: int = Field(
        default=DEFAULT_CREDIT_BUDGET, description="Worst-case credits allowed per day."
    )
    reenrich_window_days: int = Field(
        default=DEFAULT_REENRICH_WINDOW_DAYS, description="Days a URL's row is reused."
    )
    api_key: Annotated[
        str | None,
        dg.Resolver(_key_template, model_field_type=str, inject_before_resolve=False),
    ] = Field(default=None, description="'{{ env.NAME }}'; none: the local emulator.")
    base_url: str | None = Field(
        default=None, description="The API's base URL; default: the real API with a key."
    )
    schedule_on: bool = Field(default=False, description="The daily schedule starts on.")
    file_sensor_on: bool = Field(default=False, description="The new-list sensor starts on.")

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        names = Names(self.key_prefix, self.group)
        siblings = list(sibling_copies(Path(context.defs_module_path)))
        keys = {prefix: key for prefix, key, _ in siblings} | {self.key_prefix: self.api_key}
        if error := shared_key_error(self.key_prefix, fingerprints(keys.items())):
            raise ValueError(error)
        dirs = {prefix: data_dir for prefix, _, data_dir in siblings}
        if error := shared_data_dir_error(self.key_prefix, dirs | {self.key_prefix: self.data_dir}):
            raise ValueError(error)
        resources = {
            "crustdata": CrustdataResource(
                api_key=key_reference(self.api_key), base_url=self.base_url
            ),
            "enrichment": EnrichmentSettings(
                fields=self.fields,
                credit_budget=self.credit_budget,
                reenrich_window_days=self.reenrich_window_days,
            ),
            "data_root": DataRoot(data_dir=self.data_dir),
        }
        options = PipelineOptions(
            partitions=dg.DailyPartitionsDefinition(
                start_date=self.partitions_start_date, end_offset=1
            ),
            schedule_on=self.schedule_on,
            file_sensor_on=self.file_sensor_on,
            data_dir=self.data_dir,
        )
        return build_pipeline(names, resources, options)


def shared_data_dir_error(prefix: str, data_dirs: dict[str, str]) -> str | None:
    """Why the copy `prefix` must not load: another copy writes the same data dir (its plans
    and warehouse files would overwrite each other's), or None."""
    mine = data_dirs[prefix].rstrip("/")
    others = sorted(p for p, d in data_dirs.items() if p != prefix and d.rstrip("/") == mine)
    if not others:
        return None
    return (
        f"crust_assets copies {', '.join(repr(p) for p in sorted([prefix, *others]))} use the "
        f"same data_dir {mine!r}: give each copy its own."
    )


def sibling_copies(defs_root: Path) -> Iterator[tuple[str, str | None, str]]:
    """(key_prefix, raw api_key, data_dir) of every copy of this component declared in a `defs.yaml`
    under the project's defs folder, this one included."""
    for path in sorted(defs_root.rglob("defs.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not isinstance(document, dict):
                continue
            kind = str(document.get("type", ""))
            if kind != TYPE_NAME and not kind.endswith(f".{TYPE_NAME}"):
                continue
            attributes: dict[str, Any] = document.get("attributes") or {}
            prefix = str(attributes.get("key_prefix", ""))
            yield (
                prefix,
                attributes.get("api_key"),
                str(attributes.get("data_dir", DEFAULT_DATA_DIR)),
            )
