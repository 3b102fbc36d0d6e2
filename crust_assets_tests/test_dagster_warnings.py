"""Dagster's own warnings about the APIs this project uses are errors, not noise.

pyproject.toml's `filterwarnings` turns Dagster's deprecation (a DeprecationWarning in Dagster's
wording), supersession, beta and preview warnings into errors in every test, while other
libraries' DeprecationWarnings are only shown. A use of such an API in the package then fails the
test that reaches it, instead of being hidden until the release that removes it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest
from _pytest.config import parse_warning_filter

# A fresh interpreter with pyproject.toml's filters (argv[1]) applied as pytest applies them.
STRICT = """
import json, sys, warnings
from _pytest.config import parse_warning_filter
for text in json.loads(sys.argv[1]):
    warnings.filterwarnings(*parse_warning_filter(text, escape=False))
from crust_assets.definitions import defs
defs.resolve_asset_graph()
print("loaded", len(defs.resolve_all_job_defs()))
"""

# Real calls of deprecated, beta and superseded Dagster APIs, run as code of a module of the
# package (a filter's module field matches the caller's module name).
DEPRECATED_ARGUMENT = """
from crust_assets.defs.partitions import daily_partitions
dg.define_asset_job("old_style", selection="*", partitions_def=daily_partitions)
"""
DEPRECATED_PROPERTY = """
dg.ScheduleDefinition(name="s", cron_schedule="0 6 * * *", job_name="j").environment_vars
"""
BETA_ARGUMENT = """
dg.AssetSelection.all(include_sources=True)
"""


@pytest.fixture
def project_filters(pytestconfig: pytest.Config) -> list[str]:
    filters = list(pytestconfig.getini("filterwarnings"))
    assert filters, "pyproject.toml sets no filterwarnings"
    return filters


@contextmanager
def only(filters: list[str]) -> Iterator[None]:
    """Exactly the given pytest filters, in pytest's order (a later one wins)."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for text in filters:
            warnings.filterwarnings(*parse_warning_filter(text, escape=False))
        yield


def run_as(module: str, code: str) -> None:
    exec(compile(code, f"<{module}>", "exec"), {"__name__": module, "dg": dg})


@pytest.mark.parametrize(
    ("code", "category", "match"),
    [
        (DEPRECATED_ARGUMENT, DeprecationWarning, "partitions_def"),
        (DEPRECATED_PROPERTY, DeprecationWarning, "environment_vars"),
        (BETA_ARGUMENT, dg.BetaWarning, "include_sources"),
    ],
)
def test_a_deprecated_or_beta_dagster_call_from_the_package_fails_a_test(
    project_filters: list[str], code: str, category: type[Warning], match: str
) -> None:
    with only(project_filters), pytest.raises(category, match=match):
        run_as("crust_assets.defs.probe", code)


@pytest.mark.parametrize("code", [DEPRECATED_PROPERTY, BETA_ARGUMENT])
def test_the_same_calls_from_dagsters_own_code_are_ignored(
    project_filters: list[str], code: str
) -> None:
    with only(project_filters), warnings.catch_warnings(record=True) as seen:
        run_as("dagster._core.probe", code)
    assert seen == []


def test_without_the_filters_the_same_call_is_only_a_warning() -> None:
    with (
        only(["ignore::dagster.BetaWarning"]),
        pytest.warns(DeprecationWarning, match="partitions_def"),
    ):
        run_as("crust_assets.defs.probe", DEPRECATED_ARGUMENT)


def test_another_librarys_deprecation_is_only_shown(project_filters: list[str]) -> None:
    with only(project_filters), pytest.warns(DeprecationWarning):
        run_as(
            "some_library", 'import warnings; warnings.warn("f is going away", DeprecationWarning)'
        )


def test_the_code_location_loads_with_dagsters_warnings_as_errors(
    project_filters: list[str],
) -> None:
    # A fresh interpreter: the module-level definitions run again, under the strict filters.
    result = subprocess.run(
        [sys.executable, "-c", STRICT, json.dumps(project_filters)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("loaded")
