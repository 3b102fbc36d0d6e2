"""Typed views of the batch contact-enrich API's JSON documents.

Models ignore unknown keys (the vendor adds fields over time) and default every
field that the docs only show sometimes, so a new or missing key never breaks a
poll. Field names follow the wire format, except in :class:`ResultRecord`, which
is our own normalised record (both result forms map onto it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "BATCH_ID_PATTERN",
    "FIELDS",
    "FIELD_CREDITS",
    "MAX_URLS_PER_JOB",
    "TERMINAL_STATUSES",
    "BatchStatus",
    "Email",
    "ResultRecord",
    "SubmitResponse",
    "is_batch_id",
    "leaf_fields",
    "max_credits_per_record",
]

#: The most identifiers the endpoint takes in one job: the client refuses more, and the
#: pipeline cuts a plan into jobs of this size.
MAX_URLS_PER_JOB = 300

#: The ``fields`` values the endpoint accepts (any non-empty subset).
FIELDS: tuple[str, ...] = (
    "business_email",
    "personal_contact_info",
    "personal_contact_info.personal_emails",
    "personal_contact_info.phone_numbers",
)

#: Credits charged per record for a delivered, non-empty value of each leaf field.
#: Keys are leaf names; map request ``fields`` to leaves with :func:`leaf_fields`.
FIELD_CREDITS: dict[str, int] = {
    "business_email": 1,
    "personal_emails": 2,
    "phone_numbers": 2,
}

_LEAVES: dict[str, tuple[str, ...]] = {
    "business_email": ("business_email",),
    "personal_contact_info": ("personal_emails", "phone_numbers"),
    "personal_contact_info.personal_emails": ("personal_emails",),
    "personal_contact_info.phone_numbers": ("phone_numbers",),
}

TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed"})

#: A batch id as the API issues it: a UUID in its canonical 8-4-4-4-12 hex form. An id ends up
#: in request paths (``/batch/{id}``) and file names, so anything else (``..``, ``a/b``, a
#: megabyte of text) is refused before it is used. Match with ``fullmatch`` (or
#: :func:`is_batch_id`): ``match`` with ``$`` would accept a trailing newline.
BATCH_ID_PATTERN = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
_SHOWN_ID_CHARS = 40
_ACTIVE_STATUSES: frozenset[str] = frozenset({"pending", "processing"})


def leaf_fields(fields: Iterable[str]) -> frozenset[str]:
    """The :data:`FIELD_CREDITS` keys a request for ``fields`` can deliver.

    ``personal_contact_info`` means both personal emails and phone numbers.
    Unknown names raise ``ValueError``.
    """
    leaves: set[str] = set()
    for field in fields:
        try:
            leaves.update(_LEAVES[field])
        except KeyError:
            raise ValueError(f"unknown field {field!r}; allowed: {', '.join(FIELDS)}") from None
    return frozenset(leaves)


def is_batch_id(value: object) -> bool:
    """True when ``value`` is a string holding exactly one canonical UUID (any hex case)."""
    return isinstance(value, str) and BATCH_ID_PATTERN.fullmatch(value) is not None


def _check_batch_id(value: object) -> object:
    """Pydantic validator body: a non-UUID id is an error naming the field (value only if short)."""
    if isinstance(value, str) and not is_batch_id(value):
        shown = f" {value!r}" if len(value) <= _SHOWN_ID_CHARS else f" ({len(value)} characters)"
        raise ValueError(f"not a UUID (8-4-4-4-12 hex digits):{shown}")
    return value


def max_credits_per_record(fields: Iterable[str]) -> int:
    """Upper bound of credits one record can cost for ``fields`` (every value found)."""
    return sum(FIELD_CREDITS[leaf] for leaf in leaf_fields(fields))


class _ApiModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SubmitResponse(_ApiModel):
    """Answer to ``POST /batch/person/contact/enrich``: the new job's id and first status."""

    batch_id: str
    status: str = "pending"
    entity: str | None = None
    action: str | None = None
    identifier_count: int | None = None
    entities_requested: int | None = None
    status_url: str | None = None

    _batch_id_is_uuid = field_validator("batch_id")(_check_batch_id)


BatchState = Literal["pending", "processing", "completed", "failed"]


class BatchStatus(_ApiModel):
    """Answer to ``GET /batch/{id}`` (and one entry of ``GET /batch``).

    ``download_url``/``download_urls`` are pre-signed and short-lived secrets:
    never log them raw (see :func:`~crust_assets.crustdata.redact.redact_url`);
    the model's repr masks their query strings.
    """

    batch_id: str
    status: BatchState | str
    entity: str | None = None
    action: str | None = None
    identifier_count: int | None = None
    result_count: int | None = None
    entities_requested: int | None = None
    entities_fulfilled: int | None = None
    created_at: datetime | None = None
    completed_at: datetime | None = None
    download_url: str | None = Field(default=None, repr=False)
    download_urls: list[str] = Field(default_factory=list, repr=False)
    error_message: str | None = None

    _batch_id_is_uuid = field_validator("batch_id")(_check_batch_id)

    @field_validator("download_urls", mode="before")
    @classmethod
    def _none_is_empty(cls, value: object) -> object:
        # The API sends null until a job completes; [] is easier for callers.
        return [] if value is None else value

    @property
    def is_terminal(self) -> bool:
        """True once the job is ``completed`` or ``failed`` (it will not change again)."""
        return self.status in TERMINAL_STATUSES

    @property
    def is_active(self) -> bool:
        """True while the job holds one of the account's five active-job slots."""
        return self.status in _ACTIVE_STATUSES

    @property
    def part_urls(self) -> list[str]:
        """Result part URLs in order: ``download_urls`` if given, else ``[download_url]``."""
        if self.download_urls:
            return list(self.download_urls)
        return [self.download_url] if self.download_url else []

    @property
    def part_names(self) -> list[str]:
        """File names of the parts (``part-000.jsonl.gz``...), safe to show anywhere."""
        return [part_name(url, i) for i, url in enumerate(self.part_urls)]


def part_name(url: str, index: int) -> str:
    """The last path segment of a part URL (no query string), or ``part-<index>``."""
    try:
        name = urlsplit(url).path.rstrip("/").rpartition("/")[2]
    except ValueError:
        name = ""
    return name or f"part-{index:03d}"


class Email(_ApiModel):
    """One email address with its verification status (deliverable, catch_all, ...)."""

    email: str
    status: str | None = None


class ResultRecord(_ApiModel):
    """One result line, normalised from either wire form.

    For each contact field: ``None`` = the field is absent from the record (it
    was not requested); ``[]`` = requested, nothing found.
    """

    profile_url: str
    person_id: int | None = None
    business_emails: list[Email] | None = None
    personal_emails: list[Email] | None = None
    phone_numbers: list[str] | None = None
