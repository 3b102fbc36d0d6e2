"""What `pip install crust_assets` brings: the package only, and only what a code location needs.

The emulator's and the webhook receiver's servers (starlette, uvicorn, hypercorn) and the
webserver are extras that `dev` pulls in, so a production image stays small; starting a server
without its extra must say which one to install. The bounds in pyproject.toml are the ones the
suite runs on (requirements-tested.txt records them).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = Path(__file__).resolve().parent.parent
SERVER_MODULES = ("starlette", "uvicorn", "hypercorn", "dagster_webserver")


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {Requirement(line).name for line in requirements}


def _tested() -> tuple[Version, dict[str, Version]]:
    """The Python version and the pins of requirements-tested.txt."""
    text = (REPO / "requirements-tested.txt").read_text()
    python = re.search(r"Python (\d+\.\d+\.\d+)", text.splitlines()[0])
    assert python is not None, "the first line must name the Python the suite ran on"
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.M))
    return Version(python.group(1)), {name.lower(): Version(v) for name, v in pins.items()}


def test_bounds_are_the_versions_the_suite_runs_on() -> None:
    project = _project()
    python, pins = _tested()
    supported = SpecifierSet(project["requires-python"])
    assert python in supported
    assert Version(f"{python.major}.{python.minor + 1}") not in supported  # untested: refused
    assert Version("3.10") not in supported  # enum.StrEnum, used by the package, is 3.11+
    (dagster,) = [Requirement(r) for r in project["dependencies"] if r.startswith("dagster")]
    (lower,) = [Version(s.version) for s in dagster.specifier if s.operator == ">="]
    assert lower == pins["dagster"], "the lower bound must be the release the suite ran on"


def test_servers_and_the_webserver_are_extras_that_dev_pulls_in() -> None:
    project = _project()
    core = _names(project["dependencies"])
    assert not core & {"starlette", "uvicorn", "hypercorn", "dagster-webserver"}
    extras = project["optional-dependencies"]
    assert _names(extras["emulator"]) == {"starlette", "uvicorn"}
    assert _names(extras["webhook"]) == {"starlette", "hypercorn"}
    (itself,) = [Requirement(r) for r in extras["dev"] if Requirement(r).name == "crust_assets"]
    assert {"emulator", "webhook"} <= itself.extras
    assert {"dagster-webserver", "dagster-dg-cli"} <= _names(extras["dev"])
    # `uv sync` installs the dev group: the same as pip install -e '.[dev]'.
    groups = tomllib.loads((REPO / "pyproject.toml").read_text())["dependency-groups"]
    assert groups["dev"] == ["crust_assets[dev]"]


HIDE_SERVERS = f"""
import sys
for name in {SERVER_MODULES!r}:
    sys.modules[name] = None  # as if not installed: importing it raises ImportError
try:
    import crust_assets.webhook
except ImportError:
    pass
else:
    raise SystemExit("the receiver imported without its server")
from crust_assets.definitions import defs
print(sorted(job.name for job in defs.resolve_all_job_defs()))
"""


def test_the_code_location_loads_without_the_servers() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HIDE_SERVERS], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "plan_contact_enrichment" in result.stdout


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel, built from the files deploy/Dockerfile copies into its build context."""
    context = tmp_path / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (context / name).write_bytes((REPO / name).read_bytes())
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "crust_assets", context / "crust_assets", ignore=ignore)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(context),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("crust_assets-*.whl")
    return wheel


@pytest.mark.slow
def test_the_wheel_holds_the_package_only_and_a_bare_install_names_the_extras(
    tmp_path: Path,
) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"crust_assets", wheel.name.split("-py")[0] + ".dist-info"}, tops
    assert "crust_assets/definitions.py" in names and "crust_assets/emulator/app.py" in names
    assert not [name for name in names if "crust_assets_tests" in name]
    # A fresh environment with the package and nothing else: the servers' extras are missing.
    env_dir = tmp_path / "bare"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    for command, extra in (("emulator", "emulator"), ("webhook", "webhook")):
        result = subprocess.run(
            [str(env_dir / "bin" / "crust-assets"), command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert f"pip install 'crust_assets[{extra}]'" in result.stderr
        assert "Traceback" not in result.stderr
