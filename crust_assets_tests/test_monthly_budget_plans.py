"""CRUST_MONTHLY_CREDIT_BUDGET on real plans: a real instance, data root and emulator process.

The first plan of the month is recorded (its worst case is pending until it is loaded); the next
one that would take the month past the budget is refused with the figures, like the per-partition
budget, and nothing is submitted. A plan that fits exactly is made.
"""

from __future__ import annotations

from pathlib import Path

from crust_assets.emulator.process import EmulatorProcess
from crust_assets_tests.pipeline_harness import Pipeline, make_urls


def _failure_text(result: object) -> str:
    events = getattr(result, "all_events", [])
    return " ".join(str(e.event_specific_data) for e in events if e.is_failure)


def test_a_plan_that_would_cross_the_monthly_budget_is_refused(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    settings = {"monthly_credit_budget": 2_500}
    pipeline = Pipeline(tmp_path / "data", emulator.base_url, settings=settings)
    pipeline.write_list("2026-11-20", make_urls("month-a", 400))  # worst case 400 * 5 = 2000
    assert pipeline.plan("2026-11-20").success

    pipeline.write_list("2026-11-21", make_urls("month-b", 200))  # 1000 more: 3000 > 2500
    refused = pipeline.plan("2026-11-21", raise_on_error=False)
    assert not refused.success
    text = _failure_text(refused)
    assert "Partition 2026-11-21: this plan could cost up to 1000 credits" in text
    assert "0 credits delivered and up to 2000 in plans not loaded yet" in text
    assert "could reach 3000, above CRUST_MONTHLY_CREDIT_BUDGET=2500" in text

    pipeline.write_list("2026-11-22", make_urls("month-c", 100))  # 500: exactly 2500 fits
    assert pipeline.plan("2026-11-22").success
    assert emulator.admin.submissions() == []  # planning never submits


def test_without_a_monthly_budget_nothing_is_refused_for_the_month(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    pipeline = Pipeline(tmp_path / "data", emulator.base_url)
    for day, prefix in (("2026-11-20", "free-a"), ("2026-11-21", "free-b")):
        pipeline.write_list(day, make_urls(prefix, 400))
        assert pipeline.plan(day).success
