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
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from crust_assets.defaults import DATA_DIR_ENV, DEFAULT_DATA_DIR, EMULATOR_HOST, EMULATOR_PORT

if TYPE_CHECKING:
    from crust_assets.erasure import ForgetReport
    from crust_assets.storage import DataLayout

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
        " deterministic data; jobs persist in --state-dir, owner-only). Auth: if"
        " CRUSTDATA_API_KEY is set only that bearer key is accepted, on the admin endpoints"
        " /_emulator/* too (but health), otherwise any non-empty key and an open admin API.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default=EMULATOR_HOST, help="address to bind")
    parser.add_argument("--port", type=int, default=EMULATOR_PORT, help="port to bind")
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
        "--processing-jitter-seconds",
        type=_non_negative_float,
        default=0.0,
        help="up to this much more processing time per job (drawn from its batch id)",
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
    from crust_assets.extras import missing_extra_message

    if missing := missing_extra_message("emulator", "crust-assets emulator"):
        print(missing, file=sys.stderr)
        return 2
    from crust_assets.emulator.app import EmulatorConfig
    from crust_assets.emulator.server import serve
    from crust_assets.emulator.store import StateDirInUseError

    if args.url_expiry_seconds > 604_800:
        print("crust-assets emulator: --url-expiry-seconds must be <= 604800", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        pending_seconds=args.pending_seconds,
        processing_seconds=args.processing_seconds,
        processing_jitter_seconds=args.processing_jitter_seconds,
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


def _add_webhook(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "webhook",
        help="receive Crustdata job-complete callbacks (hints for the submitter sensor)",
        description="Serve POST /hooks/crustdata/<token>. The token comes from env"
        " CRUST_WEBHOOK_TOKEN (at least 16 characters); point CRUST_WEBHOOK_URL at"
        " http://<this host>:<port>/hooks/crustdata/<token> so jobs are submitted with it.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8712, help="port to bind")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR),
        help="data root (env CRUST_DATA_DIR), the pipeline's own: a directory or an fsspec URL"
        " such as s3://bucket/prefix; hints go to <data>/webhooks/",
    )
    limits = {  # not given: the env var decides, else ReceiverLimits' default
        "--header-timeout": (float, "CRUST_WEBHOOK_HEADER_TIMEOUT_SECONDS", "10 s"),
        "--body-timeout": (float, "CRUST_WEBHOOK_BODY_TIMEOUT_SECONDS", "10 s"),
        "--max-concurrent": (int, "CRUST_WEBHOOK_MAX_CONCURRENT", "100 callbacks at once"),
        "--max-hints": (int, "CRUST_WEBHOOK_MAX_HINTS", "1000 hints waiting"),
    }
    for flag, (kind, variable, default) in limits.items():
        parser.add_argument(
            flag, type=kind, default=argparse.SUPPRESS, help=f"env {variable}, default {default}"
        )
    parser.set_defaults(func=_run_webhook)


def _run_webhook(args: argparse.Namespace) -> int:
    from crust_assets.extras import missing_extra_message

    if missing := missing_extra_message("webhook", "crust-assets webhook"):
        print(missing, file=sys.stderr)
        return 2
    from crust_assets.storage import DataLayout
    from crust_assets.webhook import ReceiverLimits, serve

    token = os.environ.get("CRUST_WEBHOOK_TOKEN", "")
    if len(token) < 16:
        print("crust-assets webhook: set CRUST_WEBHOOK_TOKEN (>= 16 characters)", file=sys.stderr)
        return 2
    try:
        flags = {name: getattr(args, name) for name in ReceiverLimits.ENV if name in args}
        limits = ReceiverLimits.from_env(**flags)
    except ValueError as error:
        print(f"crust-assets webhook: {error}", file=sys.stderr)
        return 2
    # As DataRoot.layout() builds it for the pipeline (the AWS env gives s3fs its endpoint and
    # credentials), without importing Dagster into the receiver.
    serve(args.host, args.port, DataLayout.from_location(args.data_dir), token, limits)
    return 0


def _add_forget(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "forget",
        help="erase people from the warehouse and refuse to enrich them again",
        description="Remove each person (any form of their profile URL) from every partition of"
        " enriched_contacts, from contacts_latest and from staged reused rows, rewriting the"
        " files atomically, record the erasure in <data>/erasures/runs/ (no contact values),"
        " then re-read every file to verify it. contact_enrichment_batch then skips erased URLs"
        " unless CRUST_ALLOW_REENRICH_ERASED=true. Exit 0: done and verified; 1: done, but"
        " something may still hold or write back the person (printed); 2: refused, or writers held"
        " the fence past --lock-timeout: nothing done, nothing recorded.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("profile_urls", nargs="+", metavar="PROFILE_URL", help="people to erase")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR),
        help="data root (env CRUST_DATA_DIR): a directory or an fsspec URL such as"
        " s3://bucket/prefix; refused if it has no warehouse/ directory",
    )
    parser.add_argument(
        "--new-root",
        action="store_true",
        help="accept a data root the pipeline has not written yet (no warehouse/): record the"
        " erasure there so the first plan already skips the person",
    )
    _add_erasure_limits(parser)
    parser.set_defaults(func=_run_forget)


def _add_erasure_limits(parser: argparse.ArgumentParser) -> None:
    """Each defaults to its env var (erasure.ErasureSettings), read when the command runs."""
    parser.add_argument(
        "--lock-timeout",
        type=_non_negative_float,
        default=argparse.SUPPRESS,
        help="local root: seconds to wait for running writers to leave the erasure fence"
        " (env CRUST_ERASURE_LOCK_TIMEOUT_SECONDS, default 600)",
    )
    parser.add_argument(
        "--settle-seconds",
        type=_non_negative_float,
        default=argparse.SUPPRESS,
        help="object store: wait before each verify pass, longer than any writer's fenced"
        " upload (env CRUST_ERASURE_SETTLE_SECONDS, default 15)",
    )
    parser.add_argument(
        "--verify-rounds",
        type=int,
        default=argparse.SUPPRESS,
        help="verify passes, each rewriting what it finds, before reporting failure"
        " (env CRUST_ERASURE_VERIFY_ROUNDS, default 5)",
    )


def _run_forget(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from crust_assets.erasure import (
        ErasureInputError,
        ErasureNotStarted,
        ErasureRefused,
        ErasureSettings,
        forget,
    )
    from crust_assets.storage import DataLayout, LockTimeout

    layout = DataLayout.from_location(args.data_dir)
    try:
        settings = ErasureSettings.from_env()  # a bad env value is an error, not a default
        given = {  # flags not given are absent (SUPPRESS): the env var's value stands
            "lock_timeout_seconds": getattr(args, "lock_timeout", None),
            "settle_seconds": getattr(args, "settle_seconds", None),
            "verify_rounds": getattr(args, "verify_rounds", None),
        }
        settings = replace(settings, **{k: v for k, v in given.items() if v is not None})
        if settings.verify_rounds < 1:
            raise ValueError("--verify-rounds must be at least 1")
    except ValueError as exc:
        print(f"crust-assets forget: {exc}", file=sys.stderr)
        return 2
    try:
        report = forget(layout, args.profile_urls, settings=settings, new_root=args.new_root)
    except (ErasureInputError, ErasureRefused, ErasureNotStarted) as exc:
        print(f"crust-assets forget: {exc}", file=sys.stderr)  # nothing erased or recorded
        return 2
    except LockTimeout as exc:  # recorded and rewritten, but a verify pass could not enter
        print(
            f"crust-assets forget: {exc}; the erasure is recorded but not verified: run forget "
            "again",
            file=sys.stderr,
        )
        return 1
    _print_forget_report(layout, report)
    return 0 if report.complete else 1


def _print_forget_report(layout: DataLayout, report: ForgetReport) -> None:
    for erasure in report.erasures:
        where = ", ".join(erasure.partitions) or "no enriched_contacts partition"
        print(
            f"{erasure.profile_url}: {erasure.rows_removed} rows removed from "
            f"{len(erasure.files)} files ({where})"
        )
        for plan in erasure.unloaded_plans:
            print(
                f"  note: {plan} names this person and is not loaded yet; its jobs not sent yet "
                "leave them out (unless CRUST_ALLOW_REENRICH_ERASED=true) and its "
                "enriched_contacts load drops their row"
            )
    for temp in report.removed_temp_files:
        print(f"removed {temp} (left by a writer that died)")
    for temp in report.live_temp_files:
        print(
            f"  warning: {temp} is being written (or was, less than an hour ago); it may hold "
            "the person: run forget again when it is gone",
            file=sys.stderr,
        )
    for path, urls in report.unverified.items():
        print(
            f"  error: {path} still holds {', '.join(sorted(set(urls)))} after "
            f"{report.verify_passes} verify passes: something writes it back; the erasure is "
            "NOT complete",
            file=sys.stderr,
        )
    if report.record:
        passes = f"{report.verify_passes} pass{'es' if report.verify_passes > 1 else ''}"
        verified = "" if report.unverified else f", verified ({passes})"
        print(
            f"recorded in {layout.url(layout.root / report.record)}{verified}; re-enrichment is "
            "refused from now on"
        )


def _add_export(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a day's enriched_list (one row per input line) as CSV or Parquet",
        description="Write enriched_list[DATE] from the warehouse: the CSV (your columns, then"
        " business_email, business_email_status, all_business_emails, personal_emails,"
        " phone_numbers, status, reason; formula-safe) or the Parquet file. The file is written"
        " atomically and owner-only. Exit 2 when the partition does not exist.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("date", metavar="DATE", help="the partition, YYYY-MM-DD")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument(
        "--out",
        default=None,
        help="where to write (default: <DATE>.enriched.csv or <DATE>.enriched.parquet here)",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR),
        help="data root (env CRUST_DATA_DIR): a directory or an fsspec URL",
    )
    parser.set_defaults(func=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crust_assets.enriched_list import csv_bytes
    from crust_assets.storage import DataLayout, atomic_path, write_table_atomic

    layout = DataLayout.from_location(args.data_dir)
    source = layout.warehouse_partition("enriched_list", args.date)
    if not layout.exists(source):
        print(
            f"crust-assets export: no enriched_list partition {args.date!r} at "
            f"{layout.url(source)}; materialise enriched_list[{args.date}] first",
            file=sys.stderr,
        )
        return 2
    table = layout.read_table(source)
    out = Path(args.out or f"{args.date}.enriched.{args.format}")
    if args.format == "parquet":
        write_table_atomic(out, table)
    else:
        with atomic_path(out, create=True) as temp:  # owner-only before a byte is written
            temp.write_bytes(csv_bytes(table))
    print(f"wrote {table.num_rows:,} lines to {out}")
    return 0


def _add_ingest(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="turn result files downloaded by hand into an enriched_contacts Parquet file",
        description="Read Crustdata batch result files (gzip or plain JSONL, detected by magic"
        " bytes; envelope or flat records) with the same code as the enriched_contacts asset,"
        " and write one Parquet file of the enriched_contacts schema atomically. Prints a JSON"
        " summary. Without --urls, duplicate profile URLs are dropped (the first is kept), which"
        " keeps every distinct URL in memory (~110 bytes each).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("files", nargs="+", metavar="RESULTS.jsonl.gz", help="result files")
    parser.add_argument("--out", required=True, metavar="FILE.parquet", help="file to write")
    parser.add_argument(
        "--batch-id", default=None, help="batch_id column (default: each file's name, no suffix)"
    )
    parser.add_argument(
        "--enriched-at",
        type=_utc_datetime,
        default=None,
        metavar="ISO-8601",
        help="enriched_at column, e.g. 2026-11-20T12:00:00Z (default: now; naive = UTC)",
    )
    parser.add_argument(
        "--urls",
        default=None,
        metavar="FILE",
        help="the job's submitted URLs, one per line (optional profile_url header): keep only"
        " those, count duplicates and unexpected records, report missing URLs",
    )
    parser.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="without --urls: keep every record (constant memory, no duplicate check)",
    )
    parser.add_argument(  # not given: the env var, read when ingest runs (a bad one: exit 2)
        "--max-line-bytes",
        type=_positive_int,
        default=argparse.SUPPRESS,
        help="longest result line read; a longer one is an error"
        " (env CRUST_RESULT_MAX_LINE_BYTES, default 16 MiB)",
    )
    parser.set_defaults(func=_run_ingest)


def _env_positive_int(name: str, default: int) -> int:
    """The env var's whole number (>= 1), or ``default`` when unset; ValueError naming it."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {text[:40]!r}")
    return value


def _utc_datetime(text: str) -> datetime:
    try:
        # Python 3.10's fromisoformat does not take a trailing "Z".
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _read_url_file(path: str) -> list[str]:
    with open(path, encoding="utf-8-sig") as handle:
        urls = [line.strip() for line in handle]
    if urls and urls[0] == "profile_url":
        urls = urls[1:]
    return [url for url in urls if url]


def _run_ingest(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from crust_assets.crustdata import DownloadError, ResultParseError
    from crust_assets.crustdata.limits import LIMIT_SETTINGS
    from crust_assets.ingest import MAX_LINE_BYTES, ResultFileError, ingest_files

    max_line_bytes = getattr(args, "max_line_bytes", None)
    try:
        if max_line_bytes is None:
            env = LIMIT_SETTINGS["max_line_bytes"][0]
            max_line_bytes = _env_positive_int(env, MAX_LINE_BYTES)
    except ValueError as error:
        print(f"crust-assets ingest: {error}", file=sys.stderr)
        return 2
    try:
        expected = _read_url_file(args.urls) if args.urls else None
        report = ingest_files(
            [Path(f) for f in args.files],
            Path(args.out),
            batch_id=args.batch_id,
            enriched_at=args.enriched_at,
            expected_urls=expected,
            dedupe=not args.keep_duplicates,
            max_line_bytes=max_line_bytes,
        )
    except (OSError, ResultFileError, ResultParseError, DownloadError) as error:
        print(f"crust-assets ingest: {error}", file=sys.stderr)
        return 1
    print(json.dumps(dataclasses.asdict(report), indent=2))
    return 0


def _add_doctor(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="check what a real run needs, without spending a credit",
        description="One line per check, ok or what is wrong and what to do: the API key (one"
        " free GET /batch), the data root (writable, files owner-only), the Dagster instance"
        " (DAGSTER_HOME, persistent, concurrency pools), the sensors and schedule, and today's"
        " input list. Exit 0 when all are ok, 1 otherwise.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get(DATA_DIR_ENV, DEFAULT_DATA_DIR),
        help="data root (env CRUST_DATA_DIR): a directory or an fsspec URL",
    )
    parser.add_argument(
        "--date", default=None, help="the day whose input list to look for (default: today, UTC)"
    )
    parser.set_defaults(func=_run_doctor)


def _run_doctor(args: argparse.Namespace) -> int:
    from datetime import date

    from crust_assets.doctor import run_doctor

    today = date.fromisoformat(args.date) if args.date else datetime.now(timezone.utc).date()
    findings = run_doctor(args.data_dir, today)
    for finding in findings:
        print(finding.line())
    return 0 if all(f.ok for f in findings) else 1


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each subcommand is added by its own ``_add_*`` function."""
    parser = argparse.ArgumentParser(
        prog="crust-assets",
        description="crust_assets tools: the local Crustdata API emulator and friends.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_emulator(subparsers)
    _add_ingest(subparsers)
    _add_forget(subparsers)
    _add_webhook(subparsers)
    _add_export(subparsers)
    _add_doctor(subparsers)
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
