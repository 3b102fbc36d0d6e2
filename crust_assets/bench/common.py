"""Helpers shared by the benchmarks: timing against a baseline, child-process memory, the table.

Why ratios: this machine is shared and noisy, so an absolute time means little. Every figure that
matters is a ratio against a baseline measured in the same run, interleaved with it (baseline,
ours, baseline, ours, ...) and taken as the best of several rounds, so a burst of load from a
neighbour hits both sides alike. CPU seconds (all threads of this process) are reported beside
wall seconds: they are less sensitive to load, and say how much work each side does.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CACHE_ENV = "CRUST_BENCH_CACHE"


def cache_dir() -> Path:
    """Where generated inputs are kept between runs (env CRUST_BENCH_CACHE, else the temp dir)."""
    path = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "crust_assets_bench")
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Timing:
    """Best wall and CPU seconds over the rounds of one measured function."""

    wall: float = float("inf")
    cpu: float = float("inf")
    rounds: int = 0

    def add(self, wall: float, cpu: float) -> None:
        self.wall = min(self.wall, wall)
        self.cpu = min(self.cpu, cpu)
        self.rounds += 1


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process, result) of one call."""
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - wall0, time.process_time() - cpu0, result


def interleaved(
    functions: dict[str, Callable[[], Any]], rounds: int
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Run each function once per round, in turn; keep the best time of each.

    Every function runs once untimed first: the first call pays for lazy imports, thread pools
    and a cold page cache, which would otherwise count against whoever happens to go first.
    """
    timings = {name: Timing() for name in functions}
    results: dict[str, Any] = {name: fn() for name, fn in functions.items()}
    for _ in range(rounds):
        for name, fn in functions.items():
            wall, cpu, results[name] = measure(fn)
            timings[name].add(wall, cpu)
    return timings, results


def child_peak_rss(args: Sequence[str], *, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run `python -m <args>` in a fresh process; it prints a JSON dict as its last line.

    The child reports its own peak (see `self_peak_rss_mib`), so that the figure is that
    process alone, not the benchmark's own heap.
    """
    completed = subprocess.run(
        [sys.executable, "-m", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"child {' '.join(args)} failed ({completed.returncode}): {completed.stderr[-2000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def self_peak_rss_mib() -> float:
    """This process's peak resident set in MiB.

    `getrusage(RUSAGE_SELF).ru_maxrss` is the usual figure, but Linux carries it over
    from the parent across fork + exec, so a child started by a 300 MiB benchmark reports at
    least 300 MiB whatever it does. `VmHWM` in /proc/self/status is the same high-water mark
    for this process's own address space only; it is used where it exists, and
    `ru_maxrss` (KiB on Linux) elsewhere.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Row:
    """One line of the summary table."""

    section: str
    measure: str
    value: str
    target: str = ""
    verdict: str = ""


@dataclass
class Report:
    """Rows for the compact table plus the raw figures (printed as JSON with --json)."""

    rows: list[Row] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, section: str, measure: str, value: str, target: str = "", ok: bool | None = None):
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        self.rows.append(Row(section, measure, value, target, verdict))

    def render(self) -> str:
        headers = ("#", "measure", "value", "target", "")
        table = [headers] + [
            (r.section, r.measure, r.value, r.target, r.verdict) for r in self.rows
        ]
        widths = [max(len(str(row[i])) for row in table) for i in range(len(headers))]
        lines = []
        for index, row in enumerate(table):
            lines.append("  ".join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)))
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(line.rstrip() for line in lines)


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def fmt_seconds(value: float) -> str:
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def fmt_mib(value: float) -> str:
    return f"{value:.0f} MiB"
