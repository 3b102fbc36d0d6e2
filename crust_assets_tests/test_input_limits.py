"""Bounded input lists: size and row caps, cut raw values, wide encodings, memory, real runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import BinaryIO

import dagster as dg
import pyarrow.parquet as pq
import pytest

from crust_assets.defs.resources import build_resources
from crust_assets.profile_urls import MAX_URL_LENGTH
from crust_assets.url_lists import (
    DEFAULT_INPUT_MAX_BYTES,
    InputLimits,
    UrlListError,
    check_input_size,
    prepare_url_list,
    read_url_list,
    read_url_list_stream,
    truncated_value,
)
from crust_assets_tests import test_object_store
from crust_assets_tests.pipeline_harness import Pipeline, make_urls

DATE = "2026-11-20"
JD = "https://www.linkedin.com/in/john-doe"
UNREACHABLE_API = "http://127.0.0.1:9"  # contact_url_list never calls the API
# The moto S3 server and a fresh bucket, as the object-store tests use them.
object_store = test_object_store.object_store
bucket = test_object_store.bucket


def write(tmp_path: Path, content: str | bytes, name: str = "list.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    return " ".join(str(e.event_specific_data) for e in result.all_events if e.is_failure)


# ---- size and row caps ------------------------------------------------------------------------
def test_file_over_the_size_cap_is_refused_before_it_is_opened(tmp_path: Path) -> None:
    def opener() -> BinaryIO:
        raise AssertionError("the file was opened although its size is over the cap")

    with pytest.raises(UrlListError) as info:
        read_url_list_stream("s3://bucket/input/big.csv", opener, size=600_000_000)
    message = str(info.value)
    assert message.startswith("s3://bucket/input/big.csv: ")
    assert "600,000,000 bytes (572.2 MiB)" in message
    assert f"{DEFAULT_INPUT_MAX_BYTES:,} bytes (512.0 MiB)" in message
    assert "CRUST_INPUT_MAX_BYTES" in message


def test_size_cap_is_inclusive_and_settable(tmp_path: Path) -> None:
    path = write(tmp_path, f"profile_url\n{JD}\n")
    size = path.stat().st_size
    assert read_url_list(path, InputLimits(max_bytes=size)).num_rows == 1
    with pytest.raises(UrlListError, match=f"{size:,} bytes .* limit of {size - 1:,} bytes"):
        read_url_list(path, InputLimits(max_bytes=size - 1))
    check_input_size("x", 0, 0)  # an empty file is never over a cap


def test_a_file_that_grows_after_its_size_was_taken_is_still_capped(tmp_path: Path) -> None:
    path = write(tmp_path, "profile_url\n")
    stated = path.stat().st_size
    with open(path, "a", encoding="utf-8") as handle:  # appended after the stat
        handle.write("\n".join(make_urls("grown", 5000)) + "\n")
    with pytest.raises(UrlListError) as info:
        read_url_list_stream(
            str(path), partial(open, path, "rb"), size=stated, limits=InputLimits(max_bytes=100_000)
        )
    assert str(info.value).startswith(f"{path}: the file grew past the input limit of 100,000")


@pytest.mark.parametrize("header", [True, False])
def test_row_cap(tmp_path: Path, header: bool) -> None:
    lines = (["profile_url"] if header else []) + make_urls("cap", 10)
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert read_url_list(path, InputLimits(max_rows=10)).num_rows == 10
    with pytest.raises(UrlListError) as info:
        read_url_list(path, InputLimits(max_rows=9))
    assert str(info.value).startswith(f"{path}: more than 9 rows")
    assert "CRUST_INPUT_MAX_ROWS" in str(info.value)


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_resources()["enrichment"].input_limits() == InputLimits()
    monkeypatch.setenv("CRUST_INPUT_MAX_BYTES", "1048576")
    monkeypatch.setenv("CRUST_INPUT_MAX_ROWS", "1000")
    enrichment = build_resources()["enrichment"]
    assert enrichment.process_config_and_initialize().input_limits() == InputLimits(
        max_bytes=1_048_576, max_rows=1000
    )


# ---- cut raw values -----------------------------------------------------------------------------
@pytest.mark.parametrize("header", [True, False])
def test_overlong_value_is_stored_cut_with_its_real_length(tmp_path: Path, header: bool) -> None:
    long_url = JD + "x" * 5_000_000
    at_limit = "https://www.linkedin.com/in/" + "y" * (MAX_URL_LENGTH - 28)
    values = [JD, long_url, at_limit]
    lines = [f"n{i},{v}" if header else v for i, v in enumerate(values)]
    path = write(tmp_path, "\n".join((["name,profile_url"] if header else []) + lines) + "\n")
    url_list = read_url_list(path)
    first_line = 2 if header else 1
    assert dict(url_list.truncated_lengths) == {first_line + 1: len(long_url)}
    prepared = prepare_url_list(url_list)
    by_line = {r["line_number"]: r for r in prepared.rejects.to_pylist()}
    cut = by_line[first_line + 1]
    assert cut["reason"] == "too_long"
    assert cut["raw_value"] == truncated_value(long_url)
    assert cut["raw_value"].startswith(long_url[:MAX_URL_LENGTH])
    assert cut["raw_value"].endswith(f"…[truncated {len(long_url) - MAX_URL_LENGTH} characters]")
    assert cut["message"] == (
        f"value has {len(long_url):,} characters; the limit is 2,048 "
        "(stored cut to its first 2,048)"
    )
    kept = by_line[first_line + 2]  # exactly at the limit: stored whole, rejected for its slug
    assert kept["raw_value"] == at_limit and kept["reason"] == "too_long"
    assert "…[truncated" not in kept["message"]


# ---- encodings ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("encoding", "named"),
    [("utf-16-le", "UTF-16-LE"), ("utf-16-be", "UTF-16-BE"), ("utf-32-le", "UTF-32")],
)
def test_wide_encoding_without_bom_is_an_encoding_error(
    tmp_path: Path, encoding: str, named: str
) -> None:
    text = "profile_url\n" + "\n".join(make_urls("wide", 1000)) + "\n"
    path = write(tmp_path, text.encode(encoding))
    with pytest.raises(UrlListError) as info:
        read_url_list(path)
    message = str(info.value)
    assert message.startswith(f"{path}: the file looks like {named}")
    assert "without a byte-order mark" in message and "save it as UTF-8" in message


def test_a_few_nul_bytes_in_utf8_stay_control_character_rejects(tmp_path: Path) -> None:
    path = write(tmp_path, f"profile_url\n{JD}\nlinkedin.com/in/a\x00b\n{JD}-2\n")
    prepared = prepare_url_list(read_url_list(path))
    assert prepared.rejected_by_reason == {"control_character": 1}
    assert prepared.valid_count == 2


# ---- memory -------------------------------------------------------------------------------------
# Peak RSS of the child alone: VmHWM belongs to the new program, whereas getrusage's ru_maxrss
# keeps the high-water mark of the forked pytest process across exec (Linux).
_MEASURE = textwrap.dedent(
    """
    import json, re, resource, sys
    from pathlib import Path
    from crust_assets.url_lists import prepare_url_list, read_url_list

    def peak():
        status = Path("/proc/self/status")
        if status.exists():
            return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read_text()).group(1)) * 1024
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    before = peak()
    url_list = read_url_list(sys.argv[1])
    after_read = peak()
    prepared = prepare_url_list(url_list)
    longest = max((len(v) for v in prepared.rejects.column("raw_value").to_pylist()), default=0)
    print(json.dumps({"read": after_read - before, "all": peak() - before,
                      "rows": prepared.rows_read, "longest_stored": longest}))
    """
)


def measure(path: Path) -> dict[str, int]:
    """Peak RSS growth of reading and preparing `path`, in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture
def thirty_mb_list(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "30mb.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("name,profile_url\n")
        for i in range(30_000_000 // 53):
            handle.write(f"person {i:08d},https://www.linkedin.com/in/person-{i:08d}\n")
    yield path
    path.unlink()  # 34 MB: do not leave it for the rest of the session


def test_reading_streams_the_file(thirty_mb_list: Path) -> None:
    """Reading holds the values as Arrow (about the file's size), not the file and its lines.

    Reading the whole file, decoding it and splitting it into Python strings took about 8 times
    the file's size before a value was normalised; preparing then took about 9 times in all.
    """
    size = thirty_mb_list.stat().st_size
    figures = measure(thirty_mb_list)
    print(f"{size / 1e6:.0f} MB list: {figures}")
    assert figures["rows"] == 30_000_000 // 53
    assert figures["read"] < 3 * size + 20_000_000, figures
    # What the README promises for a whole contact_url_list: about 5x the file, plus ~150 MB.
    assert figures["all"] < 6 * size + 80_000_000, figures


def test_a_100_mb_cell_is_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "cell.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"name,profile_url\na,{JD}\nb,{JD}{'x' * 100_000_000}\nc,{JD}-2\n")
    figures = measure(path)
    print(f"100 MB cell: {figures}")
    assert figures["rows"] == 3
    assert figures["longest_stored"] == len(truncated_value(JD + "x" * 100_000_000))
    assert figures["longest_stored"] < 2100
    # The line is held while it is read (about 3 copies of it, briefly), never more.
    assert figures["all"] < 400_000_000, figures


# ---- through Dagster: what a user sees in the failed run ---------------------------------------
def test_failed_run_says_which_line_holds_the_stray_quote(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path / "data", UNREACHABLE_API)
    urls = make_urls("quote", 1000)
    lines = ["profile_url", *urls[:499], '"' + urls[499], *urls[500:]]  # line 501
    path = pipeline.layout.input_file(DATE)
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = pipeline.plan(DATE, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"{path}: line 501: a quoted value opens on this line" in text
    assert not pipeline.layout.exists(pipeline.layout.warehouse_partition("rejected_urls", DATE))


def test_failed_run_names_the_size_cap_and_its_setting(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path / "data", UNREACHABLE_API, settings={"input_max_bytes": 10_000})
    path = pipeline.write_list(DATE, make_urls("big", 500))
    size = Path(path).stat().st_size
    result = pipeline.plan(DATE, raise_on_error=False)
    assert not result.success
    text = failure_text(result)
    assert f"{path}: the file is {size:,} bytes" in text
    assert "limit of 10,000 bytes" in text and "CRUST_INPUT_MAX_BYTES" in text


def test_failed_run_names_a_bomless_utf16_file(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path / "data", UNREACHABLE_API)
    path = pipeline.layout.input_file(DATE)
    text = "profile_url\n" + "\n".join(make_urls("wide", 1000)) + "\n"
    Path(path).write_bytes(text.encode("utf-16-le"))
    result = pipeline.plan(DATE, raise_on_error=False)
    assert not result.success
    assert f"{path}: the file looks like UTF-16-LE without a byte-order mark" in failure_text(
        result
    )


def test_materialised_rejects_hold_a_cut_value(tmp_path: Path) -> None:
    pipeline = Pipeline(tmp_path / "data", UNREACHABLE_API)
    long_value = JD + "z" * 3_000_000
    pipeline.write_list(DATE, [*make_urls("cut", 3), long_value])
    result = pipeline.materialize("contact_url_list", partition=DATE)
    assert result.success
    metadata = pipeline.latest_materialization("contact_url_list", DATE).metadata
    assert metadata["rows_read"].value == 4 and metadata["rejected"].value == 1
    assert metadata["input_bytes"].value == Path(pipeline.layout.input_file(DATE)).stat().st_size
    rejects = pq.read_table(pipeline.layout.warehouse_partition("rejected_urls", DATE))
    [row] = rejects.to_pylist()
    assert row["line_number"] == 5 and row["reason"] == "too_long"
    assert row["raw_value"] == truncated_value(long_value)
    assert f"value has {len(long_value):,} characters" in row["message"]


@pytest.mark.objectstore
def test_a_list_in_a_bucket_is_sized_before_it_is_read_and_streamed(bucket: str) -> None:
    root = f"s3://{bucket}/crust"
    capped = Pipeline(root, UNREACHABLE_API, settings={"input_max_bytes": 5_000})
    path = capped.write_list(DATE, make_urls("s3cap", 200))
    size = capped.layout.size(path)
    assert size > 5_000
    text = failure_text(capped.plan(DATE, raise_on_error=False))
    assert f"{root}/input/{DATE}.csv: the file is {size:,} bytes" in text
    assert "limit of 5,000 bytes" in text and "CRUST_INPUT_MAX_BYTES" in text

    pipeline = Pipeline(root, UNREACHABLE_API)
    lines = ["profile_url", *make_urls("s3quote", 300)]
    lines[150] = '"' + lines[150]  # line 151
    pipeline.layout.fs.pipe_file(str(path), ("\n".join(lines) + "\n").encode())
    text = failure_text(pipeline.plan(DATE, raise_on_error=False))
    assert f"{root}/input/{DATE}.csv: line 151: a quoted value opens" in text

    pipeline.write_list(DATE, [*make_urls("s3ok", 300), JD + "q" * 10_000])
    assert pipeline.materialize("contact_url_list", partition=DATE).success
    metadata = pipeline.latest_materialization("contact_url_list", DATE).metadata
    assert metadata["rows_read"].value == 301 and metadata["rejected"].value == 1
    assert metadata["input_bytes"].value == pipeline.layout.size(path)
