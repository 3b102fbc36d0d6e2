"""The two figures, as plain pandas over `enriched_list` (one row per line of a CRM export).

No Dagster here: the functions take the frame the IO manager gives and return a frame, so they
are tested on their own and read like any notebook cell.

Which lines count: those whose person was looked up (`enriched`, `not_found`, and `duplicate`,
which carries the values of the line it repeats). Rejected lines were never submitted, and
`not_delivered` / `erased` lines say nothing about the list's quality.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

LOOKED_UP = ("enriched", "not_found", "duplicate")
CONTACT_FIELDS = ("business_emails", "personal_emails", "phone_numbers")
NO_SOURCE = "(none)"
NO_OWNER = "(none)"


def _filled(values: pd.Series) -> tuple[int, int]:
    """(rows that asked for the field, rows where something was found); null = not asked.

    A list column's values come out as Python lists, and a null as `pd.NA`."""
    asked = [v for v in values.tolist() if isinstance(v, list)]
    return len(asked), sum(1 for v in asked if len(v) > 0)


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def weekly_coverage_by_source(lines: pd.DataFrame) -> pd.DataFrame:
    """Per ISO week (its Monday) and source list: lines looked up, matched, match rate and the
    fill rate of each contact field."""
    looked_up = lines[lines["status"].isin(LOOKED_UP)].copy()
    looked_up["week"] = [week_start(d) for d in looked_up["date"].tolist()]
    looked_up["source"] = looked_up["source"].fillna("").replace("", NO_SOURCE)
    rows = []
    for (week, source), group in looked_up.groupby(["week", "source"], sort=True):
        matched = int(group["matched"].fillna(False).astype(bool).sum())
        row: dict[str, object] = {
            "week": week,
            "source": source,
            "lines": len(group),
            "matched": matched,
            "match_rate": round(matched / len(group), 4),
        }
        for field in CONTACT_FIELDS:
            asked, found = _filled(group[field])
            row[f"{field}_fill_rate"] = round(found / asked, 4) if asked else None
        rows.append(row)
    columns = ["week", "source", "lines", "matched", "match_rate"]
    return pd.DataFrame(rows, columns=[*columns, *(f"{f}_fill_rate" for f in CONTACT_FIELDS)])


def deliverable_emails(lines: pd.DataFrame) -> dict[str, set[str]]:
    """Owner -> the deliverable business emails on that owner's lines."""
    found: dict[str, set[str]] = {}
    owners, emails_per_line = lines["owner"].tolist(), lines["business_emails"].tolist()
    for owner, emails in zip(owners, emails_per_line, strict=True):
        bucket = found.setdefault(owner if isinstance(owner, str) and owner else NO_OWNER, set())
        for email in emails if isinstance(emails, list) else []:
            if email["status"] == "deliverable":
                bucket.add(email["email"])
    return found


def new_deliverable_emails_by_owner(lines: pd.DataFrame, day: dt.date) -> pd.DataFrame:
    """Per CRM owner of `day`'s list: deliverable business emails not already deliverable in the
    previous day's list (any owner's). With no previous day, every one is new."""
    today = lines[lines["date"] == day]
    before = lines[lines["date"] == day - dt.timedelta(days=1)]
    known = set().union(*deliverable_emails(before).values())
    rows = [
        {"owner": owner, "new_deliverable_emails": len(emails - known)}
        for owner, emails in sorted(deliverable_emails(today).items())
    ]
    return pd.DataFrame(rows, columns=["owner", "new_deliverable_emails"])
