"""Owners, tags and personal-data marks: what Dagster+ alert policies and the catalog route on.

An alert policy can target an owner or a tag, and the catalog filters on both, so these are the
handles a team uses to hear about its own assets and to find every table that holds personal
data. Owners come from CRUST_OWNERS (read when the code location loads); a wrong entry stops the
load with a message naming it, rather than leaving alerts without anyone to go to.
"""

from __future__ import annotations

import os
import re

OWNERS_ENV = "CRUST_OWNERS"
DOMAIN_TAGS: dict[str, str] = {"domain": "revops"}
PII_TAGS: dict[str, str] = {"pii": "true"}

#: Columns that identify a person or hold their contact data, in any table of the warehouse.
PII_COLUMNS: frozenset[str] = frozenset(
    {
        "profile_url",
        "business_emails",
        "personal_emails",
        "phone_numbers",
        "primary_business_email",
        "crustdata_person_id",
        "raw_value",
    }
)

_EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$")


class OwnersError(ValueError):
    """CRUST_OWNERS holds an entry that is neither an e-mail address nor `team:<name>`."""


def parse_owners(text: str | None) -> list[str]:
    """`team:<name>` or e-mail entries, comma-separated; blanks ignored, each kept once."""
    entries = [entry.strip() for entry in (text or "").split(",") if entry.strip()]
    bad = [e for e in entries if not (_EMAIL.match(e) or (e.startswith("team:") and len(e) > 5))]
    if bad:
        raise OwnersError(
            f"{OWNERS_ENV}: {', '.join(repr(b) for b in bad)} is not an owner; use comma-"
            "separated e-mail addresses or team names written team:<name>, "
            "e.g. team:revops,ana@example.com"
        )
    return list(dict.fromkeys(entries))


def asset_owners() -> list[str]:
    """The owners of every asset of this code location, from CRUST_OWNERS (none when unset)."""
    return parse_owners(os.environ.get(OWNERS_ENV))


def asset_tags(*, pii: bool) -> dict[str, str]:
    """`domain: revops` on every asset, plus `pii: true` on those holding personal data."""
    return {**DOMAIN_TAGS, **(PII_TAGS if pii else {})}


def column_tags(name: str) -> dict[str, str] | None:
    """`pii: true` for a column that identifies a person or holds their contact data."""
    return dict(PII_TAGS) if name in PII_COLUMNS else None
