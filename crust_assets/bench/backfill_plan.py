"""What borrowing costs the planner in a backfill: day N of N planned while N-1 plans still run.

A CRM backfill plans every day before any job is done, so the last day's planner looks at every
earlier day's plan (its events and its plan file) to borrow what they are already buying. Here
the real `plan_contact_enrichment` job plans `days` consecutive days in one child process on a
SQLite instance (no sensor runs, so every earlier plan is unfinished and lends); consecutive
days share half their URLs. Reported: the first day's plan time (nothing to borrow from), the
last day's (every earlier plan is a candidate lender) and their ratio, the URLs borrowed, and the
credits that borrowing saved (URLs not submitted again), with the child's peak RSS.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from crust_assets.bench.common import child_peak_rss, self_peak_rss_mib
from crust_assets.bench.scale import planning_job

FIRST_DAY = date(2026, 6, 1)


def write_days(data_dir: Path, days: int, urls_per_day: int) -> list[str]:
    """`days` lists of `urls_per_day` URLs; each day shares its first half with the day before."""
    step = urls_per_day // 2
    dates = []
    for day in range(days):
        iso = (FIRST_DAY + timedelta(days=day)).isoformat()
        path = data_dir / "input" / f"{iso}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        start = day * step
        lines = [
            f"https://www.linkedin.com/in/backfill-{i:07d}"
            for i in range(start, start + urls_per_day)
        ]
        path.write_text("profile_url\n" + "\n".join(lines) + "\n", encoding="utf-8")
        dates.append(iso)
    return dates


def _child(home: str, data_dir: str, dates: list[str]) -> None:
    import dagster as dg

    instance = dg.DagsterInstance.from_config(home)
    job = planning_job(data_dir)
    plans = []
    for day in dates:
        started = time.perf_counter()
        result = job.execute_in_process(instance=instance, partition_key=day)
        seconds = time.perf_counter() - started
        meta = result.asset_materializations_for_node("contact_enrichment_batch")[0].metadata
        plans.append(
            {
                "date": day,
                "seconds": seconds,
                "submitted": meta["urls_to_submit"].value,
                "borrowed": meta["urls_borrowed"].value,
                "lenders": len(meta["lender_plans"].value),
            }
        )
    print(json.dumps({"plans": plans, "peak_rss_mib": self_peak_rss_mib()}))


def bench_backfill_plan(
    work_dir: Path, *, days: int = 30, urls_per_day: int = 10_000, echo: Any = print
) -> dict[str, Any]:
    root = work_dir / "backfill_plan"
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    dates = write_days(root / "data", days, urls_per_day)
    child = child_peak_rss(
        ["crust_assets.bench.backfill_plan", str(home), str(root / "data"), *dates]
    )
    plans = child["plans"]
    first, last = plans[0], plans[-1]
    echo(f"backfill: planned {days} days, the last in {last['seconds']:.2f} s")
    return {
        "days": days,
        "urls_per_day": urls_per_day,
        "first_plan_seconds": first["seconds"],
        "last_plan_seconds": last["seconds"],
        "last_vs_first": last["seconds"] / first["seconds"],
        "last_plan_lenders": last["lenders"],
        "urls_listed": days * urls_per_day,
        "urls_distinct": (days + 1) * (urls_per_day // 2),
        "urls_submitted": sum(p["submitted"] for p in plans),
        "urls_borrowed": sum(p["borrowed"] for p in plans),
        "peak_rss_mib": child["peak_rss_mib"],
    }


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit("usage: python -m crust_assets.bench.backfill_plan HOME DATA DATE...")
    _child(sys.argv[1], sys.argv[2], sys.argv[3:])
