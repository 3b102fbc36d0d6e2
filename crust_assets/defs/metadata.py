"""Materialisation metadata shared by the assets: what the UI shows a user about a table."""

from collections.abc import Mapping

import dagster as dg
import pyarrow as pa

from crust_assets.defs.catalog_tags import column_tags
from crust_assets.table import COLUMN_DESCRIPTIONS, ENRICHED_CONTACTS_SCHEMA, FillStats


def column_schema(*, with_date: bool = False) -> dg.TableSchema:
    """The contract as a Dagster `TableSchema` (the UI's column list)."""
    schema: pa.Schema = ENRICHED_CONTACTS_SCHEMA
    columns = [
        dg.TableColumn(
            name=field.name,
            type=str(field.type),
            description=COLUMN_DESCRIPTIONS.get(field.name),
            constraints=dg.TableColumnConstraints(nullable=field.nullable),
            tags=column_tags(field.name),
        )
        for field in schema
    ]
    if with_date:
        columns.append(dg.TableColumn("date", "string", "The partition the row came from."))
    return dg.TableSchema(columns=columns)


def fill_rate_metadata(stats: FillStats) -> dict[str, float | int]:
    """One number per field: share of rows with a value, among rows that asked for it."""
    out: dict[str, float | int] = {}
    for name, rate in stats.fill_rates().items():
        if rate is not None:
            out[f"fill_rate_{name}"] = round(rate, 4)
    if stats.rows:
        out["match_rate"] = round(stats.matched / stats.rows, 4)
    return out


def markdown_counts(counts: Mapping[str, int], label: str) -> str:
    if not counts:
        return "none"
    lines = [f"| {label} | count |", "| --- | ---: |"]
    lines += [
        f"| {key} | {value} |" for key, value in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
    return "\n".join(lines)


BARS = " ▁▂▃▄▅▆▇█"


def _bar(rate: float | None, width: int = 20) -> str:
    """A fill rate as a bar of block characters: trends read better as pictures than digits."""
    if rate is None:
        return "n/a"
    full = int(rate * width)
    partial = BARS[int((rate * width - full) * (len(BARS) - 1))] if full < width else ""
    return "█" * full + partial.strip() + f" {rate:.0%}"


def coverage_trend_markdown(rows: list[dict]) -> str:
    """Fill rates per partition, newest last, as a markdown table of bars (shown in the UI)."""
    if not rows:
        return "no partitions yet"
    lines = [
        "| date | profiles | matched | business emails | personal emails | phones | credits |",
        "| --- | ---: | --- | --- | --- | --- | ---: |",
    ]
    for row in sorted(rows, key=lambda r: r["date"])[-60:]:
        matched = row["matched"] / row["requested"] if row["requested"] else None
        lines.append(
            f"| {row['date']} | {row['requested']} | {_bar(matched)} "
            f"| {_bar(row['business_emails_fill_rate'])} "
            f"| {_bar(row['personal_emails_fill_rate'])} "
            f"| {_bar(row['phone_numbers_fill_rate'])} | {row['credits']} |"
        )
    return "\n".join(lines)
