"""Resources: the Crustdata API, the enrichment settings and the data root, all fed by env vars.

Values come through `dg.EnvVar` so that the UI's resource page shows the variable's *name*, never
its value: the API key must not be displayed anywhere.
"""

import os
from collections.abc import Sequence
from typing import Any

import dagster as dg
from pydantic import Field

from crust_assets.crustdata import DEFAULT_BASE_URL, FIELDS, CrustdataClient, DownloadLimits
from crust_assets.crustdata.limits import LIMIT_SETTINGS, host_patterns
from crust_assets.defaults import (
    DATA_DIR_ENV,
    DEFAULT_CREDIT_BUDGET,
    DEFAULT_DATA_DIR,
    DEFAULT_REENRICH_WINDOW_DAYS,
    EMULATOR_BASE_URL,
)
from crust_assets.lifecycle.settings import (
    API_DOWN_ALERT_MINUTES,
    MAX_JOB_ATTEMPTS,
    PAUSE_SECONDS,
    PLAN_WAIT_ALERT_HOURS,
    RETRY_COOLDOWN_SECONDS,
    LifecycleSettings,
)
from crust_assets.load_retry import (
    DEFAULT_LOAD_RETRY_MAX_SECONDS,
    DEFAULT_LOAD_RETRY_SECONDS,
    DEFAULT_MAX_LOAD_ATTEMPTS,
    LoadRetryPolicy,
)
from crust_assets.storage import DataLayout
from crust_assets.tables_io import ContactTablesIOManager
from crust_assets.url_lists import DEFAULT_INPUT_MAX_BYTES, DEFAULT_INPUT_MAX_ROWS, InputLimits

# Sent to the emulator when no key is configured: it accepts any non-empty key then.
EMULATOR_PLACEHOLDER_KEY = "local-emulator"
DEFAULT_FIELDS = "business_email,personal_contact_info"


def env_or(name: str, default: object) -> object:
    """`dg.EnvVar(name)` when the variable is set, else the default (EnvVar has no default)."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def env_int_or(name: str, default: int) -> object:
    return dg.EnvVar.int(name) if os.environ.get(name) else default


def env_float_or(name: str, default: float) -> float:
    """A positive number read when the code location loads (`dg.EnvVar` has no float form)."""
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{name} must be a number above 0; got {raw!r}")
    return value


_LIMITS = DownloadLimits()
#: `CrustdataResource` field -> `DownloadLimits` field; the env var of each is in LIMIT_SETTINGS.
_LIMIT_FIELDS = {
    "download_max_bytes": "max_bytes",
    "download_max_decompressed_bytes": "max_decompressed_bytes",
    "result_max_line_bytes": "max_line_bytes",
    "result_max_lines": "max_lines",
    "download_deadline_seconds": "deadline_seconds",
    "download_part_attempts": "part_attempts",
    "download_max_redirects": "max_redirects",
}


def _limit_field(limit: str, what: str) -> Any:
    """A download limit of `CrustdataResource`: the client's default, its env var named."""
    env = LIMIT_SETTINGS[limit][0]
    return Field(default=int(getattr(_LIMITS, limit)), description=f"env {env}: {what}")


def download_settings() -> dict[str, object]:
    """The download limits of `CrustdataResource`, each from its env var when that is set."""
    settings = {
        name: env_int_or(LIMIT_SETTINGS[limit][0], int(getattr(_LIMITS, limit)))
        for name, limit in _LIMIT_FIELDS.items()
    }
    settings["download_hosts"] = env_or("CRUST_DOWNLOAD_HOSTS", None)
    return settings


def env_flag(name: str) -> bool:
    """A yes/no setting (`dg.EnvVar` has no bool form): true, 1, yes or on mean yes."""
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class CrustdataResource(dg.ConfigurableResource):
    """The Crustdata batch API: the real one when a key is set, the local emulator otherwise."""

    # repr=False: the resolved resource (inside a run) must never print the key in a repr,
    # an exception text or a log line.
    api_key: str | None = Field(default=None, description="env CRUSTDATA_API_KEY", repr=False)
    base_url: str | None = Field(
        default=None,
        description="env CRUSTDATA_BASE_URL; default: real API with a key, emulator without",
    )
    timeout_seconds: float = Field(default=20.0, description="Read timeout of one API call.")
    max_attempts: int = Field(
        default=4, description="Attempts per call on 5xx/connection/rate limit."
    )
    max_retry_seconds: float = Field(default=15.0, description="Retry budget per call, in seconds.")

    download_max_bytes: int = _limit_field(
        "max_bytes", "bytes read of one result part (compressed)"
    )
    download_max_decompressed_bytes: int = _limit_field(
        "max_decompressed_bytes", "bytes of one part once unzipped"
    )
    result_max_line_bytes: int = _limit_field("max_line_bytes", "longest line of a result part")
    result_max_lines: int = _limit_field("max_lines", "lines (blank ones too) of one result part")
    download_deadline_seconds: int = _limit_field(
        "deadline_seconds", "time for one part, retries included"
    )
    download_part_attempts: int = _limit_field(
        "part_attempts", "downloads of a part that arrives broken"
    )
    download_max_redirects: int = _limit_field("max_redirects", "redirect hops of one download")
    download_hosts: str | None = Field(
        default=None,
        description="env CRUST_DOWNLOAD_HOSTS: comma-separated hosts (or *.suffix) downloads "
        "may reach; unset = any public https host",
    )
    # The same value as EnrichmentSettings.webhook_url: its path holds the receiver's token, so
    # every client of this resource masks it (a load run's, not only the submitting sensor's).
    webhook_url: str | None = Field(
        default=None,
        description="env CRUST_WEBHOOK_URL: masked, like the key, in every server text",
        repr=False,
    )

    def download_limits(self) -> DownloadLimits:
        values: dict[str, Any] = {
            limit: getattr(self, name) for name, limit in _LIMIT_FIELDS.items()
        }
        values["deadline_seconds"] = float(values["deadline_seconds"])
        return DownloadLimits(**values, allowed_hosts=host_patterns(self.download_hosts))

    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        return DEFAULT_BASE_URL if self.api_key else EMULATOR_BASE_URL

    @property
    def uses_emulator(self) -> bool:
        return not self.api_key

    def client(
        self,
        *,
        timeout: float | None = None,
        max_retry_seconds: float | None = None,
        secrets: Sequence[str | None] = (),
    ) -> CrustdataClient:
        """A new client; close it (or use `with`) when done. The key stays inside it.

        The configured webhook URL and any other `secrets` are masked, like the key, in any
        server text the client turns into exceptions or values."""
        return CrustdataClient(
            self.api_key or EMULATOR_PLACEHOLDER_KEY,
            self.resolved_base_url(),
            timeout=self.timeout_seconds if timeout is None else timeout,
            max_attempts=self.max_attempts,
            max_retry_seconds=(
                self.max_retry_seconds if max_retry_seconds is None else max_retry_seconds
            ),
            secrets=(self.webhook_url, *secrets),
            download_limits=self.download_limits(),
        )


class EnrichmentSettings(dg.ConfigurableResource):
    """What to ask for and how much may be spent."""

    fields: str = Field(
        default=DEFAULT_FIELDS,
        description="env CRUST_FIELDS: comma-separated API fields (default: all contact fields)",
    )
    credit_budget: int = Field(
        default=DEFAULT_CREDIT_BUDGET,
        description="env CRUST_CREDIT_BUDGET: refuse a partition whose worst-case cost is above",
    )
    monthly_credit_budget: int | None = Field(
        default=None,
        description="env CRUST_MONTHLY_CREDIT_BUDGET: refuse a plan that could take the UTC "
        "calendar month's credits (bought by completed jobs plus the worst case of running "
        "plans) above it; unset = no limit",
    )
    reenrich_window_days: int = Field(
        default=DEFAULT_REENRICH_WINDOW_DAYS,
        description="env CRUST_REENRICH_WINDOW_DAYS: URLs enriched more recently are not re-bought",
    )
    max_job_attempts: int = Field(
        default=MAX_JOB_ATTEMPTS,
        description="env CRUST_MAX_JOB_ATTEMPTS: submits of a job the API reports failed",
    )
    retry_cooldown_seconds: int = Field(
        default=RETRY_COOLDOWN_SECONDS,
        description="env CRUST_RETRY_COOLDOWN_SECONDS: wait before resubmitting",
    )
    max_load_attempts: int = Field(
        default=DEFAULT_MAX_LOAD_ATTEMPTS,
        description="env CRUST_MAX_LOAD_ATTEMPTS: enriched_contacts runs the sensor requests "
        "for one plan when they fail before loading",
    )
    load_retry_seconds: int = Field(
        default=int(DEFAULT_LOAD_RETRY_SECONDS),
        description="env CRUST_LOAD_RETRY_SECONDS: wait after the first failed load, doubling",
    )
    load_retry_max_seconds: int = Field(
        default=int(DEFAULT_LOAD_RETRY_MAX_SECONDS),
        description="env CRUST_LOAD_RETRY_MAX_SECONDS: the longest wait between load attempts",
    )
    refusal_pause_seconds: int = Field(
        default=int(PAUSE_SECONDS),
        description="env CRUST_REFUSAL_PAUSE_SECONDS: after the API refuses the key (401) or "
        "access (403), the sensor stops submitting (and, for the key, polling) this long",
    )
    api_down_alert_minutes: float = Field(
        default=API_DOWN_ALERT_MINUTES,
        description="env CRUST_API_DOWN_ALERT_MINUTES: the submitter's ticks fail once the API "
        "has not answered this long while there is work for it",
    )
    plan_wait_alert_hours: float = Field(
        default=PLAN_WAIT_ALERT_HOURS,
        description="env CRUST_PLAN_WAIT_ALERT_HOURS: the submitter's ticks fail while a plan "
        "made this long ago still waits for its jobs or for the plans it borrowed from",
    )
    tick_budget_seconds: float = Field(
        default=20.0, description="Work per sensor tick, well under Dagster's 60 s tick limit."
    )
    allow_reenrich_erased: bool = Field(
        default=False,
        description="env CRUST_ALLOW_REENRICH_ERASED: submit URLs erased with `crust-assets "
        "forget` again (default: skipped)",
    )
    input_max_bytes: int = Field(
        default=DEFAULT_INPUT_MAX_BYTES,
        description="env CRUST_INPUT_MAX_BYTES: a larger input list is refused before it is read",
    )
    input_max_rows: int = Field(
        default=DEFAULT_INPUT_MAX_ROWS,
        description="env CRUST_INPUT_MAX_ROWS: an input list with more rows is refused",
    )
    url_column: str | None = Field(
        default=None,
        description="env CRUST_URL_COLUMN: the input's URL column (default profile_url, or an "
        "alias such as linkedin_url)",
    )
    export_csv: bool = Field(
        default=True,
        description="env CRUST_EXPORT_CSV: write <date>.enriched.csv beside enriched_list",
    )

    webhook_url: str | None = Field(
        default=None,
        description="env CRUST_WEBHOOK_URL: where `crust-assets webhook` listens, token included; "
        "jobs are submitted with it and a callback makes the sensor poll at once",
    )

    def load_retry_policy(self) -> LoadRetryPolicy:
        return LoadRetryPolicy(
            max_attempts=self.max_load_attempts,
            first_backoff_seconds=self.load_retry_seconds,
            max_backoff_seconds=self.load_retry_max_seconds,
        )

    def lifecycle_settings(self, call_timeout_seconds: float) -> LifecycleSettings:
        """The submitter's limits, with the read timeout its client really has."""
        return LifecycleSettings(
            max_job_attempts=self.max_job_attempts,
            retry_cooldown_seconds=self.retry_cooldown_seconds,
            call_timeout_seconds=call_timeout_seconds,
            load_policy=self.load_retry_policy(),
            pause_seconds=self.refusal_pause_seconds,
            api_down_alert_minutes=self.api_down_alert_minutes,
            plan_wait_alert_hours=self.plan_wait_alert_hours,
        )

    def input_limits(self) -> InputLimits:
        return InputLimits(max_bytes=self.input_max_bytes, max_rows=self.input_max_rows)

    def api_fields(self) -> list[str]:
        """The configured fields, validated so a typo fails at planning, not at submit."""
        values = [f.strip() for f in self.fields.split(",") if f.strip()]
        unknown = [f for f in values if f not in FIELDS]
        if not values or unknown:
            raise dg.Failure(
                description=(
                    f"CRUST_FIELDS must be a comma-separated subset of {', '.join(FIELDS)}; "
                    f"got {self.fields!r}"
                )
            )
        return list(dict.fromkeys(values))


class DataRoot(dg.ConfigurableResource):
    """The data root (env CRUST_DATA_DIR, default `data/`): input lists and the warehouse.

    A local directory, or an fsspec URL such as `s3://bucket/prefix` (s3fs; credentials and
    endpoint from the standard AWS env vars, e.g. AWS_ENDPOINT_URL for an S3-compatible store).
    """

    data_dir: str = Field(
        default=DEFAULT_DATA_DIR, description="env CRUST_DATA_DIR (path or s3:// URL)"
    )

    def layout(self) -> DataLayout:
        return DataLayout.from_location(self.data_dir)


def build_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources from the environment, read when the code location loads."""
    webhook_url = env_or("CRUST_WEBHOOK_URL", None)
    return {
        "crustdata": CrustdataResource(
            api_key=env_or("CRUSTDATA_API_KEY", None),  # type: ignore[arg-type]
            base_url=env_or("CRUSTDATA_BASE_URL", None),  # type: ignore[arg-type]
            webhook_url=webhook_url,  # type: ignore[arg-type]
            **download_settings(),
        ),
        "enrichment": EnrichmentSettings(
            fields=env_or("CRUST_FIELDS", DEFAULT_FIELDS),  # type: ignore[arg-type]
            credit_budget=env_int_or("CRUST_CREDIT_BUDGET", DEFAULT_CREDIT_BUDGET),  # type: ignore[arg-type]
            monthly_credit_budget=env_int_or("CRUST_MONTHLY_CREDIT_BUDGET", None),  # type: ignore[arg-type]
            reenrich_window_days=env_int_or(  # type: ignore[arg-type]
                "CRUST_REENRICH_WINDOW_DAYS", DEFAULT_REENRICH_WINDOW_DAYS
            ),
            max_job_attempts=env_int_or("CRUST_MAX_JOB_ATTEMPTS", MAX_JOB_ATTEMPTS),  # type: ignore[arg-type]
            retry_cooldown_seconds=env_int_or(  # type: ignore[arg-type]
                "CRUST_RETRY_COOLDOWN_SECONDS", RETRY_COOLDOWN_SECONDS
            ),
            max_load_attempts=env_int_or("CRUST_MAX_LOAD_ATTEMPTS", DEFAULT_MAX_LOAD_ATTEMPTS),  # type: ignore[arg-type]
            load_retry_seconds=env_int_or(  # type: ignore[arg-type]
                "CRUST_LOAD_RETRY_SECONDS", int(DEFAULT_LOAD_RETRY_SECONDS)
            ),
            load_retry_max_seconds=env_int_or(  # type: ignore[arg-type]
                "CRUST_LOAD_RETRY_MAX_SECONDS", int(DEFAULT_LOAD_RETRY_MAX_SECONDS)
            ),
            allow_reenrich_erased=env_flag("CRUST_ALLOW_REENRICH_ERASED"),
            refusal_pause_seconds=env_int_or("CRUST_REFUSAL_PAUSE_SECONDS", int(PAUSE_SECONDS)),  # type: ignore[arg-type]
            api_down_alert_minutes=env_float_or(
                "CRUST_API_DOWN_ALERT_MINUTES", API_DOWN_ALERT_MINUTES
            ),
            plan_wait_alert_hours=env_float_or(
                "CRUST_PLAN_WAIT_ALERT_HOURS", PLAN_WAIT_ALERT_HOURS
            ),
            input_max_bytes=env_int_or("CRUST_INPUT_MAX_BYTES", DEFAULT_INPUT_MAX_BYTES),  # type: ignore[arg-type]
            input_max_rows=env_int_or("CRUST_INPUT_MAX_ROWS", DEFAULT_INPUT_MAX_ROWS),  # type: ignore[arg-type]
            url_column=env_or("CRUST_URL_COLUMN", None),  # type: ignore[arg-type]
            export_csv=os.environ.get("CRUST_EXPORT_CSV", "true").strip().lower()
            not in ("0", "false", "no", "off"),
            webhook_url=webhook_url,  # type: ignore[arg-type]
        ),
        "data_root": DataRoot(data_dir=env_or(DATA_DIR_ENV, DEFAULT_DATA_DIR)),  # type: ignore[arg-type]
        # Loads the tables into downstream assets (the table assets write their own files).
        "contact_tables_io_manager": ContactTablesIOManager(
            data_dir=env_or(DATA_DIR_ENV, None)  # type: ignore[arg-type]
        ),
    }
