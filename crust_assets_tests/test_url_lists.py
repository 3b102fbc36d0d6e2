"""Reading input lists from real files, and preparing them (normalise, dedupe, rejects)."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crust_assets.profile_urls import normalize_profile_url
from crust_assets.url_lists import (
    PreparedUrlList,
    UrlList,
    UrlListError,
    prepare_url_list,
    read_url_list,
)

JD = "https://www.linkedin.com/in/john-doe"
JANE = "https://www.linkedin.com/in/jane-roe"


def write(tmp_path: Path, content: str | bytes, name: str = "2026-11-29.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def rows(url_list: UrlList) -> list[tuple[int, str]]:
    return list(
        zip(
            url_list.table.column("line_number").to_pylist(),
            url_list.table.column("raw").to_pylist(),
            strict=True,
        )
    )


def test_header_in_any_position_other_columns_ignored(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name, Profile_URL ,company\n"
        'John,https://www.linkedin.com/in/john-doe,"Acme, Inc."\n'
        "Jane,linkedin.com/in/jane-roe/,Other\n",
    )
    url_list = read_url_list(path)
    assert url_list.has_header
    assert url_list.columns == ("name", "Profile_URL", "company")
    assert url_list.profile_url_column == 1
    assert url_list.path == str(path)
    assert rows(url_list) == [(2, JD), (3, "linkedin.com/in/jane-roe/")]
    assert url_list.table.schema == pa.schema([("line_number", pa.int64()), ("raw", pa.string())])


def test_bom_and_crlf(tmp_path: Path) -> None:
    content = codecs.BOM_UTF8 + b"profile_url\r\nhttps://www.linkedin.com/in/john-doe\r\n\r\nx\r\n"
    url_list = read_url_list(write(tmp_path, content))
    assert url_list.has_header
    assert url_list.columns == ("profile_url",)
    assert rows(url_list) == [(2, JD), (3, ""), (4, "x")]


def test_quoted_fields_with_commas_and_newlines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'note,profile_url\n"a, b",https://www.linkedin.com/in/john-doe\n'
        '"two\nlines","https://www.linkedin.com/in/jane-roe?a=1,2"\n'
        "short\n",
    )
    url_list = read_url_list(path)
    # The record starting on line 3 spans lines 3-4; a short row has no value.
    assert rows(url_list) == [(2, JD), (3, JANE + "?a=1,2"), (5, "")]


def test_header_only_is_a_valid_empty_list(tmp_path: Path) -> None:
    url_list = read_url_list(write(tmp_path, "profile_url\n"))
    assert url_list.has_header and url_list.num_rows == 0
    prepared = prepare_url_list(url_list)
    assert prepared.counts == {
        "rows_read": 0,
        "valid": 0,
        "duplicates": 0,
        "rejected": 0,
        "rejected_by_reason": {},
    }


@pytest.mark.parametrize("content", [b"", codecs.BOM_UTF8])
def test_empty_file_is_a_valid_empty_list(tmp_path: Path, content: bytes) -> None:
    url_list = read_url_list(write(tmp_path, content))
    assert not url_list.has_header and url_list.num_rows == 0
    assert url_list.columns == ()


@pytest.mark.parametrize("bom", [b"", codecs.BOM_UTF8])
def test_invalid_utf8_names_file_offset_and_line(tmp_path: Path, bom: bytes) -> None:
    good = bom + b"profile_url\r\nhttps://www.linkedin.com/in/jos"
    path = write(tmp_path, good + b"\xe9\r\n")
    with pytest.raises(UrlListError) as info:
        read_url_list(path)
    message = str(info.value)
    assert str(path) in message
    assert f"byte offset {len(good)} " in message
    assert "(line 2)" in message and "0xE9" in message
    assert isinstance(info.value, ValueError)


def test_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, "profile_url\n".encode("utf-16"))
    with pytest.raises(UrlListError, match="UTF-16"):
        read_url_list(path)


def test_missing_profile_url_column_names_file_and_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "name,link\nJohn,https://www.linkedin.com/in/john-doe\n")
    with pytest.raises(UrlListError) as info:
        read_url_list(path)
    message = str(info.value)
    assert str(path) in message
    assert "no profile_url column" in message
    assert "'name'" in message and "'link'" in message


def test_duplicate_profile_url_columns_are_an_error(tmp_path: Path) -> None:
    with pytest.raises(UrlListError, match="several profile_url columns"):
        read_url_list(write(tmp_path, "profile_url,PROFILE_URL\na,b\n"))


def test_missing_file_is_a_url_list_error(tmp_path: Path) -> None:
    with pytest.raises(UrlListError, match="cannot read"):
        read_url_list(tmp_path / "nope.csv")


def test_no_header_one_url_per_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "https://www.linkedin.com/in/john-doe\n"
        "\n"
        "https://www.linkedin.com/in/jane-roe?x=1,2\n"
        '"linkedin.com/in/john-doe/"\n',
    )
    url_list = read_url_list(path)
    assert not url_list.has_header
    assert url_list.profile_url_column is None
    # Whole lines: commas stay in the value, quotes are left to the normaliser.
    assert rows(url_list) == [
        (1, JD),
        (2, ""),
        (3, JANE + "?x=1,2"),
        (4, '"linkedin.com/in/john-doe/"'),
    ]


def test_no_header_first_line_url_with_other_cells_is_data(tmp_path: Path) -> None:
    url_list = read_url_list(write(tmp_path, "https://www.linkedin.com/in/john-doe,John\n"))
    assert not url_list.has_header
    assert rows(url_list) == [(1, "https://www.linkedin.com/in/john-doe,John")]


def test_single_unknown_first_cell_is_data_not_header(tmp_path: Path) -> None:
    url_list = read_url_list(write(tmp_path, "url\nlinkedin.com/in/john-doe\n"))
    assert not url_list.has_header
    prepared = prepare_url_list(url_list)
    assert prepared.rejects.to_pylist()[0]["line_number"] == 1


def test_blank_lines_before_header_are_not_rows(tmp_path: Path) -> None:
    url_list = read_url_list(write(tmp_path, "\n\nprofile_url\nlinkedin.com/in/john-doe"))
    assert url_list.has_header
    assert rows(url_list) == [(4, "linkedin.com/in/john-doe")]  # no final newline: still a row


def test_trailing_newline_is_not_a_row_but_blank_lines_are(tmp_path: Path) -> None:
    url_list = read_url_list(write(tmp_path, "profile_url\nlinkedin.com/in/john-doe\n\n   \n"))
    assert rows(url_list) == [(2, "linkedin.com/in/john-doe"), (3, ""), (4, "   ")]
    prepared = prepare_url_list(url_list)
    assert prepared.rejected_by_reason == {"empty": 2}


@pytest.mark.parametrize("content", ["\n", "\n\n", "\r\n  \r\n"])
def test_blank_lines_only_is_an_empty_list(tmp_path: Path, content: str) -> None:
    url_list = read_url_list(write(tmp_path, content))
    assert not url_list.has_header
    assert url_list.num_rows == 0


def test_blank_lines_between_urls_are_rows_without_header(tmp_path: Path) -> None:
    url_list = read_url_list(write(tmp_path, "\nlinkedin.com/in/john-doe\n\n"))
    assert rows(url_list) == [(1, ""), (2, "linkedin.com/in/john-doe"), (3, "")]


def test_prepare_dedupes_keeps_first_and_reports_rejects(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "profile_url,name\n"
        "https://www.linkedin.com/in/John-Doe/,a\n"  # 2: valid
        "https://www.linkedin.com/company/acme,b\n"  # 3: not a profile
        "linkedin.com/in/john-doe?utm_source=x,c\n"  # 4: duplicate of 2
        ",d\n"  # 5: empty
        "https://uk.linkedin.com/in/jane-roe,e\n"  # 6: valid
        '"=HYPERLINK(""x"")",f\n'  # 7: formula
        "https://www.example.com/in/x,g\n"  # 8: other site
        "www.linkedin.com/in/JANE-ROE,h\n",  # 9: duplicate of 6
    )
    prepared = prepare_url_list(read_url_list(path))
    assert isinstance(prepared, PreparedUrlList)
    assert prepared.valid.to_pylist() == [
        {"profile_url": JD, "line_number": 2},
        {"profile_url": JANE, "line_number": 6},
    ]
    assert prepared.rejects.column_names == ["line_number", "raw_value", "reason", "message"]
    rejects = prepared.rejects.to_pylist()
    assert [(r["line_number"], r["raw_value"], r["reason"]) for r in rejects] == [
        (3, "https://www.linkedin.com/company/acme", "not_a_profile"),
        (5, "", "empty"),
        (7, '=HYPERLINK("x")', "spreadsheet_formula"),
        (8, "https://www.example.com/in/x", "other_site"),
    ]
    for r in rejects:
        assert r["message"] == normalize_profile_url(r["raw_value"]).message
    assert prepared.counts == {
        "rows_read": 8,
        "valid": 2,
        "duplicates": 2,
        "rejected": 4,
        "rejected_by_reason": {
            "empty": 1,
            "spreadsheet_formula": 1,
            "other_site": 1,
            "not_a_profile": 1,
        },
    }


def test_prepare_accepts_a_bare_table_without_line_numbers() -> None:
    table = pa.table({"raw": ["linkedin.com/in/john-doe", "nope", "linkedin.com/in/john-doe"]})
    prepared = prepare_url_list(table)
    assert prepared.valid.to_pylist() == [{"profile_url": JD, "line_number": 1}]
    assert prepared.rejects.column("line_number").to_pylist() == [2]
    assert prepared.duplicates == 1


def test_hundred_thousand_lines(tmp_path: Path) -> None:
    n = 100_000
    lines = ["name,profile_url"]
    for i in range(n):
        if i % 1000 == 0:
            lines.append(f"n{i},")  # blank value
        elif i % 10 == 0:
            lines.append(f"n{i},https://www.linkedin.com/in/person-{i - 1:06d}/")  # duplicate
        else:
            lines.append(f"n{i},https://www.linkedin.com/in/person-{i:06d}")
    path = write(tmp_path, "\r\n".join(lines) + "\r\n")
    url_list = read_url_list(path)
    assert url_list.num_rows == n
    assert url_list.table.column("line_number")[-1].as_py() == n + 1
    prepared = prepare_url_list(url_list)
    blanks = n // 1000
    duplicates = n // 10 - blanks
    assert prepared.counts == {
        "rows_read": n,
        "valid": n - blanks - duplicates,
        "duplicates": duplicates,
        "rejected": blanks,
        "rejected_by_reason": {"empty": blanks},
    }
    assert prepared.valid.column("line_number")[:2].to_pylist() == [3, 4]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_unquoted_shortcut_reads_like_the_csv_module(tmp_path: Path, newline: str) -> None:
    """Files without quotes skip the csv module; the result must be the same."""
    data_lines = ["a,https://x/in/a1,z", "", "b", "c,,", " ,  d  ,e,f", "g,h", "   "]
    text = newline.join(["name,profile_url,company", *data_lines]) + newline
    unquoted = read_url_list(write(tmp_path, text, "plain.csv"))
    # One harmless quoted cell forces the csv-module path for the same rows.
    quoted = read_url_list(write(tmp_path, text.replace("name", '"name"', 1), "quoted.csv"))
    assert rows(unquoted) == rows(quoted)
    assert rows(unquoted) == [
        (2, "https://x/in/a1"),
        (3, ""),
        (4, ""),
        (5, ""),
        (6, "  d  "),
        (7, "h"),
        (8, ""),
    ]


# ---- quotes: an unclosed one is an error; every well-formed record is a row --------------------
def csv_module_records(path: Path) -> list[tuple[int, list[str]]]:
    """The independent count: each record after the header, with the line it starts on."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        records, consumed = [], 0
        for row in reader:
            records.append((consumed + 1, row))
            consumed = reader.line_num
    return records[1:]


def test_stray_quote_at_line_501_of_1000_is_an_error_naming_that_line(tmp_path: Path) -> None:
    lines = [f"https://www.linkedin.com/in/person-{i:04d}" for i in range(1, 1001)]
    lines[500] = '"' + lines[500]  # line 501 of the file (no header)
    with_header = ["profile_url", *lines[1:]]  # the same quote, now on line 501 after a header
    for name, content in (("plain.csv", lines), ("header.csv", with_header)):
        path = write(tmp_path, "\n".join(content) + "\n", name)
        if name == "plain.csv":
            # No header: each line is a value and quotes are not syntax; the line is a reject.
            prepared = prepare_url_list(read_url_list(path))
            assert prepared.rows_read == 1000
            continue
        with pytest.raises(UrlListError) as info:
            read_url_list(path)
        message = str(info.value)
        assert message.startswith(f"{path}: line 501: ")
        assert "never closed" in message


@pytest.mark.parametrize("final_newline", ["", "\n", "\r\n"])
def test_stray_quote_on_the_last_line_is_an_error(tmp_path: Path, final_newline: str) -> None:
    text = f'profile_url,name\n{JD},a\n"{JANE},b{final_newline}'
    with pytest.raises(UrlListError, match=r": line 3: a quoted value opens"):
        read_url_list(write(tmp_path, text))


def test_unclosed_quote_in_the_header_line_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UrlListError, match=r": line 2: a quoted value opens"):
        read_url_list(write(tmp_path, f'\nprofile_url,"name\n{JD},a\n'))


def test_quote_inside_a_field_is_a_character_as_the_csv_module_reads_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "name,profile_url,note\n"
        f'Jo"hn,{JD},x\n'  # a quote in the middle of a field is literal
        f'"Jane ""R"" Roe",{JANE},"a ""b"""\n'  # doubled quotes inside a quoted field
        f'"abc"def,{JD}/"x,y\n'  # text after a closing quote, and a quote ending a URL
        f'n,"{JD}"trailing\n',
    )
    url_list = read_url_list(path)
    expected = [(start, row[1]) for start, row in csv_module_records(path)]
    assert rows(url_list) == expected
    assert rows(url_list) == [(2, JD), (3, JANE), (4, JD + '/"x'), (5, JD + "trailing")]


def test_quoted_newlines_are_one_record_numbered_by_their_first_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'note,profile_url\r\n"line one\r\nline two\r\n\r\nline four",' + JD + "\r\n"
        f'x,"{JANE}\nwith a newline"\r\n'
        f"y,{JD}\r\n",
    )
    url_list = read_url_list(path)
    assert rows(url_list) == [(2, JD), (6, JANE + "\nwith a newline"), (8, JD)]
    assert [start for start, _ in csv_module_records(path)] == [2, 6, 8]


def test_a_record_spanning_a_batch_boundary_keeps_later_line_numbers(tmp_path: Path) -> None:
    """Lines are read in batches of 65,536; a quoted value may start in one and end in the next."""
    lines = ["profile_url,note"] + [f"{JD}-{i},n" for i in range(70_000)]
    lines[65_535] = f'{JD}-q,"opens here\ncloses here"'  # straddles lines 65,536-65,537
    path = write(tmp_path, "\n".join(lines) + "\n")
    url_list = read_url_list(path)
    assert rows(url_list) == [(s, row[0]) for s, row in csv_module_records(path)]
    assert url_list.num_rows == 70_000
    assert url_list.table.column("line_number")[-1].as_py() == 70_002


_CELL = st.text(alphabet=st.sampled_from('ab ,"\r\n\tx/é'), max_size=12)


@settings(max_examples=120, deadline=None)
@given(
    rows_=st.lists(st.lists(_CELL, min_size=0, max_size=3), max_size=25),
    terminator=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
    column=st.integers(min_value=0, max_value=2),
)
def test_rows_read_matches_the_csv_module_on_well_formed_files(
    tmp_path_factory: pytest.TempPathFactory,
    rows_: list[list[str]],
    terminator: str,
    final_newline: bool,
    column: int,
) -> None:
    header = ["a", "b", "c"]
    header[column] = "profile_url"
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=terminator).writerows([header, *rows_])
    text = buffer.getvalue()
    if not final_newline and text.endswith(terminator):
        text = text[: -len(terminator)]
    path = write(tmp_path_factory.mktemp("prop"), text)
    url_list = read_url_list(path)
    records = csv_module_records(path)
    assert url_list.num_rows == len(records)
    assert rows(url_list) == [(s, r[column] if column < len(r) else "") for s, r in records]
    assert prepare_url_list(url_list).rows_read == len(records)


def test_invalid_utf8_after_the_first_megabyte_names_its_offset_and_line(tmp_path: Path) -> None:
    """The bad byte is found block by block; a CRLF cut by a block boundary is one line break."""
    line = "https://www.linkedin.com/in/josé-ñ\r\n".encode()
    body = b"profile_url\r\n" + line * (2 * 2**20 // len(line))
    cut = 2**20 - 1  # make a CRLF straddle the first 1 MiB boundary
    while body[cut : cut + 2] != b"\r\n":
        cut -= 1
    body = body[:cut] + b"x" * (2**20 - 1 - cut) + body[cut:]
    assert body[2**20 - 1 : 2**20 + 1] == b"\r\n"
    offset = len(body)
    path = write(tmp_path, body + b"bad\xffbyte\r\n")
    with pytest.raises(UrlListError) as info:
        read_url_list(path)
    expected_line = body.count(b"\r\n") + 1
    assert f"byte 0xFF at byte offset {offset + 3} (line {expected_line})" in str(info.value)


def test_a_directory_or_unreadable_path_is_a_url_list_error(tmp_path: Path) -> None:
    with pytest.raises(UrlListError, match="cannot read the file"):
        read_url_list(tmp_path)  # a directory: stat works, open does not
