"""`make demo` / `make ui`: the whole pipeline on this machine, against the local emulator.

The demo starts the emulator and a real Dagster instance (`dagster dev`: webserver + daemon, with
DAGSTER_HOME under the repo), launches the shipped sample list through the GraphQL API the UI
uses, shows the job queue while the daemon's sensor works it, and prints where the table is.
It never uses a real API key: a demo must not spend anyone's credits.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from crust_assets.defaults import EMULATOR_HOST, EMULATOR_PORT
from crust_assets.emulator.process import EmulatorProcess

REPO_ROOT = Path(__file__).resolve().parent.parent
# The code location's name in every launch path (workspace.yaml, [tool.dg] in pyproject.toml,
# deploy/): Dagster keeps sensor and schedule state per location name.
CODE_LOCATION = "crust_assets"
DAGSTER_YAML = """\
# Written by crust_assets.demo for the local demo instance (git-ignored).
telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 4
  # The default 5 s adds 2.5 s on average between a requested run and its launch.
  dequeue_interval_seconds: 1
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DagsterDev:
    """A `dagster dev` process group (webserver + daemon) on a loopback port."""

    process: subprocess.Popen[bytes]
    port: int
    home: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dagster dev exited early; see {self.log_path}")
            try:
                response = httpx.post(
                    f"{self.url}/graphql",
                    json={"query": "{ version }"},
                    timeout=5.0,
                )
                if response.status_code == 200 and self._location_loaded():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1.0)
        raise TimeoutError(f"dagster dev not ready after {timeout:.0f} s; see {self.log_path}")

    def _location_loaded(self) -> bool:
        data = graphql(self.url, LOCATIONS_QUERY)
        entries = data["workspaceOrError"].get("locationEntries", [])
        for entry in entries:
            error = entry.get("locationOrLoadError") or {}
            if error.get("__typename") == "PythonError":
                raise RuntimeError(f"the code location failed to load: {error.get('message')}")
        return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)

    def stop(self, grace: float = 20.0) -> None:
        """SIGINT the group (dagster dev's clean shutdown), then SIGKILL after a grace.

        dagster dev can exit before its code servers (same group) have: they are waited for
        too, and killed with the group if they outlive the grace, so none keeps its socket.
        """
        if self.process.poll() is not None and not _group_alive(self.process.pid):
            return
        deadline = time.monotonic() + grace
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(timeout=grace)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            pass
        while _group_alive(self.process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _group_alive(pgid: int) -> bool:
    """Does any process of group `pgid` still exist?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def graphql(url: str, query: str, variables: Mapping[str, object] | None = None) -> dict:
    response = httpx.post(
        f"{url}/graphql", json={"query": query, "variables": dict(variables or {})}, timeout=30.0
    )
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL error: {body['errors']}")
    return body["data"]


LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""


LOCATIONS_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""

REPOSITORIES_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection {
    nodes { name location { name } jobs { name } } } } }
"""


def find_job(url: str, job_name: str, location: str = CODE_LOCATION) -> tuple[str, str]:
    """(code location, repository) that hold `job_name`, as the UI resolves them.

    Only in `location`: a workspace that named this project's location otherwise would keep its
    sensors' state apart from every other launch path's, so the demo refuses it.
    """
    nodes = graphql(url, REPOSITORIES_QUERY)["repositoriesOrError"]["nodes"]
    for node in nodes:
        if node["location"]["name"] != location:
            continue
        if any(job["name"] == job_name for job in node["jobs"]):
            return node["location"]["name"], node["name"]
    names = sorted({node["location"]["name"] for node in nodes})
    raise RuntimeError(f"no job {job_name!r} in location {location!r} at {url}; locations: {names}")


def launch_partition(url: str, job_name: str, partition: str) -> str:
    """Launch a job's partition as the UI's Materialize button does: GraphQL, partition tag."""
    location, repository = find_job(url, job_name)
    params = {
        "selector": {
            "repositoryLocationName": location,
            "repositoryName": repository,
            "jobName": job_name,
        },
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    result = graphql(url, LAUNCH_MUTATION, {"params": params})["launchPipelineExecution"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launch failed: {result}")
    return str(result["run"]["runId"])


def start_dagster_dev(
    home: Path, env: Mapping[str, str], port: int | None = None, cwd: Path = REPO_ROOT
) -> DagsterDev:
    home.mkdir(parents=True, exist_ok=True)
    dagster_yaml = home / "dagster.yaml"
    if not dagster_yaml.exists():
        dagster_yaml.write_text(DAGSTER_YAML)
    port = port or free_port()
    log_path = home / "dagster-dev.log"
    log = open(log_path, "ab")  # noqa: SIM115 - handed to the child process
    command = [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        str(cwd / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return DagsterDev(process=process, port=port, home=home, log_path=log_path)


def demo_environment(emulator_url: str, data_dir: Path, poll_seconds: int = 5) -> dict[str, str]:
    return {
        "CRUSTDATA_BASE_URL": emulator_url,
        "CRUST_DATA_DIR": str(data_dir),
        "CRUST_POLL_INTERVAL_SECONDS": str(poll_seconds),
        "CRUST_RETRY_COOLDOWN_SECONDS": "5",
        "DAGSTER_DISABLE_TELEMETRY": "1",
    }


def sample_partition(data_dir: Path) -> str:
    """The newest shipped list's date."""
    lists = sorted((data_dir / "input").glob("????-??-??.csv"))
    if not lists:
        raise SystemExit(f"no sample list in {data_dir / 'input'}")
    return lists[-1].stem


def main(argv: list[str] | None = None) -> int:
    from crust_assets.demo_progress import summarise, wait_for_partition

    parser = argparse.ArgumentParser(prog="crust-assets demo", description=__doc__)
    parser.add_argument("--ui", action="store_true", help="start everything and wait (make ui)")
    parser.add_argument("--date", help="partition to run (default: the newest list in input/)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument(
        "--emulator-state",
        type=Path,
        default=REPO_ROOT / ".crust_emulator",
        help="the emulator's state dir (default: .crust_emulator/ in the repo)",
    )
    args = parser.parse_args(argv)
    _stop_on_termination()

    if os.environ.pop("CRUSTDATA_API_KEY", None):
        print("note: CRUSTDATA_API_KEY is set; the demo ignores it and uses the local emulator.")
    data_dir = Path(os.environ.get("CRUST_DATA_DIR", REPO_ROOT / "data")).resolve()
    home = Path(os.environ.get("DAGSTER_HOME", REPO_ROOT / ".dagster_home")).resolve()
    emulator = EmulatorProcess(args.emulator_state, port=_emulator_port())
    dev: DagsterDev | None = None
    try:
        emulator.start()
        print(f"emulator:   {emulator.base_url}  (state in {args.emulator_state})")
        dev = start_dagster_dev(home, demo_environment(emulator.base_url, data_dir))
        print(f"dagster:    starting on {dev.url} (DAGSTER_HOME={home}) ...")
        dev.wait_ready()
        print(f"dagster:    ready: open {dev.url} to watch")
        if args.ui:
            print("Press Ctrl-C to stop.")
            while dev.process.poll() is None:
                time.sleep(1.0)
            return 0
        date = args.date or sample_partition(data_dir)
        run_id = launch_partition(dev.url, "plan_contact_enrichment", date)
        print(f"launched:   plan_contact_enrichment[{date}] run {run_id}")
        os.environ["DAGSTER_HOME"] = str(home)
        wait_for_partition(date, plan_run_id=run_id, timeout=args.timeout, echo=print)
        print(summarise(data_dir, date))
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)  # a second signal must not cut the clean-up
        if dev is not None:
            dev.stop()
        emulator.stop()


def _stop_on_termination() -> None:
    """`kill`, a closed terminal or a CI timeout must clean up as Ctrl-C does: dagster dev runs
    in a process group of its own and would otherwise outlive the demo, holding its ports."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def _emulator_port() -> int:
    """The documented port (8711) when free, else any free port."""
    with socket.socket() as sock:
        try:
            sock.bind((EMULATOR_HOST, EMULATOR_PORT))
            return EMULATOR_PORT
        except OSError:
            return free_port()


if __name__ == "__main__":
    raise SystemExit(main())
