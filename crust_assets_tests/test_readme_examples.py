"""The README's query examples, run as written against a warehouse the pipeline produced."""

import os
import re
from pathlib import Path

import duckdb
import pytest

from crust_assets.emulator.process import EmulatorProcess
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

README = Path(__file__).resolve().parent.parent / "README.md"
DATE = "2026-11-28"


def readme_blocks(language: str) -> list[str]:
    section = README.read_text().split("### Query it", 1)[1].split("## The emulator", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("readme")
    with EmulatorProcess(root / "emulator", pending_seconds=0.1, processing_seconds=0.2) as emu:
        pipeline = Pipeline(root / "data", emu.base_url)
        crm = [f"{url},C{i:03d},rep{i % 3}" for i, url in enumerate(make_urls("readme", 40))]
        (root / "data" / "input" / f"{DATE}.csv").write_text(
            "\n".join(["profile_url,crm_id,owner", *crm]) + "\n"
        )
        pipeline.plan(DATE)
        pipeline.drive(until_runs=1)
        pipeline.materialize("contact_coverage", partition=DATE)
        pipeline.materialize("enriched_list", partition=DATE)
        pipeline.materialize("contacts_latest", "contacts_duckdb")
    previous = Path.cwd()
    os.chdir(root)  # the examples use paths relative to the repo root, i.e. the data dir's parent
    try:
        yield root
    finally:
        os.chdir(previous)


def test_readme_has_the_examples() -> None:
    assert len(readme_blocks("sql")) >= 1 and len(readme_blocks("python")) >= 4


def test_sql_examples_run_in_duckdb(warehouse: Path) -> None:
    for sql in readme_blocks("sql"):
        rows = duckdb.sql(sql).fetchall()
        assert rows and rows[0][1] == 40


def test_python_examples_run(warehouse: Path) -> None:
    results = []
    for code in readme_blocks("python"):
        namespace: dict = {}
        exec(compile(code, str(README), "exec"), namespace)
        results.append(namespace)
    duck, pandas_ns, polars_ns = results[:3]
    assert len(duck["crm"]) == sum(1 for row in duck["crm"] if row[0].startswith("https://"))
    assert len(pandas_ns["contacts"]) == 40 and len(pandas_ns["day"]) == 40
    assert len(pandas_ns["latest"]) == 40
    assert polars_ns["fill"].height == 1
    per_line = results[3]["to_crm"]
    assert [row[0] for row in per_line] == [f"C{i:03d}" for i in range(40)]
    assert {row[2] for row in per_line} <= {"enriched", "not_found"}
    assert any(row[3] for row in per_line)
