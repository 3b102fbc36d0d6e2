"""Dagster's own warnings about the APIs this project uses are errors, not noise.

pyproject.toml's `filterwarnings` turns Dagster's deprecation (a DeprecationWarning in Dagster's
wording), supersession, beta and preview warnings into errors in every test, while other
libraries' DeprecationWarnings are only shown. A use of such an API in the package then fails the
test that reaches it, instead of being hidden until the release that removes it.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import dagster as dg
import pytest

from crust_assets.defs.partitions import daily_partitions

# What the fresh interpreter below sets, as pyproject.toml sets it for the tests.
STRICT = """
import warnings
import dagster as dg
warnings.filterwarnings(
    "error", message=".* is deprecated and will be removed in", category=DeprecationWarning
)
for category in (dg.SupersessionWarning, dg.BetaWarning, dg.PreviewWarning):
    warnings.filterwarnings("error", category=category)
from crust_assets.definitions import defs
defs.resolve_asset_graph()
print("loaded", len(defs.resolve_all_job_defs()))
"""


def test_a_deprecated_dagster_argument_fails_a_test() -> None:
    # What the jobs did before: partitioning is inferred from the selected assets now.
    with pytest.raises(DeprecationWarning, match="partitions_def"):
        dg.define_asset_job("old_style", selection="*", partitions_def=daily_partitions)


@pytest.mark.parametrize("category", [dg.SupersessionWarning, dg.BetaWarning, dg.PreviewWarning])
def test_superseded_beta_and_preview_warnings_fail_a_test(category: type[Warning]) -> None:
    with pytest.raises(category):
        warnings.warn("from Dagster", category, stacklevel=1)


def test_another_librarys_deprecation_is_only_shown() -> None:
    with pytest.warns(DeprecationWarning):
        warnings.warn("some_function is going away", DeprecationWarning, stacklevel=1)


def test_the_code_location_loads_with_dagsters_warnings_as_errors() -> None:
    # A fresh interpreter: the module-level definitions run again, under the strict filters.
    result = subprocess.run(
        [sys.executable, "-c", STRICT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("loaded")
