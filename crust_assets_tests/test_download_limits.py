"""Result downloads against broken and hostile servers: parts that heal, caps, URL safety.

Each attack is reproduced over real HTTP on 127.0.0.1 (``hostile_store.HostileStore``), scaled
down by setting small caps where the real size would only cost test time, and each test checks
what a user would: the records arrive (or a DownloadError names batch, part and limit), and the
client stopped early (time, bytes sent, memory).
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import random
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import httpx
import pytest

from crust_assets.cli import main as cli_main
from crust_assets.crustdata import (
    BatchStatus,
    CrustdataClient,
    DownloadError,
    DownloadLimits,
    ResultRecord,
)
from crust_assets.crustdata.download import part_retry_delay, verify_part
from crust_assets.crustdata.limits import LIMIT_SETTINGS, host_patterns
from crust_assets.crustdata.retry import RetryPolicy
from crust_assets.crustdata.urlcheck import UrlGuard, address_refusal, host_allowed
from crust_assets.defs.resources import CrustdataResource, build_resources
from crust_assets.emulator import EmulatorProcess
from crust_assets.ingest import ResultFileError, ingest_files
from crust_assets_tests.hostile_store import (
    BATCH_ID,
    HostileStore,
    Reply,
    endless,
    gz,
    members,
    record_line,
    status_doc,
    trickle,
)

MIB = 1024 * 1024
AKIA = "AKIAIOSFODNN7EXAMPLE"


@pytest.fixture
def store() -> Iterator[HostileStore]:
    with HostileStore() as server:
        yield server


def client_for(base_url: str, **limits: object) -> CrustdataClient:
    return CrustdataClient(
        "k",
        base_url,
        timeout=5.0,
        backoff_base=0.05,
        max_attempts=2,
        download_limits=DownloadLimits(**limits),  # type: ignore[arg-type]
    )


def batch_of(urls: list[str], result_count: int = 1) -> BatchStatus:
    return BatchStatus.model_validate_json(status_doc(urls, result_count))


def lines(prefix: str, n: int) -> list[str]:
    return [f"https://www.linkedin.com/in/{prefix}-{i}" for i in range(n)]


def download_error(client: CrustdataClient, batch: BatchStatus) -> DownloadError:
    got: list[ResultRecord] = []
    with client, pytest.raises(DownloadError) as info:
        got.extend(client.iter_results(batch))
    assert got == []  # nothing of a refused part is ever yielded
    return info.value


def assert_names_limit(err: DownloadError, part: str, limit: str, env: str) -> None:
    text = str(err)
    assert (err.batch_id, err.part, err.limit) == (BATCH_ID, part, limit)
    assert BATCH_ID in text and part in text and f"limit {limit}=" in text and env in text
    assert "X-Amz-Signature=" not in text


# ---- parts that heal by themselves ----------------------------------------------------------
def test_every_part_corrupt_on_its_first_download_is_delivered_in_one_call(
    store: HostileStore,
) -> None:
    urls = lines("heal", 9)
    bodies = [gz(b"".join(record_line(u) for u in urls[i : i + 3])) for i in range(0, 9, 3)]
    spoil: list[Callable[[bytes], bytes]] = [
        lambda b: b[: len(b) // 2],  # truncated, but a complete HTTP response
        lambda b: b[:-8] + b"\0\0\0\0" + b[-4:],  # bad CRC
        lambda b: b[:12] + bytes(x ^ 0xFF for x in b[12:20]) + b[20:],  # flipped bytes
    ]
    for i, body in enumerate(bodies):
        bad = spoil[i](body)
        store.route(
            f"/p/part-00{i}.jsonl.gz", lambda n, b=body, x=bad: Reply(body=x if n == 1 else b)
        )
    batch = batch_of([store.url(f"/p/part-00{i}.jsonl.gz") for i in range(3)], 9)
    with client_for(store.base_url) as client:
        records = list(client.iter_results(batch))
    assert [r.profile_url for r in records] == urls
    assert [store.hits[f"/p/part-00{i}.jsonl.gz"] for i in range(3)] == [2, 2, 2]


def test_each_part_truncated_on_first_download_by_the_emulator(
    emulator_factory: Callable[..., EmulatorProcess],
) -> None:
    emulator = emulator_factory(part_size=3)
    urls = lines("emu-heal", 8)
    with CrustdataClient(emulator.api_key, emulator.base_url, backoff_base=0.05) as client:
        batch_id = client.submit(urls, ["business_email"]).batch_id
        batch = client.wait_until_terminal(batch_id, poll_interval=0.1, timeout=10)
        emulator.admin.set_faults(truncate_first_downloads=True)
        records = list(client.iter_results(batch))
    assert [r.profile_url for r in records] == urls
    assert len(batch.part_urls) == 3


def test_a_part_broken_every_time_gives_up_after_its_attempts(
    store: HostileStore, caplog: pytest.LogCaptureFixture
) -> None:
    body = gz(record_line("https://www.linkedin.com/in/x"))
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=body[:-9]))
    caplog.set_level(logging.WARNING, logger="crust_assets.crustdata")
    err = download_error(
        client_for(store.base_url, part_attempts=3), batch_of([store.url("/p/part-000.jsonl.gz")])
    )
    assert store.hits["/p/part-000.jsonl.gz"] == 3
    assert err.retryable and "truncated" in str(err) and "gave up after 3 download(s)" in str(err)
    assert sum("fetching the part again" in r.getMessage() for r in caplog.records) == 2


def test_an_expired_url_is_refreshed_once_then_the_part_heals(store: HostileStore) -> None:
    body = gz(record_line("https://www.linkedin.com/in/expired"))
    denied = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    store.route(
        "/p/part-000.jsonl.gz",
        lambda n: (
            Reply(403, denied) if n == 1 else Reply(body=body[:20]) if n == 2 else Reply(body=body)
        ),
    )
    fresh = [store.url("/p/part-000.jsonl.gz", signature="sig-2")]
    store.route(f"/batch/{BATCH_ID}", lambda n: Reply(body=status_doc(fresh, 1)))
    with client_for(store.base_url) as client:
        records = list(client.iter_results(batch_of([store.url("/p/part-000.jsonl.gz")])))
    assert [r.profile_url for r in records] == ["https://www.linkedin.com/in/expired"]
    assert store.hits[f"/batch/{BATCH_ID}"] == 1 and store.hits["/p/part-000.jsonl.gz"] == 3


# ---- caps -------------------------------------------------------------------------------------
def test_a_3mb_gzip_of_newlines_stops_at_the_line_count_within_a_second(
    store: HostileStore,
) -> None:
    bomb = members(b"\n" * MIB, 3000)  # ~3 MB on the wire, 3 GiB of blank lines
    assert 2 * MIB < len(bomb) < 4 * MIB
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=bomb))
    started = time.process_time()
    err = download_error(client_for(store.base_url), batch_of([store.url("/p/part-000.jsonl.gz")]))
    assert time.process_time() - started < 5.0  # was 212 s of CPU
    assert_names_limit(err, "part-000.jsonl.gz", "max_lines", "CRUST_RESULT_MAX_LINES")
    assert store.hits["/p/part-000.jsonl.gz"] == 1  # a cap is final: not fetched again


def test_one_huge_line_stops_at_the_line_cap_in_bounded_memory(store: HostileStore) -> None:
    bomb = members(b"a" * MIB, 300)  # ~300 KB holding one 300 MiB line
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=bomb))
    client = client_for(store.base_url, max_line_bytes=4 * MIB)
    tracemalloc.start()
    try:
        err = download_error(client, batch_of([store.url("/p/part-000.jsonl.gz")]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB  # was 1.28 GB
    assert_names_limit(err, "part-000.jsonl.gz", "max_line_bytes", "CRUST_RESULT_MAX_LINE_BYTES")
    assert "line 1 is too long" in str(err)


def test_decoded_size_is_capped(store: HostileStore) -> None:
    body = members(b"x" * 99 + b"\n", 200_000)  # 20 MB of 100-byte lines
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=body))
    err = download_error(
        client_for(store.base_url, max_decompressed_bytes=MIB),
        batch_of([store.url("/p/part-000.jsonl.gz")]),
    )
    assert_names_limit(
        err, "part-000.jsonl.gz", "max_decompressed_bytes", "CRUST_DOWNLOAD_MAX_DECOMPRESSED_BYTES"
    )


def test_a_gzip_of_empty_members_is_stopped_by_the_deadline(store: HostileStore) -> None:
    bomb = gzip.compress(b"", mtime=0) * 2_000_000  # 40 MB, no output at all: no size cap fires
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=bomb))
    started = time.monotonic()
    err = download_error(
        client_for(store.base_url, deadline_seconds=2.0),
        batch_of([store.url("/p/part-000.jsonl.gz")]),
    )
    assert time.monotonic() - started < 4.0
    assert_names_limit(
        err, "part-000.jsonl.gz", "deadline_seconds", "CRUST_DOWNLOAD_DEADLINE_SECONDS"
    )


def test_nested_gzip_layers_are_refused(store: HostileStore) -> None:
    bomb = gz(gz(gz(b"\n" * (64 * MIB))))  # the attack's 1.8 KB file of nested layers
    assert len(bomb) < 4096
    store.route("/p/a.jsonl.gz", lambda n: Reply(body=bomb))
    store.route("/p/b.jsonl.gz", lambda n: Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    err = download_error(client_for(store.base_url), batch_of([store.url("/p/a.jsonl.gz")]))
    assert "more than 1 gzip layer(s)" in str(err) and err.part == "a.jsonl.gz"
    assert err.limit == "gzip_layers" and "limit gzip_layers=1 " in str(err)
    err = download_error(client_for(store.base_url), batch_of([store.url("/p/b.jsonl.gz")]))
    assert "more than 2 gzip layer(s)" in str(err)
    assert err.limit == "gzip_layers" and "limit gzip_layers=2 " in str(err)
    assert store.hits["/p/a.jsonl.gz"] == 1 and store.hits["/p/b.jsonl.gz"] == 1


def test_two_layers_are_unwrapped_when_the_store_says_content_encoding_gzip(
    store: HostileStore,
) -> None:
    body = gz(gz(record_line("https://www.linkedin.com/in/two-layers")))
    store.route(
        "/p/part-000.jsonl.gz", lambda n: Reply(body=body, headers={"Content-Encoding": "gzip"})
    )
    with client_for(store.base_url) as client:
        records = list(client.iter_results(batch_of([store.url("/p/part-000.jsonl.gz")])))
    assert [r.profile_url for r in records] == ["https://www.linkedin.com/in/two-layers"]


def test_an_endless_body_stops_at_the_byte_cap(store: HostileStore) -> None:
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=endless()))
    started = time.monotonic()
    err = download_error(
        client_for(store.base_url, max_bytes=2 * MIB), batch_of([store.url("/p/part-000.jsonl.gz")])
    )
    assert time.monotonic() - started < 5.0
    assert_names_limit(err, "part-000.jsonl.gz", "max_bytes", "CRUST_DOWNLOAD_MAX_BYTES")
    # The client stopped reading at the cap (the rest sat in socket buffers, never spooled).
    time.sleep(0.2)
    assert store.sent["/p/part-000.jsonl.gz"] < 2 * MIB + 16 * MIB


def test_a_declared_length_over_the_cap_is_refused_unread(store: HostileStore) -> None:
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=endless(), length=10 * 1024**3))
    err = download_error(
        client_for(store.base_url, max_bytes=MIB), batch_of([store.url("/p/part-000.jsonl.gz")])
    )
    assert_names_limit(err, "part-000.jsonl.gz", "max_bytes", "CRUST_DOWNLOAD_MAX_BYTES")
    assert "10737418240 bytes long" in str(err)


def test_a_body_trickling_one_byte_at_a_time_fails_by_the_deadline(store: HostileStore) -> None:
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=trickle(every=1.0), length=10_000))
    started = time.monotonic()
    err = download_error(
        client_for(store.base_url, deadline_seconds=2.5),
        batch_of([store.url("/p/part-000.jsonl.gz")]),
    )
    elapsed = time.monotonic() - started
    assert 2.0 < elapsed < 4.5  # each byte came well inside the 5 s read timeout
    assert_names_limit(
        err, "part-000.jsonl.gz", "deadline_seconds", "CRUST_DOWNLOAD_DEADLINE_SECONDS"
    )


@pytest.mark.parametrize("status", [403, 503])
def test_an_error_body_trickling_one_byte_at_a_time_fails_by_the_deadline(
    store: HostileStore, status: int
) -> None:
    # 9 bytes at one a second: unbounded, the error body alone would take 9 s (4 KiB: hours).
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(status, trickle(every=1.0, total=9)))
    started = time.monotonic()
    err = download_error(
        client_for(store.base_url, deadline_seconds=3.0),
        batch_of([store.url("/p/part-000.jsonl.gz")]),
    )
    assert 2.5 < time.monotonic() - started < 5.0
    assert_names_limit(
        err, "part-000.jsonl.gz", "deadline_seconds", "CRUST_DOWNLOAD_DEADLINE_SECONDS"
    )
    assert f"HTTP {status} error body took too long" in str(err)
    assert store.hits["/p/part-000.jsonl.gz"] == 1


# ---- URL safety -------------------------------------------------------------------------------
REAL_API = "https://api.crustdata.invalid"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:{port}/p/part-000.jsonl.gz?X-Amz-Signature=s", "must be https"),
        ("https://127.0.0.1:{port}/p/part-000.jsonl.gz?X-Amz-Signature=s", "loopback address"),
        ("https://localhost:{port}/p/part-000.jsonl.gz?X-Amz-Signature=s", "loopback address"),
        ("https://10.1.2.3/p/part-000.jsonl.gz?X-Amz-Signature=s", "private address"),
        ("https://169.254.169.254/latest/part-000.jsonl.gz?X-Amz-Signature=s", "address"),
        ("https://[::ffff:127.0.0.1]/p/part-000.jsonl.gz?X-Amz-Signature=s", "loopback address"),
        ("ftp://store.example/p/part-000.jsonl.gz?X-Amz-Signature=s", "scheme 'ftp'"),
        # No address to check: refused, not fetched on the chance that it is public.
        ("https://store.invalid/p/part-000.jsonl.gz?X-Amz-Signature=s", "cannot resolve host"),
    ],
)
def test_the_real_api_may_not_send_us_to_internal_addresses(
    store: HostileStore, url: str, why: str
) -> None:
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=gz(record_line("u"))))
    target = url.format(port=store.server.server_address[1])
    err = download_error(client_for(REAL_API), batch_of([target]))
    assert "download URL refused" in str(err) and why in str(err) and err.batch_id == BATCH_ID
    assert "X-Amz-Signature=s" not in str(err)
    assert store.hits["/p/part-000.jsonl.gz"] == 0  # nothing was requested


def test_every_redirect_hop_is_checked(store: HostileStore) -> None:
    store.route(
        "/p/part-000.jsonl.gz",
        lambda n: Reply(302, headers={"Location": "http://internal.example:8080/admin?token=t"}),
    )
    err = download_error(client_for(store.base_url), batch_of([store.url("/p/part-000.jsonl.gz")]))
    assert "plain http to internal.example" in str(err) and "redirect 1" in str(err)
    assert "token=t" not in str(err)


def test_redirects_within_the_rules_are_followed_up_to_the_cap(store: HostileStore) -> None:
    body = gz(record_line("https://www.linkedin.com/in/redirected"))
    store.route(
        "/p/part-000.jsonl.gz",
        lambda n: Reply(307, headers={"Location": "/q/part-000.jsonl.gz?X-Amz-Signature=2"}),
    )
    store.route("/q/part-000.jsonl.gz", lambda n: Reply(body=body))
    store.route("/loop", lambda n: Reply(302, headers={"Location": "/loop"}))
    with client_for(store.base_url) as client:
        records = list(client.iter_results(batch_of([store.url("/p/part-000.jsonl.gz")])))
    assert [r.profile_url for r in records] == ["https://www.linkedin.com/in/redirected"]
    err = download_error(
        client_for(store.base_url, max_redirects=3), batch_of([store.url("/loop")])
    )
    assert err.limit == "max_redirects" and store.hits["/loop"] == 4


def test_the_host_allow_list_refuses_every_other_host(store: HostileStore) -> None:
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(body=gz(record_line("u"))))
    client = client_for(store.base_url, allowed_hosts=("*.s3.amazonaws.com",))
    err = download_error(client, batch_of([store.url("/p/part-000.jsonl.gz")]))
    assert "host 127.0.0.1 is not in CRUST_DOWNLOAD_HOSTS" in str(err)
    assert store.hits["/p/part-000.jsonl.gz"] == 0
    with client_for(store.base_url, allowed_hosts=("127.0.0.1",)) as allowed:
        assert len(list(allowed.iter_results(batch_of([store.url("/p/part-000.jsonl.gz")])))) == 1


def _every_text(err: BaseException) -> str:
    """The exception, its args, attributes and whole cause/context chain, as one text."""
    texts: list[str] = []
    seen: BaseException | None = err
    while seen is not None:
        texts += [str(seen), repr(seen), repr(seen.args), repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


def test_an_internal_services_error_body_is_never_echoed(store: HostileStore) -> None:
    leak = f'{{"error": "db down", "aws_access_key_id": "{AKIA}", "secret": "hunter2"}}'.encode()
    store.route("/internal", lambda n: Reply(500, leak))
    xml = f"<Error><Code>AccessDenied</Code><Message>key {AKIA} hunter2</Message></Error>".encode()
    store.route("/admin", lambda n: Reply(403, xml))
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(302, headers={"Location": "/admin"}))
    store.route(
        f"/batch/{BATCH_ID}",
        lambda n: Reply(body=status_doc([store.url("/p/part-000.jsonl.gz")], 1)),
    )
    for path, status in (
        ("/internal", "HTTP 500"),
        ("/p/part-000.jsonl.gz", "HTTP 403 AccessDenied"),
    ):
        err = download_error(client_for(store.base_url), batch_of([store.url(path)]))
        text = _every_text(err)
        assert (
            status in str(err)
            and AKIA not in text
            and "hunter2" not in text
            and "db down" not in text
        )


def test_the_stores_own_message_is_kept_with_key_ids_masked(store: HostileStore) -> None:
    xml = f"<Error><Code>NoSuchKey</Code><Message>no key for {AKIA}</Message></Error>".encode()
    store.route("/p/part-000.jsonl.gz", lambda n: Reply(404, xml))
    err = download_error(client_for(store.base_url), batch_of([store.url("/p/part-000.jsonl.gz")]))
    assert "HTTP 404 NoSuchKey: no key for <redacted>" in str(err) and AKIA not in _every_text(err)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/p/part-000.jsonl.gz\x00?X-Amz-Signature=s",
        "http://[::1/p/part-000.jsonl.gz?X-Amz-Signature=s",
        "http://[zz::1]/p/part-000.jsonl.gz?X-Amz-Signature=s",
        "http://127.0.0.1:9/" + "a" * 70_000 + "?X-Amz-Signature=s",
    ],
    ids=["nul-byte", "bad-ipv6", "bad-ipv6-literal", "over-long"],
)
def test_an_invalid_url_from_the_api_is_a_download_error(url: str) -> None:
    with CrustdataClient("k", "http://127.0.0.1:9") as client, pytest.raises(DownloadError) as info:
        list(client.iter_results(batch_of([url])))
    err = info.value
    assert "invalid download URL" in str(err) and err.batch_id == BATCH_ID and err.part
    assert not isinstance(err.__cause__ or err.__context__, httpx.InvalidURL)
    assert "X-Amz-Signature=s" not in str(err) and "\x00" not in str(err) and len(str(err)) < 600


# ---- the local ingest (files given by hand) ---------------------------------------------------
@pytest.mark.parametrize("force_python", [False, True], ids=["arrow", "python"])
def test_ingest_refuses_a_line_over_the_cap(tmp_path: Path, force_python: bool) -> None:
    path = tmp_path / "results.jsonl.gz"
    path.write_bytes(members(b"a" * MIB, 24))  # one 24 MiB line
    with pytest.raises(
        ResultFileError, match=r"longer than 2097152 bytes.*CRUST_RESULT_MAX_LINE_BYTES"
    ):
        ingest_files(
            [path], tmp_path / "out.parquet", max_line_bytes=2 * MIB, force_python=force_python
        )
    assert not (tmp_path / "out.parquet").exists()


def test_ingest_reads_lines_up_to_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(b"".join(record_line(u) for u in lines("ingest", 3)))
    longest = max(len(line) for line in path.read_bytes().splitlines())
    report = ingest_files([path], tmp_path / "out.parquet", max_line_bytes=longest)
    assert report.rows == 3
    with pytest.raises(ResultFileError):
        ingest_files([path], tmp_path / "out2.parquet", max_line_bytes=longest - 1)


def test_ingest_command_takes_the_line_cap_from_its_flag_or_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "results.jsonl"
    path.write_bytes(b"".join(record_line(u) for u in lines("cli", 2)))
    out = tmp_path / "out.parquet"
    assert cli_main(["ingest", str(path), "--out", str(out), "--max-line-bytes", "50"]) == 1
    assert "longer than 50 bytes" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("CRUST_RESULT_MAX_LINE_BYTES", "60")
    assert cli_main(["ingest", str(path), "--out", str(out)]) == 1
    assert "longer than 60 bytes" in capsys.readouterr().err
    monkeypatch.delenv("CRUST_RESULT_MAX_LINE_BYTES")
    assert cli_main(["ingest", str(path), "--out", str(out)]) == 0 and out.exists()


def _crust_assets(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "crust_assets.cli", *args]
    return subprocess.run(
        command, env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


def test_a_bad_limit_in_the_environment_fails_only_the_command_that_reads_it(
    tmp_path: Path,
) -> None:
    bad = {
        "CRUST_RESULT_MAX_LINE_BYTES": "16MiB",
        "CRUST_WEBHOOK_MAX_HINTS": "lots",
        "CRUST_ERASURE_VERIFY_ROUNDS": "five",
    }
    for command in ([], ["ingest"], ["webhook"], ["forget"], ["export"], ["emulator"]):
        shown = _crust_assets([*command, "--help"], bad)
        assert shown.returncode == 0 and "usage: crust-assets" in shown.stdout, shown.stderr
    path = tmp_path / "results.jsonl"
    path.write_bytes(record_line("https://www.linkedin.com/in/env"))
    out = tmp_path / "out.parquet"
    ingest = _crust_assets(["ingest", str(path), "--out", str(out)], bad)
    assert ingest.returncode == 2 and "Traceback" not in ingest.stderr
    assert "CRUST_RESULT_MAX_LINE_BYTES must be a whole number >= 1, got '16MiB'" in ingest.stderr
    assert not out.exists()
    # The flag wins over the bad env value.
    flagged = _crust_assets(
        ["ingest", str(path), "--out", str(out), "--max-line-bytes", "999"], bad
    )
    assert flagged.returncode == 0 and out.exists(), flagged.stderr
    webhook = _crust_assets(["webhook"], {**bad, "CRUST_WEBHOOK_TOKEN": "t" * 32})
    assert webhook.returncode == 2 and "CRUST_WEBHOOK_MAX_HINTS" in webhook.stderr
    data = str(tmp_path / "data")
    forget = _crust_assets(["forget", "https://www.linkedin.com/in/x", "--data-dir", data], bad)
    assert forget.returncode == 2 and "CRUST_ERASURE_VERIFY_ROUNDS" in forget.stderr
    assert "Traceback" not in webhook.stderr + forget.stderr


def test_each_limits_env_var_reaches_the_clients_of_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = {name: 7 + i for i, name in enumerate(LIMIT_SETTINGS)}
    for name, value in wanted.items():
        monkeypatch.setenv(LIMIT_SETTINGS[name][0], str(value))
    monkeypatch.setenv("CRUST_DOWNLOAD_HOSTS", "*.Store.example")
    seen: list[DownloadLimits] = []

    @dg.asset
    def probe(crustdata: CrustdataResource) -> None:
        with crustdata.client() as client:
            seen.append(client.download_limits)

    resource = build_resources()["crustdata"]
    assert dg.materialize([probe], resources={"crustdata": resource}).success
    assert {name: getattr(seen[0], name) for name in wanted} == wanted
    assert seen[0].allowed_hosts == ("*.store.example",)
    described = {f.description or "" for f in CrustdataResource.model_fields.values()}
    for env, _ in LIMIT_SETTINGS.values():  # the UI's resource page names each variable
        assert any(d.startswith(f"env {env}: ") for d in described), env


# ---- pure decisions ---------------------------------------------------------------------------
def _err(retryable: bool) -> DownloadError:
    return DownloadError("x", batch_id="b", part="p", retryable=retryable)


def test_part_retry_delay_decisions() -> None:
    limits = DownloadLimits(part_attempts=3)
    policy = RetryPolicy(backoff_base=1.0, backoff_max=8.0)
    rng = random.Random(1)
    assert part_retry_delay(_err(False), 1, limits, 100.0, policy, rng) is None  # a cap, a 404
    assert part_retry_delay(_err(True), 3, limits, 100.0, policy, rng) is None  # attempts used
    delays = [part_retry_delay(_err(True), n, limits, 100.0, policy, rng) for n in (1, 2)]
    assert delays[0] is not None and 0 <= delays[0] <= 1.0
    assert delays[1] is not None and 0 <= delays[1] <= 2.0  # exponential ceiling, full jitter
    assert part_retry_delay(_err(True), 1, limits, 0.0, policy, rng) is None  # deadline


def _verify(body: bytes, **limits: object) -> DownloadError | None:
    try:
        verify_part(
            io.BytesIO(body),
            batch_id=BATCH_ID,
            part="part-000.jsonl.gz",
            url="u",
            limits=DownloadLimits(**limits),  # type: ignore[arg-type]
        )
    except DownloadError as err:
        return err
    return None


def test_line_cap_is_exact_and_spans_read_blocks() -> None:
    assert _verify(b"a" * 100 + b"\n", max_line_bytes=100) is None
    assert _verify(gz(b"a" * 100), max_line_bytes=100) is None  # no final line break
    err = _verify(b"ok\n" + b"a" * 101 + b"\n", max_line_bytes=100)
    assert err is not None and err.limit == "max_line_bytes" and "line 2 is too long" in str(err)
    # A line split across two 64 KiB reads, each piece under the cap, is still measured whole.
    body = b"x\n" * 32_000 + b"b" * 70_000 + b"\n"
    err = _verify(gz(body), max_line_bytes=69_999)
    assert err is not None and "line 32001 is too long" in str(err)
    assert _verify(gz(body), max_line_bytes=70_000) is None
    assert _verify(gz(body), max_lines=32_000) is not None  # 32,001 line breaks
    assert _verify(gz(body), max_lines=32_001) is None


def test_address_and_host_rules() -> None:
    assert address_refusal("8.8.8.8") is None
    assert address_refusal("2606:4700:4700::1111") is None
    for address, why in [
        ("127.0.0.1", "loopback"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("100.64.0.1", "non-global"),
    ]:
        assert (address_refusal(address) or "").startswith(why.split("-")[0]), address
    assert host_allowed("bucket.s3.amazonaws.com", ("*.amazonaws.com",))
    assert not host_allowed("amazonaws.com", ("*.amazonaws.com",))
    assert not host_allowed("evilamazonaws.com", ("*.amazonaws.com",))
    assert host_patterns(" A.com, *.B.com ,") == ("a.com", "*.b.com")
    with pytest.raises(ValueError, match="leading"):
        host_patterns("a.*.com")


def test_url_guard_checks_every_resolved_address() -> None:
    answers = {"store.example": ["52.1.2.3"], "mixed.example": ["52.1.2.3", "10.0.0.5"]}
    guard = UrlGuard(loopback_api=False, resolve=lambda host, port: answers.get(host, []))
    assert guard.refusal(httpx.URL("https://store.example/p?sig=1")) is None
    assert "private address (10.0.0.5)" in (
        guard.refusal(httpx.URL("https://mixed.example/p")) or ""
    )
    assert "https" in (guard.refusal(httpx.URL("http://store.example/p")) or "")
    assert "cannot resolve host gone.example" in (
        guard.refusal(httpx.URL("https://gone.example/p")) or ""
    )
    emulator = UrlGuard.for_base_url("http://localhost:8711")
    assert (
        emulator.loopback_api
        and emulator.refusal(httpx.URL("http://127.0.0.1:8711/_files/x")) is None
    )
    assert "plain http" in (emulator.refusal(httpx.URL("http://10.0.0.1/x")) or "")
    assert not UrlGuard.for_base_url("https://api.crustdata.com").loopback_api


def test_limits_are_validated() -> None:
    for bad in (
        {"max_bytes": 0},
        {"deadline_seconds": 0},
        {"part_attempts": 0},
        {"max_redirects": -1},
    ):
        with pytest.raises(ValueError):
            DownloadLimits(**bad)  # type: ignore[arg-type]
    assert gzip.decompress(gz(b"ok")) == b"ok"  # the helpers build valid gzip
