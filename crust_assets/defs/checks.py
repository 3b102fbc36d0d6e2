"""Asset checks: what "correct" means for enriched_contacts.

They are blocking: a partition that fails one does not flow on to contact_coverage or
contacts_latest. They are evaluated inside the asset, on the file as written to disk, so the
verdict is about what readers will see, not about what the code meant to write.
"""

from collections.abc import Sequence

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.names import current
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

ONE_ROW_PER_URL = "one_row_per_submitted_url"
UNIQUE_PROFILE_URL = "unique_profile_url"
SCHEMA_AS_CONTRACTED = "schema_as_contracted"


def enriched_contacts_checks(asset: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The load's blocking checks, on the copy's `enriched_contacts` key."""
    return [
        dg.AssetCheckSpec(
            ONE_ROW_PER_URL,
            asset=asset,
            blocking=True,
            description="Every URL of the plan (submitted, reused or borrowed) has exactly "
            "one row.",
        ),
        dg.AssetCheckSpec(
            UNIQUE_PROFILE_URL,
            asset=asset,
            blocking=True,
            description="No profile_url appears twice in the partition.",
        ),
        dg.AssetCheckSpec(
            SCHEMA_AS_CONTRACTED,
            asset=asset,
            blocking=True,
            description="The file's Arrow schema is exactly the table contract.",
        ),
    ]


def one_row_per_url_check(
    table: pa.Table,
    *,
    expected: int,
    missing_records: Sequence[str],
    missing_borrowed: Sequence[str] = (),
    undelivered_jobs: int,
    reasons: Sequence[str],
    date: str,
) -> dg.AssetCheckResult:
    problems = []
    if missing_records:
        problems.append(
            f"{len(missing_records)} submitted URLs have no record in their job's results"
        )
    if missing_borrowed:
        problems.append(
            f"{len(missing_borrowed)} borrowed URLs were not delivered by the plan of another "
            "partition they were borrowed from"
        )
    if undelivered_jobs:
        problems.append(f"{undelivered_jobs} jobs were not delivered ({'; '.join(reasons)})")
    if table.num_rows != expected and not problems:
        problems.append(f"{table.num_rows} rows for {expected} URLs")
    description = (
        "every URL has its row"
        if not problems
        else "; ".join(problems)
        + f". Re-materialise {current().batch_key.to_user_string()}[{date}]: URLs already "
        "delivered are reused, only the missing ones are submitted."
    )
    return dg.AssetCheckResult(
        check_name=ONE_ROW_PER_URL,
        asset_key=current().contacts_key,
        passed=not problems,
        description=description,
        metadata={
            "expected_rows": expected,
            "rows": table.num_rows,
            "missing_records": len(missing_records),
            "missing_borrowed": len(missing_borrowed),
            "missing_sample": dg.MetadataValue.json(
                [*missing_records[:10], *missing_borrowed[: max(0, 10 - len(missing_records))]]
            ),
            "jobs_not_delivered": undelivered_jobs,
        },
    )


def unique_profile_url_check(table: pa.Table) -> dg.AssetCheckResult:
    urls = table.column("profile_url")
    distinct = len(pc.unique(urls)) if len(urls) else 0
    return dg.AssetCheckResult(
        check_name=UNIQUE_PROFILE_URL,
        asset_key=current().contacts_key,
        passed=distinct == table.num_rows,
        metadata={"rows": table.num_rows, "distinct_profile_urls": distinct},
    )


def contract_schema_check(schema: pa.Schema) -> dg.AssetCheckResult:
    actual = schema.remove_metadata()
    expected = ENRICHED_CONTACTS_SCHEMA.remove_metadata()
    differences = [
        f"{field.name}: expected {field.type}, found "
        + (str(actual.field(field.name).type) if field.name in actual.names else "nothing")
        for field in expected
        if field.name not in actual.names or not actual.field(field.name).type.equals(field.type)
    ]
    extra = [name for name in actual.names if name not in expected.names]
    differences += [f"{name}: not in the contract" for name in extra]
    return dg.AssetCheckResult(
        check_name=SCHEMA_AS_CONTRACTED,
        asset_key=current().contacts_key,
        passed=not differences,
        description="schema as contracted" if not differences else "; ".join(differences),
    )
