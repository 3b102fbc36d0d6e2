"""Input lists keep every column: names, aliases, ragged rows and bad input, on real files."""

from __future__ import annotations

import codecs
from pathlib import Path

import pyarrow as pa
import pytest

from crust_assets.url_lists import (
    HEADER_KEY,
    LINES_SCHEMA,
    UrlListError,
    prepare_url_list,
    read_url_list,
)

JD = "https://www.linkedin.com/in/john-doe"


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "2026-11-29.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def lines(path: Path, **kwargs: object) -> list[dict]:
    return prepare_url_list(read_url_list(path, **kwargs)).lines.to_pylist()  # type: ignore[arg-type]


@pytest.mark.parametrize("alias", ["linkedin_url", "LinkedIn", "person_linkedin_url", "Profile"])
def test_an_alias_is_the_url_column_with_a_note(tmp_path: Path, alias: str) -> None:
    url_list = read_url_list(write(tmp_path, f"name,{alias}\nJohn,{JD}\n"))
    assert url_list.profile_url_column == 1
    assert any(alias in note and "CRUST_URL_COLUMN" in note for note in url_list.notes)
    [row] = prepare_url_list(url_list).lines.to_pylist()
    assert row["name"] == "John" and row[alias] == JD and row["profile_url"] == JD


def test_profile_url_wins_over_an_alias_and_the_setting_over_both(tmp_path: Path) -> None:
    path = write(tmp_path, f"linkedin,profile_url,crm_link\nx,{JD},{JD}/?a=1\n")
    assert read_url_list(path).profile_url_column == 1
    assert read_url_list(path, url_column="CRM_Link").profile_url_column == 2
    with pytest.raises(UrlListError, match="no 'nope' column \\(CRUST_URL_COLUMN\\)"):
        read_url_list(path, url_column="nope")


def test_every_column_is_kept_as_text_under_a_usable_name(tmp_path: Path) -> None:
    header = "crm_id, Owner ,,owner,status,profile_url,amount"
    path = write(tmp_path, f"{header}\n007,Al,,x,open,{JD},0012.50\n")
    url_list = read_url_list(path)
    names = url_list.cells.schema.names
    assert names == [
        "crm_id",
        " Owner ",
        "column_3",
        "owner_2",
        "input_status",
        "input_profile_url",
        "amount",
    ]
    written = [f.metadata[HEADER_KEY].decode() for f in url_list.cells.schema]
    assert written == header.split(",")
    assert len(url_list.notes) == 4  # blank, repeated (case-insensitive), two reserved
    [row] = lines(path)
    assert row["crm_id"] == "007" and row["amount"] == "0012.50"  # text, never re-typed
    assert row[" Owner "] == "Al" and row["column_3"] == "" and row["owner_2"] == "x"
    assert row["input_profile_url"] == JD and row["profile_url"] == JD


def test_ragged_rows_keep_every_cell(tmp_path: Path) -> None:
    content = (
        "id,profile_url,owner\n"
        f"1,{JD}\n"  # short: owner is null
        f'2,{JD}/,al,"extra, with comma",more\n'  # long: extra cells kept
        "3\n"  # short, no URL: an empty reject, as before
        "\n"  # blank line: an empty reject, as before
    )
    url_list = read_url_list(write(tmp_path, content))
    assert (url_list.short_rows, url_list.long_rows) == (2, 1)
    assert any("extra_cells" in note for note in url_list.notes)
    rows = prepare_url_list(url_list).lines.to_pylist()
    assert [r["line_number"] for r in rows] == [2, 3, 4, 5]
    assert rows[0]["owner"] is None and rows[0]["extra_cells"] is None
    assert rows[1]["extra_cells"] == '"extra, with comma",more'
    assert rows[1]["duplicate_of_line"] == 2
    assert [r["reason"] for r in rows[2:]] == ["empty", "empty"]
    assert rows[3]["id"] is None


def test_quoted_newlines_bom_and_crlf_keep_the_cells(tmp_path: Path) -> None:
    content = (
        codecs.BOM_UTF8
        + (f'note,profile_url,owner\r\n"two\r\nlines",{JD},al\r\n"a ""quote""",x,bo\r\n').encode()
    )
    rows = lines(write(tmp_path, content))
    assert [r["line_number"] for r in rows] == [2, 4]
    assert rows[0]["note"] == "two\r\nlines" and rows[0]["owner"] == "al"
    assert rows[1]["note"] == 'a "quote"' and rows[1]["reason"] is not None


def test_header_only_gives_an_empty_table_with_the_columns(tmp_path: Path) -> None:
    table = prepare_url_list(read_url_list(write(tmp_path, "crm_id,profile_url\n"))).lines
    assert table.num_rows == 0
    assert table.schema.names == ["crm_id", "input_profile_url", *LINES_SCHEMA.names]


def test_header_less_list_has_the_line_columns_only(tmp_path: Path) -> None:
    table = prepare_url_list(read_url_list(write(tmp_path, f"{JD}\nnot a url\n"))).lines
    assert table.schema == LINES_SCHEMA
    assert table.column("raw_value").to_pylist() == [JD, "not a url"]


def test_bad_input_errors_are_unchanged(tmp_path: Path) -> None:
    with pytest.raises(UrlListError, match="line 3: a quoted value opens"):
        read_url_list(write(tmp_path, f'id,profile_url\n1,{JD}\n"2,{JD}\n3,x\n'))
    with pytest.raises(UrlListError, match="UTF-16"):
        read_url_list(write(tmp_path, "id,profile_url\n".encode("utf-16-le")))
    with pytest.raises(UrlListError, match="not valid UTF-8"):
        read_url_list(write(tmp_path, b"id,profile_url\n\xe9," + JD.encode() + b"\n"))


def test_quoted_and_unquoted_batches_read_the_same_cells(tmp_path: Path) -> None:
    """Lines without a quote take a fast path; the csv module reads the others."""
    header = "profile_url," + ",".join(f"c{i}" for i in range(20))
    plain = [f"{JD}-{n:05d}," + ",".join(f"v{n}-{i}" for i in range(20)) for n in range(300)]
    quoted = [line.replace(f"v{n}-0,", f'"v{n}-0",', 1) for n, line in enumerate(plain)]
    fast = lines(write(tmp_path, "\n".join([header, *plain]) + "\n"))
    slow = lines(write(tmp_path, "\n".join([header, *quoted]) + "\n"))
    assert fast == slow and len(fast) == 300
    assert fast[7]["c19"] == "v7-19"


def test_the_urls_to_plan_are_unchanged_by_extra_columns(tmp_path: Path) -> None:
    urls = [f"{JD}-{i}" for i in range(50)] * 2 + ["https://www.linkedin.com/company/x"]
    bare = prepare_url_list(read_url_list(write(tmp_path, "profile_url\n" + "\n".join(urls))))
    wide = "profile_url,crm_id,owner\n" + "\n".join(f"{u},{i},o" for i, u in enumerate(urls))
    rich = prepare_url_list(read_url_list(write(tmp_path, wide)))
    assert rich.valid.equals(bare.valid)
    assert (
        rich.counts
        == bare.counts
        == {
            "rows_read": 101,
            "valid": 50,
            "duplicates": 50,
            "rejected": 1,
            "rejected_by_reason": {"not_a_profile": 1},
        }
    )
    assert rich.rejects.equals(bare.rejects)
    assert pa.compute.sum(pa.compute.is_valid(rich.lines.column("duplicate_of_line"))).as_py() == 50
