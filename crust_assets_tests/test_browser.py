"""The UI, tested as a person uses it: Debian's Chromium, driven by Playwright, on `dagster dev`.

A real `dagster dev` (webserver + daemon) runs against the emulator. The browser opens the asset
lineage, checks the five assets and their edges as drawn, selects contact_url_list and
contact_enrichment_batch on the graph, opens the Materialize dialog, types the partition and
launches one run. The daemon's sensor does the rest; the test waits, in the browser, until
enriched_contacts shows that partition as materialised with its row count and column schema.

A screenshot of every step is saved under `.artifacts/browser/` (git-ignored), plus a
Playwright trace when the test fails (`playwright show-trace .artifacts/browser/trace.zip`).

Needs Debian's `chromium` and the `playwright` package (no browser download). Without them the
test FAILS, saying what to install; skip it explicitly with `-m "not browser"` or
CRUST_SKIP_BROWSER=1 (never in CI).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
import pytest

from crust_assets.demo import DagsterDev, demo_environment, start_dagster_dev
from crust_assets.emulator.process import EmulatorProcess
from crust_assets.table import ENRICHED_CONTACTS_SCHEMA
from crust_assets_tests.pipeline_harness import make_urls

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / ".artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
# As the machine notes prescribe for Debian's Chromium as root on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SKIP_VAR = "CRUST_SKIP_BROWSER"
INSTALL_HINT = (
    "install Debian's Chromium (`apt-get install -y chromium`; CI's .ci/run does) and the "
    "playwright package (the dev extras), or skip explicitly with `-m 'not browser'` or "
    f"{SKIP_VAR}=1"
)
ASSETS = [
    "contact_url_list",
    "contact_enrichment_batch",
    "enriched_contacts",
    "contact_coverage",
    "contacts_latest",
]
LINEAGE = {
    ("contact_url_list", "contact_enrichment_batch"),
    ("contact_enrichment_batch", "enriched_contacts"),
    ("enriched_contacts", "contact_coverage"),
    ("enriched_contacts", "contacts_latest"),
}
URL_COUNT = 60
# The dialog lists the last 90 days by default: a partition a few days back is in view.
DATE = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=3)).isoformat()
# The demo's instance settings, without the first-visit newsletter pop-up over the graph.
DAGSTER_YAML = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_queue:
  max_concurrent_runs: 4
"""


def _require_browser() -> None:
    """Skip only when asked to (never in CI); fail, saying what to install, when missing."""
    if os.environ.get(SKIP_VAR) == "1":
        if os.environ.get("CI"):
            pytest.fail(f"{SKIP_VAR}=1 is set in CI: the browser test must run there")
        pytest.skip(f"{SKIP_VAR}=1: browser test skipped on request")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: {INSTALL_HINT}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail(f"the playwright package is not installed: {INSTALL_HINT}")


class Steps:
    """Numbered screenshots of each step, so a failure shows where the UI stood."""

    def __init__(self, page: Any, directory: Path) -> None:
        self.page = page
        self.directory = directory
        self.count = 0
        self.saved: list[Path] = []

    def shot(self, name: str, *, full_page: bool = False) -> Path:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        self.saved.append(path)
        return path


@pytest.fixture
def artifacts() -> Path:
    _require_browser()
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture
def dagster_ui(tmp_path: Path, artifacts: Path) -> Iterator[tuple[DagsterDev, Path]]:
    """Emulator + `dagster dev` with one day's list; yields (dev, data_dir); stops both."""
    data_dir = tmp_path / "data"
    (data_dir / "input").mkdir(parents=True)
    lines = ["profile_url", *make_urls("browser", URL_COUNT)]
    (data_dir / "input" / f"{DATE}.csv").write_text("\n".join(lines) + "\n")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    with EmulatorProcess(
        tmp_path / "emulator", pending_seconds=0.5, processing_seconds=1.0
    ) as emulator:
        dev = start_dagster_dev(home, demo_environment(emulator.base_url, data_dir, 2))
        try:
            started = time.monotonic()
            dev.wait_ready()
            print(f"dagster dev ready in {time.monotonic() - started:.1f} s")
            yield dev, data_dir
        finally:
            dev.stop()
            shutil.copy(dev.log_path, artifacts / "dagster-dev.log")


def test_materialise_a_partition_from_the_ui(
    dagster_ui: tuple[DagsterDev, Path], artifacts: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    dev, data_dir = dagster_ui
    expect.set_options(timeout=30_000)  # a loaded 2-core machine renders the graph slowly
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        context.tracing.start(screenshots=True, snapshots=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        steps = Steps(page, artifacts)
        passed = False
        try:
            _check_the_asset_graph(page, dev.url, steps)
            _launch_the_partition_from_the_dialog(page, steps)
            _wait_until_the_partition_shows_materialised(page, dev, steps)
            _check_row_count_and_schema(page, dev.url, steps)
            passed = True
        finally:
            if not passed:
                steps.shot("at-failure", full_page=True)
                context.tracing.stop(path=str(artifacts / "trace.zip"))
            else:
                context.tracing.stop()
            context.close()
            browser.close()
    print(f"browser steps took {time.monotonic() - started:.1f} s; screenshots: {steps.saved}")

    table = pq.read_table(
        data_dir / "warehouse" / "enriched_contacts" / f"date={DATE}" / "data.parquet",
        schema=ENRICHED_CONTACTS_SCHEMA,
    )
    assert table.num_rows == URL_COUNT  # what the UI showed is what was written


# --------------------------------------------------------------------------------------- steps
def _check_the_asset_graph(page: Any, url: str, steps: Steps) -> None:
    """The global lineage view draws the five assets and the edges between them."""
    from playwright.sync_api import expect

    page.goto(f"{url}/asset-groups")
    graph_nodes = page.locator("svg foreignObject")
    expect(graph_nodes.filter(has_text="enriched_contacts")).to_have_count(1)
    # The side list has every asset's full name (the zoomed-out graph shortens long ones).
    texts = page.get_by_role("button").all_inner_texts()
    names = sorted({line.strip() for text in texts for line in text.splitlines() if line.strip()})
    missing = [asset for asset in ASSETS if asset not in names]
    assert not missing, f"not in the asset list: {missing}"
    drawn = page.evaluate(_GRAPH_JS)
    edges = _edges_from_geometry(drawn, names)
    steps.shot("asset-graph")
    nodes = {_resolve(node["text"], names) for node in drawn["nodes"]}
    assert set(ASSETS) <= nodes, f"graph nodes: {sorted(nodes)}"
    assert edges >= LINEAGE, f"lineage drawn: {sorted(edges)}; expected at least {LINEAGE}"


def _launch_the_partition_from_the_dialog(page: Any, steps: Steps) -> None:
    """Select the two planning assets on the graph, then Materialize → one partition."""
    from playwright.sync_api import expect

    page.locator("svg foreignObject", has_text="contact_url_list").click()
    page.locator("svg foreignObject", has_text=re.compile(r"contact_enr.*batch")).click(
        modifiers=["Shift"]
    )
    materialize = page.get_by_role("button", name=re.compile(r"Materialize selected \(2\)"))
    expect(materialize).to_be_visible()
    steps.shot("two-assets-selected")
    materialize.click()

    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Launch runs to materialize 2 assets")
    partition_input = dialog.get_by_placeholder("No matching partitions")
    partition_input.fill(DATE)
    partition_input.press("Enter")
    expect(dialog).to_contain_text("1 partition")
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    steps.shot("materialize-dialog-one-partition")
    launch.click()
    expect(page.get_by_text(re.compile(r"Launched run"))).to_be_visible()
    steps.shot("run-launched")


def _wait_until_the_partition_shows_materialised(
    page: Any, dev: DagsterDev, steps: Steps, timeout: float = 240.0
) -> None:
    """Reload the partition's page until the UI says Materialized (the daemon does the work)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    instance = dg.DagsterInstance.from_config(str(dev.home))
    partition_url = f"{dev.url}/assets/enriched_contacts?view=partitions&partition={DATE}"
    deadline = time.monotonic() + timeout
    while True:
        page.goto(partition_url)
        try:
            # Both appear in the partition's panel only once it has a materialisation.
            page.get_by_text("Latest materialization").wait_for(timeout=5_000)
            if page.get_by_text("Materialized", exact=True).count():
                break
        except PlaywrightTimeout:
            pass  # not there yet
        failed = _failed_pipeline_run(instance)
        if failed is not None:
            steps.shot("run-failed")
            pytest.fail(f"run {failed.run_id} ({failed.job_name}) failed; see dagster-dev.log")
        if time.monotonic() > deadline:
            pytest.fail(f"enriched_contacts[{DATE}] not shown materialised after {timeout:.0f} s")
        page.wait_for_timeout(3_000)
    steps.shot("partition-materialized")


def _check_row_count_and_schema(page: Any, url: str, steps: Steps) -> None:
    """The partition's metadata shows dagster/row_count and the column schema."""
    from playwright.sync_api import expect

    expect(page.get_by_text(DATE, exact=True).first).to_be_visible()
    row_count = page.locator("tr", has_text="dagster/row_count")
    expect(row_count).to_contain_text(str(URL_COUNT))
    page.get_by_text("[Show Table Schema]").click()
    schema = page.get_by_role("dialog")
    for column in ENRICHED_CONTACTS_SCHEMA.names:
        expect(schema.get_by_text(column, exact=True)).to_be_visible()
    expect(schema).to_contain_text("list<item: struct<email: string, status: string>>")
    steps.shot("column-schema")
    schema.get_by_role("button", name="Close").click()

    # The asset's overview: latest materialisation of the partition, row count, columns.
    page.goto(f"{url}/assets/enriched_contacts")
    latest = page.get_by_text("Latest materialization", exact=True).locator("xpath=..")
    expect(latest).to_contain_text(DATE)
    rows = page.get_by_text("Row count", exact=True).locator("xpath=..")
    expect(rows).to_contain_text(str(URL_COUNT))
    columns = page.locator("table", has_text="Column name")
    for column in ENRICHED_CONTACTS_SCHEMA.names:
        expect(columns.get_by_text(column, exact=True)).to_be_visible()
    steps.shot("asset-overview", full_page=True)


def _failed_pipeline_run(instance: dg.DagsterInstance) -> dg.DagsterRun | None:
    """A failed run that planned or loaded a partition (fail fast instead of timing out)."""
    watched = {dg.AssetKey(name) for name in ASSETS[:3]}
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE])):
        if run.job_name == "load_enriched_contacts" or watched & set(run.asset_selection or ()):
            return run
    return None


# ------------------------------------------------------------------------------ graph geometry
# Nodes are SVG foreignObjects (x, y, width, height, name); edges are paths with an arrow marker
# from the right side of one node to the left side of another.
_GRAPH_JS = """() => ({
  nodes: [...document.querySelectorAll('svg foreignObject')].map(fo => ({
    x: +fo.getAttribute('x'), y: +fo.getAttribute('y'),
    w: +fo.getAttribute('width'), h: +fo.getAttribute('height'),
    text: fo.textContent.trim(),
  })),
  edges: [...document.querySelectorAll('svg path[marker-end]')].map(p => p.getAttribute('d')),
})"""


def _resolve(text: str, names: list[str]) -> str:
    """A node's label, which the zoomed-out graph shortens ("contact_enr…_batch"), to a name."""
    if "…" not in text:
        return text
    head, tail = text.split("…", 1)
    matches = [name for name in names if name.startswith(head) and name.endswith(tail)]
    return matches[0] if len(matches) == 1 else text


def _edges_from_geometry(drawn: dict, names: list[str]) -> set[tuple[str, str]]:
    def node_at(x: float, y: float, side: str) -> str | None:
        for node in drawn["nodes"]:
            edge_x = node["x"] + node["w"] if side == "right" else node["x"]
            if abs(edge_x - x) <= 12 and node["y"] <= y <= node["y"] + node["h"]:
                return _resolve(node["text"], names)
        return None

    edges = set()
    for d in drawn["edges"]:
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", d or "")]
        if len(numbers) < 4:
            continue
        source = node_at(numbers[0], numbers[1], "right")
        target = node_at(numbers[-2], numbers[-1], "left")
        if source and target:
            edges.add((source, target))
    return edges
