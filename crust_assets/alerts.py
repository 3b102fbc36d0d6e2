"""The words of an alert, made safe to post: no secret, no contact value, no pre-signed URL.

A Slack channel is read by more people than the pipeline's data, and an error text can quote
what it failed on: a key echoed by a careless server, a pre-signed download URL, a person's
e-mail or profile. Every text that leaves for Slack goes through `safe_text`; the messages say
what failed, where, and name the partition, never the data. Pure: no Slack, no Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from crust_assets.crustdata.redact import SecretScrubber

MAX_CHARS = 600
#: Variables whose values no alert may contain, read when the alert is written (they may be
#: rotated): the API key, the webhook URL and the receiver's own token, the Slack token.
SECRET_ENVS = ("CRUSTDATA_API_KEY", "CRUST_WEBHOOK_URL", "CRUST_WEBHOOK_TOKEN", "SLACK_TOKEN")

# Contact values. A profile URL may come without its scheme, JSON-escaped or percent-encoded.
_SLASH = r"(?:/|\\/|%2F)"
_PROFILE = re.compile(
    rf"(?:https?:{_SLASH}{_SLASH})?(?:[\w-]+\.)?linkedin\.com{_SLASH}in{_SLASH}[^\s'\"<>,;)]+",
    re.I,
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w.:-])\+?\d[\d ().\-]{7,}\d(?![\w.:-])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def env_secrets(environ: Mapping[str, str]) -> list[str | None]:
    """The secret values `environ` holds (see SECRET_ENVS), for `safe_text`."""
    return [environ.get(name) for name in SECRET_ENVS]


def _phone(match: re.Match[str]) -> str:
    """A run of 9+ digits with phone punctuation; a date (and what follows it) is not one."""
    text = match.group(0)
    if _DATE.search(text) or sum(c.isdigit() for c in text) < 9:
        return text
    return "<phone>"


def safe_text(text: str, secrets: Iterable[str | None] = (), limit: int = MAX_CHARS) -> str:
    """`text` on one line, secrets masked as ***, contact values and URL queries replaced.

    The secrets and credentials go through the client's own scrubber (`SecretScrubber`, which
    also applies `redact_text`), so a case fixed there is fixed here: one implementation."""
    out = SecretScrubber(*secrets).text(text)
    out = _EMAIL.sub("<email>", out)
    out = _PROFILE.sub("<profile URL>", out)
    out = _PHONE.sub(_phone, out)
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def run_failure_message(
    job: str, run_id: str, partition: str | None, error: str, secrets: Iterable[str | None]
) -> str:
    where = f" for {partition}" if partition else ""
    return f":red_circle: Run {run_id[:8]} of {job}{where} failed: {safe_text(error, secrets)}"


def check_failure_message(
    asset: str, check: str, partition: str | None, text: str, secrets: Iterable[str | None]
) -> str:
    where = f"[{partition}]" if partition else ""
    return f":warning: Check {check} of {asset}{where} failed: {safe_text(text, secrets)}"


def tick_failure_message(sensor: str, when: str, error: str, secrets: Iterable[str | None]) -> str:
    return f":red_circle: Sensor {sensor} failed its tick at {when}: {safe_text(error, secrets)}"


def reminder_message(subject: str, since: str, when: str, text: str) -> str:
    """A condition still holding, one reminder interval after it was last posted."""
    return f":repeat: {subject} still failing since {since} (again at {when}): {text}"


def cleared_message(subject: str, since: str, when: str) -> str:
    """The end of a posted condition: the first outcome that did not fail."""
    return f":large_green_circle: {subject} no longer failing at {when} (failing since {since})"
