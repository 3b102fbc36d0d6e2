"""The ``crust-assets`` command line.

Why argparse subcommands: each tool (``emulator`` now; ``ingest`` and
``forget`` to come) registers its own subparser through an ``_add_<name>``
function and sets ``func`` to its handler, so adding one touches nothing
else. Heavy imports (starlette, uvicorn, dagster, pyarrow) happen inside
the handlers, so ``crust-assets --help`` stays instant.

Usage::

    crust-assets emulator --port 8711 --state-dir .crust_emulator
    python -m crust_assets.cli emulator ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

DEFAULT_EMULATOR_HOST = "127.0.0.1"
DEFAULT_EMULATOR_PORT = 8711
DEFAULT_EMULATOR_STATE_DIR = ".crust_emulator"


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1: {text!r}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _faults_json(text: str) -> dict[str, object]:
    """Parse and validate ``--faults`` up front so a typo fails at start, not mid-test."""
    from crust_assets.emulator.faults import FaultConfigError, validate_faults

    try:
        return validate_faults(json.loads(text))
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--faults is not valid JSON: {exc}") from None
    except FaultConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_emulator(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator",
        help="run the local Crustdata batch contact-enrich API emulator",
        description="Serve the Crustdata batch contact-enrich API locally (synthetic,"
        " deterministic data; jobs persist in --state-dir). Auth: if CRUSTDATA_API_KEY is set"
        " only that bearer key is accepted, otherwise any non-empty key.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_EMULATOR_HOST, help="address to bind")
    parser.add_argument("--port", type=int, default=DEFAULT_EMULATOR_PORT, help="port to bind")
    parser.add_argument(
        "--state-dir",
        default=DEFAULT_EMULATOR_STATE_DIR,
        help="directory for the SQLite state, signing secret and result files",
    )
    parser.add_argument(
        "--pending-seconds",
        type=_non_negative_float,
        default=1.0,
        help="how long a new job stays pending",
    )
    parser.add_argument(
        "--processing-seconds",
        type=_non_negative_float,
        default=2.0,
        help="how long a job then stays processing",
    )
    parser.add_argument(
        "--part-size", type=_positive_int, default=1000, help="records per result part file"
    )
    parser.add_argument(
        "--url-expiry-seconds",
        type=_positive_int,
        default=432_000,
        help="validity of pre-signed download URLs (max 604800)",
    )
    parser.add_argument(
        "--credits",
        type=_int,
        default=1_000_000,
        help="starting credit balance (only when the state dir is new)",
    )
    parser.add_argument(
        "--faults",
        type=_faults_json,
        default={},
        metavar="JSON",
        help="initial faults, e.g. '{\"error_rate\": 0.3}' (see /_emulator/faults)",
    )
    parser.add_argument(
        "--insufficient-credits-status",
        type=int,
        choices=(402, 403),
        default=402,
        help="HTTP status answered when the balance is exhausted",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log verbosity",
    )
    parser.set_defaults(func=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    from crust_assets.emulator.app import EmulatorConfig
    from crust_assets.emulator.server import serve
    from crust_assets.emulator.store import StateDirInUseError

    if args.url_expiry_seconds > 604_800:
        print("crust-assets emulator: --url-expiry-seconds must be <= 604800", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        pending_seconds=args.pending_seconds,
        processing_seconds=args.processing_seconds,
        part_size=args.part_size,
        url_expiry_seconds=args.url_expiry_seconds,
        credits=args.credits,
        insufficient_credits_status=args.insufficient_credits_status,
        faults=dict(args.faults),
        api_key=os.environ.get("CRUSTDATA_API_KEY") or None,
    )
    try:
        serve(args.host, args.port, args.state_dir, config, log_level=args.log_level)
    except StateDirInUseError as exc:
        print(f"crust-assets emulator: {exc}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each subcommand is added by its own ``_add_*`` function."""
    parser = argparse.ArgumentParser(
        prog="crust-assets",
        description="crust_assets tools: the local Crustdata API emulator and friends.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_emulator(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``crust-assets``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
