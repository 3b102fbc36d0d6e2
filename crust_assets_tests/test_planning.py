"""make_plan and write_plan on a real data root in tmp_path: no Dagster, no emulator, no instance.

What a user checks: which URLs are bought, which rows are reused and which URLs are borrowed,
what it may cost, that an erased person is not bought back, and that an expensive list is refused
with the figures that say why.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crust_assets.erasure import forget
from crust_assets.lifecycle.ledger import PlanState
from crust_assets.planning import (
    PLAN_SCHEMA,
    Lender,
    Plan,
    PlanRequest,
    make_plan,
    write_plan,
)
from crust_assets.storage import DataLayout
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
BOTH = ("business_email", "personal_contact_info")


def url(n: int) -> str:
    return f"https://www.linkedin.com/in/person-{n}"


def urls(*ns: int) -> pa.Table:
    return pa.table({"profile_url": pa.array([url(n) for n in ns], pa.string())})


def request(**overrides: object) -> PlanRequest:
    values: dict[str, object] = {
        "date": "2026-03-10",
        "fields": BOTH,
        "reenrich_window_days": 30,
        "credit_budget": 100_000,
        "refuse_erased": True,
        "now": NOW,
    }
    values.update(overrides)
    return PlanRequest(**values)  # type: ignore[arg-type]


def loaded_row(n: int, enriched_at: datetime, *, phones: list[str] | None) -> dict[str, object]:
    return {
        "profile_url": url(n),
        "business_emails": [{"email": f"p{n}@corp.example", "status": "verified"}],
        "personal_emails": [] if phones is not None else None,
        "phone_numbers": phones,
        "crustdata_person_id": n,
        "batch_id": "b-old",
        "enriched_at": enriched_at,
        "matched": True,
        "primary_business_email": f"p{n}@corp.example",
    }


def load_partition_file(layout: DataLayout, date: str, rows: list[dict[str, object]]) -> None:
    table = pa.Table.from_pylist(rows, schema=ENRICHED_CONTACTS_SCHEMA)
    layout.write_table(layout.warehouse_partition("enriched_contacts", date), table)


def lender(layout: DataLayout, date: str, plan_id: str, jobs: list[list[int]]) -> PlanState:
    """A plan of another day whose file lists `jobs` (each a list of person numbers)."""
    files = layout.plan_files(date, plan_id)
    rows = [(index, url(n)) for index, job in enumerate(jobs) for n in job]
    table = pa.table(
        {"job_index": [i for i, _ in rows], "profile_url": [u for _, u in rows]}, schema=PLAN_SCHEMA
    )
    layout.write_table(files.submit, table)
    return PlanState(
        date=date,
        plan_id=plan_id,
        job_count=len(jobs),
        url_count=len(rows),
        fields=list(BOTH),
        plan_path=str(files.submit.relative_to(layout.root)),
        storage_id=1,
    )


def planned(table: pa.Table) -> list[str]:
    return sorted(table.column("profile_url").to_pylist())


def test_a_recent_row_with_every_wanted_field_is_reused_not_bought(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    load_partition_file(
        layout,
        "2026-03-01",
        [
            loaded_row(1, NOW - timedelta(days=2), phones=["+15550001"]),  # reused
            loaded_row(2, NOW - timedelta(days=31), phones=["+15550002"]),  # too old
            loaded_row(3, NOW - timedelta(days=2), phones=None),  # bought without phones
        ],
    )
    plan = make_plan(layout, urls(1, 2, 3, 4), set(), [], request())
    assert planned(plan.reused) == [url(1)]
    assert plan.reused.column("phone_numbers").to_pylist() == [["+15550001"]]
    assert planned(plan.to_submit) == [url(2), url(3), url(4)]
    assert plan.credits_estimate == 3 * (1 + 2 + 2)
    assert plan.refusal is None and plan.job_count == 1 and plan.reasons == []


def test_a_reused_row_carries_only_the_fields_the_new_plan_asks_for(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    load_partition_file(layout, "2026-03-01", [loaded_row(1, NOW, phones=["+15550001"])])
    plan = make_plan(layout, urls(1), set(), [], request(fields=("business_email",)))
    [row] = plan.reused.to_pylist()
    assert row["business_emails"]
    assert row["phone_numbers"] is None and row["personal_emails"] is None
    assert plan.to_submit.num_rows == 0 and plan.credits_estimate == 0


def test_urls_another_days_plan_is_buying_are_borrowed_from_the_oldest_lender(
    tmp_path: Path,
) -> None:
    layout = DataLayout(tmp_path)
    older = Lender(lender(layout, "2026-03-08", "plan-a", [[1, 2], [3]]), abandoned={1})
    newer = Lender(lender(layout, "2026-03-09", "plan-b", [[2, 3, 5]]))
    plan = make_plan(layout, urls(1, 2, 3, 4), set(), [older, newer], request())
    lent = {
        row["profile_url"]: (row["lender_plan_id"], row["lender_job_index"])
        for row in plan.borrowed.to_pylist()
    }
    # 3 is in plan-a's given-up job 1, so plan-b lends it; 4 nobody buys.
    assert lent == {url(1): ("plan-a", 0), url(2): ("plan-a", 0), url(3): ("plan-b", 0)}
    assert planned(plan.to_submit) == [url(4)]
    assert plan.lender_keys == ["2026-03-08/plan-a", "2026-03-09/plan-b"]
    [reason] = plan.reasons
    assert not reason.warning
    assert reason.text.startswith("3 URLs of 2026-03-10 are already being bought by 2026-03-08/")


def test_an_erased_person_is_refused_unless_re_enriching_is_allowed(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    erased = {url(2)}
    plan = make_plan(layout, urls(1, 2, 3), erased, [], request())
    assert planned(plan.to_submit) == [url(1), url(3)]
    assert plan.refused_erased == 1
    [reason] = plan.reasons
    assert reason.warning and "CRUST_ALLOW_REENRICH_ERASED=true" in reason.text

    allowed = make_plan(layout, urls(1, 2, 3), erased, [], request(refuse_erased=False))
    assert allowed.to_submit.num_rows == 3 and allowed.refused_erased == 0


def test_a_plan_over_the_budget_is_refused_with_the_figures(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    plan = make_plan(layout, urls(*range(10)), set(), [], request(credit_budget=49))
    assert plan.refusal is not None
    assert plan.refusal.description == (
        "Partition 2026-03-10: 10 URLs to enrich could cost up to 50 credits (fields "
        "business_email, personal_contact_info), above the budget of 49. Raise "
        "CRUST_CREDIT_BUDGET or split the list."
    )
    assert plan.refusal.metadata == {"credits_estimate": 50, "credit_budget": 49}
    with pytest.raises(ValueError, match="a refused plan is not written"):
        write_plan(layout, layout.plan_files("2026-03-10", "run-1"), plan)
    assert make_plan(layout, urls(*range(10)), set(), [], request(credit_budget=50)).refusal is None


def test_a_written_plan_has_one_row_group_per_job_of_at_most_300_urls(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    plan = make_plan(layout, urls(*range(301)), set(), [], request())
    files = layout.plan_files("2026-03-10", "run-1")
    written = write_plan(layout, files, plan)
    assert written.job_count == 2 == plan.job_count
    plan_file = pq.ParquetFile(files.submit)
    assert plan_file.num_row_groups == 2
    assert plan_file.read_row_group(1).column("job_index").to_pylist() == [1]
    assert pq.read_table(files.reused).num_rows == 0
    assert pq.read_table(files.borrowed).num_rows == 0


def test_a_person_erased_while_the_plan_was_made_is_neither_bought_nor_stored(
    tmp_path: Path,
) -> None:
    layout = DataLayout(tmp_path)
    load_partition_file(layout, "2026-03-01", [loaded_row(1, NOW, phones=["+15550001"])])
    older = Lender(lender(layout, "2026-03-08", "plan-a", [[3]]))
    plan: Plan = make_plan(layout, urls(1, 2, 3, 4), set(), [older], request())
    assert (plan.reused.num_rows, plan.borrowed.num_rows, plan.to_submit.num_rows) == (1, 1, 2)
    forget(layout, [url(1), url(2), url(3)], now=NOW)  # after planning, before writing

    files = layout.plan_files("2026-03-10", "run-1")
    written = write_plan(layout, files, plan)
    assert planned(pq.read_table(files.submit)) == [url(4)]
    assert pq.read_table(files.reused).num_rows == 0  # contact data of an erased person
    assert pq.read_table(files.borrowed).num_rows == 0
    assert written.refused_erased == 2  # the reused row is dropped, not refused
    assert written.credits_estimate == plan.credits_estimate  # as planned, before the fence
