"""The profile-URL normaliser: a corpus of real-world inputs, and properties.

The corpus pins every decision (what is accepted, its canonical form, or the
reason for rejecting it). The property tests hold the invariants that make the
normaliser safe to put in front of a paid API: it never raises, its output is
canonical (matches the pattern, normalises to itself), and the vectorised
function gives exactly the scalar function's answer on every row.
"""

from __future__ import annotations

import math
import re
from urllib.parse import quote, unquote_to_bytes

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crust_assets import profile_urls
from crust_assets.profile_urls import (
    CANONICAL_PREFIX,
    NormalizedUrl,
    RejectReason,
    normalize_profile_url,
    normalize_profile_urls,
)

R = RejectReason
JD = "https://www.linkedin.com/in/john-doe"
MEMBER = "ACoAAAbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
JOSE = "https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa"
ZHANG = "https://www.linkedin.com/in/%E5%BC%A0%E4%BC%9F-8a1b2c"
MULLER = "https://www.linkedin.com/in/m%C3%BCller-hans"

# (raw value, expected canonical URL or RejectReason)
CORPUS: list[tuple[str | None, str | RejectReason]] = [
    # --- scheme and host spellings
    ("https://www.linkedin.com/in/john-doe", JD),
    ("http://www.linkedin.com/in/john-doe", JD),
    ("https://linkedin.com/in/john-doe", JD),
    ("linkedin.com/in/john-doe", JD),
    ("www.linkedin.com/in/john-doe", JD),
    ("//www.linkedin.com/in/john-doe", JD),
    ("https://uk.linkedin.com/in/john-doe", JD),
    ("https://de.linkedin.com/in/john-doe/", JD),
    ("fr.linkedin.com/in/john-doe", JD),
    ("https://m.linkedin.com/in/john-doe", JD),
    ("https://www.linkedin.com/mwlite/in/john-doe", JD),
    ("https://www.linkedin.com./in/john-doe", JD),
    ("HTTPS://WWW.LINKEDIN.COM/IN/JOHN-DOE", JD),
    ("hTTp://Www.LinkedIn.Com/In/John-Doe", JD),
    # --- trailing slashes, query strings, fragments, sub-pages
    ("https://www.linkedin.com/in/john-doe/", JD),
    ("https://www.linkedin.com/in/john-doe///", JD),
    (
        "https://www.linkedin.com/in/john-doe?utm_source=share&utm_campaign=share_via"
        "&utm_content=profile&utm_medium=ios_app",
        JD,
    ),
    ("https://www.linkedin.com/in/john-doe/?originalSubdomain=uk", JD),
    ("https://www.linkedin.com/in/john-doe#experience", JD),
    ("https://www.linkedin.com/in/john-doe/?trk=public_profile_browsemap#about", JD),
    ("https://www.linkedin.com/in/john-doe/details/experience/", JD),
    ("https://www.linkedin.com/in/john-doe/recent-activity/all/", JD),
    ("https://www.linkedin.com/in/john-doe/overlay/contact-info/", JD),
    ("https://www.linkedin.com/in/john-doe/fr", JD),
    ("https://www.linkedin.com/in/john-doe?q=%E2%9C%93&x=%ZZ", JD),  # query not decoded
    # --- case
    (
        "https://www.linkedin.com/in/John-Doe-1a2B3c4D",
        "https://www.linkedin.com/in/john-doe-1a2b3c4d",
    ),
    (f"https://www.linkedin.com/in/{MEMBER}", f"https://www.linkedin.com/in/{MEMBER}"),
    (f"uk.linkedin.com/in/{MEMBER}/?trk=x", f"https://www.linkedin.com/in/{MEMBER}"),
    ("linkedin.com/in/ACwAAAbCdEf_gh-Ij", "https://www.linkedin.com/in/ACwAAAbCdEf_gh-Ij"),
    ("https://www.linkedin.com/in/acoaaabcdef", "https://www.linkedin.com/in/acoaaabcdef"),
    ("https://www.linkedin.com/in/ACoAA", "https://www.linkedin.com/in/acoaa"),  # no id after
    ("https://www.linkedin.com/in/john_doe", "https://www.linkedin.com/in/john_doe"),
    # --- percent-encoding and Unicode slugs
    ("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa", JOSE),
    ("https://www.linkedin.com/in/jos%c3%a9-garc%c3%ada", JOSE),
    ("https://www.linkedin.com/in/josé-garcía", JOSE),
    ("https://www.linkedin.com/in/JOSÉ-GARCÍA/", JOSE),
    ("https://www.linkedin.com/in/jose\u0301-garci\u0301a", JOSE),  # NFD
    ("https://www.linkedin.com/in/jos%C3%A9-garc%C3%ADa?originalSubdomain=es", JOSE),
    ("https://www.linkedin.com/in/%E5%BC%A0%E4%BC%9F-8a1b2c", ZHANG),
    ("https://www.linkedin.com/in/张伟-8a1b2c", ZHANG),
    ("cn.linkedin.com/in/张伟-8A1B2C/", ZHANG),
    ("https://www.linkedin.com/in/m%C3%BCller-hans", MULLER),
    ("https://www.linkedin.com/in/müller-hans", MULLER),
    ("https://www.linkedin.com/in/😀-smile", "https://www.linkedin.com/in/%F0%9F%98%80-smile"),
    ("https://www.linkedin.com/in/%41bc-def", "https://www.linkedin.com/in/abc-def"),
    ("https://www.linkedin.com/in/" + "a" * 100, "https://www.linkedin.com/in/" + "a" * 100),
    # --- pasted with decoration
    ('"https://www.linkedin.com/in/john-doe"', JD),
    ("'https://www.linkedin.com/in/john-doe'", JD),
    ("  https://www.linkedin.com/in/john-doe \t", JD),
    ("<https://www.linkedin.com/in/john-doe>", JD),
    ("\u201chttps://www.linkedin.com/in/john-doe\u201d", JD),
    ("\ufeffhttps://www.linkedin.com/in/john-doe", JD),
    ("\u200bhttps://www.linkedin.com/in/john-doe\u00a0", JD),
    ("https://www.linkedin.com/in/john-doe\r\n", JD),
    # --- blank
    (None, R.EMPTY),
    ("", R.EMPTY),
    ("   ", R.EMPTY),
    ("\t\r\n", R.EMPTY),
    ('""', R.EMPTY),
    ("\u3000\u200b", R.EMPTY),
    # --- control characters
    ("\x00", R.CONTROL_CHARACTER),
    ("https://www.linkedin.com/in/john\x00doe", R.CONTROL_CHARACTER),
    ("https://www.linkedin.com/in/john-doe\x00", R.CONTROL_CHARACTER),
    ("https://www.linkedin.com/in/john\x1fdoe", R.CONTROL_CHARACTER),
    ("https://www.linkedin.com/in/john\ndoe", R.CONTROL_CHARACTER),
    ("https://www.linkedin.com/in/john-doe\u202e", R.CONTROL_CHARACTER),  # bidi override
    ("https://www.linkedin.com/in/%00abc", R.CONTROL_CHARACTER),
    # --- too long
    ("x" * 3000, R.TOO_LONG),
    ("https://www.linkedin.com/in/" + "a" * 2100, R.TOO_LONG),
    ("https://www.linkedin.com/in/" + "a" * 101, R.TOO_LONG),
    ("https://www.linkedin.com/in/" + "%C3%A9" * 101, R.TOO_LONG),
    # --- spreadsheet formulas
    ('=HYPERLINK("https://www.linkedin.com/in/john-doe","John Doe")', R.SPREADSHEET_FORMULA),
    ("+https://www.linkedin.com/in/john-doe", R.SPREADSHEET_FORMULA),
    ("-1", R.SPREADSHEET_FORMULA),
    ("@SUM(A1:A9)", R.SPREADSHEET_FORMULA),
    ("'=1+1", R.SPREADSHEET_FORMULA),
    # --- unsafe schemes
    ("javascript:alert(1)", R.UNSAFE_SCHEME),
    ("JavaScript:alert(document.cookie)//www.linkedin.com/in/john-doe", R.UNSAFE_SCHEME),
    ("data:text/html,<script>alert(1)</script>", R.UNSAFE_SCHEME),
    ("file:///etc/passwd", R.UNSAFE_SCHEME),
    ("ftp://www.linkedin.com/in/john-doe", R.UNSAFE_SCHEME),
    ("mailto:john@example.com", R.UNSAFE_SCHEME),
    ("chrome://settings", R.UNSAFE_SCHEME),
    # --- not a URL
    ("john-doe", R.NOT_A_URL),
    ("N/A", R.NOT_A_URL),
    ("not a url", R.NOT_A_URL),
    ("Name: John", R.NOT_A_URL),
    ("https://", R.NOT_A_URL),
    ("https:www.linkedin.com/in/john-doe", R.NOT_A_URL),
    ("https://www.linkedin.com/in/john doe", R.NOT_A_URL),
    ("https://www.linkedin.com/in/a https://www.linkedin.com/in/b", R.NOT_A_URL),
    ("https://www.linkedin.com\\in\\john-doe", R.NOT_A_URL),
    ("https://www.linkedin.com/in/x/../../company/acme", R.NOT_A_URL),
    ("https://www.linkedin.com/in/%2e%2e/company/acme", R.NOT_A_URL),
    ("/in/john-doe", R.NOT_A_URL),
    ("a\ud800b", R.NOT_A_URL),  # lone surrogate: not text Arrow (or UTF-8) can hold
    # --- other sites
    ("https://www.example.com/in/john-doe", R.OTHER_SITE),
    ("https://twitter.com/johndoe", R.OTHER_SITE),
    ("https://github.com/johndoe", R.OTHER_SITE),
    ("https://www.xing.com/profile/John_Doe", R.OTHER_SITE),
    ("http://192.168.0.1/in/john-doe", R.OTHER_SITE),
    ("https://[::1]/in/john-doe", R.OTHER_SITE),
    ("https://例子.测试/in/john-doe", R.OTHER_SITE),
    # --- look-alike hosts
    ("https://www.linkedin.com.evil.example/in/john-doe", R.LOOKALIKE_HOST),
    ("https://evil-linkedin.com/in/john-doe", R.LOOKALIKE_HOST),
    ("https://linkedin.co/in/john-doe", R.LOOKALIKE_HOST),
    ("https://www.linkedin.cn/in/john-doe", R.LOOKALIKE_HOST),
    ("https://www.linkedin.com@evil.example/in/john-doe", R.LOOKALIKE_HOST),
    ("https://user:pass@www.linkedin.com/in/john-doe", R.LOOKALIKE_HOST),
    ("https://www.linkedin.com:8443/in/john-doe", R.LOOKALIKE_HOST),
    ("www.linkedin.com:443/in/john-doe", R.LOOKALIKE_HOST),
    ("https://www.linkedln.com/in/john-doe", R.LOOKALIKE_HOST),
    ("https://www.l1nkedin.com/in/john-doe", R.LOOKALIKE_HOST),
    ("https://www.l\u0456nkedin.com/in/john-doe", R.LOOKALIKE_HOST),  # Cyrillic i
    ("https://xn--lnkedin-rog.com/in/john-doe", R.LOOKALIKE_HOST),  # the same, punycode
    # --- redirects and link wrappers
    ("https://www.google.com/url?q=https://www.linkedin.com/in/john-doe", R.REDIRECT),
    ("https://lnkd.in/dAbC123", R.REDIRECT),
    ("https://www.linkedin.com/redir/redirect?url=https%3A%2F%2Fexample.com", R.REDIRECT),
    (
        "https://www.linkedin.com/authwall?trk=gf&sessionRedirect="
        "https%3A%2F%2Fwww.linkedin.com%2Fin%2Fjohn-doe",
        R.REDIRECT,
    ),
    (
        "https://eur01.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwww.linkedin.com"
        "%2Fin%2Fjohn-doe&data=05",
        R.REDIRECT,
    ),
    ("https://www.linkedin.com/comm/in/john-doe?midToken=AQH", R.REDIRECT),
    # --- LinkedIn pages that are not member profiles
    ("https://www.linkedin.com/company/acme-corp/", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/company/acme-corp/about/?viewAsMember=true", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/school/stanford-university/", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/pub/john-doe/12/345/678", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/in/", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/in", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/in//john-doe", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/", R.NOT_A_PROFILE),
    ("linkedin.com", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/jobs/view/3912345678/", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/posts/john-doe_activity-7012345678901234567-abcd", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/feed/", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/groups/12345/", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/sales/lead/ACwAAAbCdEf,NAME_SEARCH,xYz1", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/sales/people/ACwAAAbCdEf", R.NOT_A_PROFILE),
    ("https://www.linkedin.com/profile/view?id=12345", R.NOT_A_PROFILE),
    ("https://business.linkedin.com/talent-solutions", R.NOT_A_PROFILE),
    # --- invalid slugs
    ("https://www.linkedin.com/in/john%2Fdoe", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/john%zzdoe", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/john%", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/%FF%FE-abc", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/jo", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/john.doe", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/john;jsessionid=1", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/john%20doe", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/john<script>", R.INVALID_SLUG),
    ("https://www.linkedin.com/in/john,jane", R.INVALID_SLUG),
]

# What the vectorised path must decide without the scalar fallback (performance:
# these are the overwhelming majority of a real list).
FAST_FORMS = [
    "https://www.linkedin.com/in/john-doe",
    "http://linkedin.com/in/John-Doe/",
    "www.linkedin.com/in/john-doe?utm_source=share",
    "uk.linkedin.com/in/john-doe/?originalSubdomain=uk",
    "https://m.linkedin.com/in/john-doe#about",
    "HTTPS://WWW.LINKEDIN.COM/IN/JOHN-DOE/details/experience/",
    f'"https://www.linkedin.com/in/{MEMBER}"',
    " https://www.linkedin.com/in/john-doe// ",
]

CANONICAL_RE = re.compile(r"^https://www\.linkedin\.com/in/[^/?#\s]+$")
ENCODED_SLUG_RE = re.compile(r"^(?:[A-Za-z0-9_\-]|%[0-9A-F]{2})+$")


def _expected(expected: str | RejectReason) -> tuple[str | None, str | None]:
    if isinstance(expected, RejectReason):
        return None, expected.value
    return expected, None


@pytest.mark.parametrize(("raw", "expected"), CORPUS, ids=[repr(r)[:60] for r, _ in CORPUS])
def test_corpus_scalar(raw: str | None, expected: str | RejectReason) -> None:
    outcome = normalize_profile_url(raw)
    canonical, reason = _expected(expected)
    assert (outcome.canonical, outcome.reason) == (canonical, reason), outcome.message
    assert (outcome.message is None) == (outcome.reason is None)
    assert outcome.ok == (canonical is not None)


def test_corpus_is_large_and_covers_every_reason() -> None:
    assert len(CORPUS) >= 70
    reasons = {e for _, e in CORPUS if isinstance(e, RejectReason)}
    assert reasons == set(RejectReason)


def test_reason_codes_are_stable() -> None:
    assert [r.value for r in RejectReason] == [
        "empty",
        "too_long",
        "spreadsheet_formula",
        "control_character",
        "not_a_url",
        "unsafe_scheme",
        "lookalike_host",
        "redirect",
        "other_site",
        "not_a_profile",
        "invalid_slug",
    ]
    assert str(RejectReason.EMPTY) == "empty" == RejectReason.EMPTY
    assert f"{RejectReason.OTHER_SITE}" == "other_site"


def test_corpus_vectorised_equals_scalar() -> None:
    raws = [raw for raw, _ in CORPUS]
    table = normalize_profile_urls(raws, include_messages=True)
    assert table.column_names == ["raw", "profile_url", "reject_reason", "reject_message"]
    for raw, row in zip(raws, table.to_pylist(), strict=True):
        outcome = normalize_profile_url(raw)
        assert row["profile_url"] == outcome.canonical, raw
        assert row["reject_reason"] == outcome.reason, raw
        assert row["reject_message"] == outcome.message, raw


def test_vectorised_output_schema_and_raw_column() -> None:
    values = ["https://www.linkedin.com/in/John-Doe/", None, "nope"]
    table = normalize_profile_urls(pa.array(values))
    assert table.schema == pa.schema(
        [("raw", pa.string()), ("profile_url", pa.string()), ("reject_reason", pa.string())]
    )
    assert table.to_pylist() == [
        {"raw": values[0], "profile_url": JD, "reject_reason": None},
        {"raw": None, "profile_url": None, "reject_reason": "empty"},
        {"raw": "nope", "profile_url": None, "reject_reason": "not_a_url"},
    ]


@pytest.mark.parametrize(
    "values",
    [
        pa.array(["linkedin.com/in/john-doe", None], pa.large_string()),
        pa.array(["linkedin.com/in/john-doe", None]).dictionary_encode(),
        pa.chunked_array([["linkedin.com/in/john-doe"], [], [None]]),
        pa.array(["linkedin.com/in/john-doe", None], pa.string_view()),
    ],
    ids=["large_string", "dictionary", "chunked", "string_view"],
)
def test_vectorised_accepts_arrow_string_types(values: pa.Array | pa.ChunkedArray) -> None:
    table = normalize_profile_urls(values)
    assert table.column("profile_url").to_pylist() == [JD, None]
    assert table.column("reject_reason").to_pylist() == [None, "empty"]


def test_vectorised_empty_and_all_null_inputs() -> None:
    assert normalize_profile_urls([]).num_rows == 0
    assert normalize_profile_urls(pa.chunked_array([], pa.string())).num_rows == 0
    table = normalize_profile_urls(pa.nulls(3))
    assert table.column("reject_reason").to_pylist() == ["empty"] * 3


def test_vectorised_rejects_non_string_arrays() -> None:
    with pytest.raises(TypeError):
        normalize_profile_urls(pa.array([1, 2]))


def test_pandas_style_missing_values_are_empty() -> None:
    assert normalize_profile_url(math.nan).reason is RejectReason.EMPTY  # type: ignore[arg-type]
    assert normalize_profile_url(42).reason is RejectReason.NOT_A_URL  # type: ignore[arg-type]
    table = normalize_profile_urls([math.nan, "linkedin.com/in/john-doe"])  # type: ignore[list-item]
    assert table.column("reject_reason").to_pylist() == ["empty", None]


def test_vectorised_sequence_with_lone_surrogates() -> None:
    values = ["linkedin.com/in/john-doe", "linkedin.com/in/jo\ud800hn", None]
    table = normalize_profile_urls(values)
    assert table.column("raw").to_pylist()[1] == "linkedin.com/in/jo\ufffdhn"
    assert table.column("reject_reason").to_pylist() == [
        None,
        normalize_profile_url(values[1]).reason,
        "empty",
    ]


def test_common_forms_take_the_fast_path() -> None:
    """Guards the benchmark: the usual spellings must not fall back to Python."""
    mask = profile_urls.fast_path_mask(pa.array(FAST_FORMS))
    assert mask.to_pylist() == [True] * len(FAST_FORMS)
    slow = profile_urls.fast_path_mask(pa.array([JOSE, "https://example.com/in/john-doe"]))
    assert slow.to_pylist() == [False, False]


def test_vectorised_many_slices_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slicing, the thread pool and the shared memo keep row order and results."""
    monkeypatch.setattr(profile_urls, "_SLICE_ROWS", 7)
    raws = [raw for raw, _ in CORPUS] * 3 + FAST_FORMS
    expected = [normalize_profile_url(raw) for raw in raws]
    table = normalize_profile_urls(raws)  # a Python list: surrogates in several slices
    assert table.column("profile_url").to_pylist() == [o.canonical for o in expected]
    assert table.column("reject_reason").to_pylist() == [o.reason for o in expected]

    storable = [raw for raw in raws if raw is None or not re.search("[\ud800-\udfff]", raw)]
    expected = [normalize_profile_url(raw) for raw in storable]
    table = normalize_profile_urls(pa.chunked_array([storable[:50], storable[50:]], pa.string()))
    assert table.column("profile_url").to_pylist() == [o.canonical for o in expected]
    assert table.column("reject_reason").to_pylist() == [o.reason for o in expected]


def test_outcome_is_a_frozen_value() -> None:
    outcome = normalize_profile_url("linkedin.com/in/john-doe")
    assert outcome == NormalizedUrl(JD, None, None)
    with pytest.raises(AttributeError):
        outcome.canonical = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# Properties

SCHEMES = ["", "http://", "https://", "HTTPS://", "hTtP://", "//", "https:", "https:/"]
SCHEMES += ["javascript:", "ftp://", "data:", "mailto:"]
HOSTS = [
    "www.linkedin.com",
    "linkedin.com",
    "uk.linkedin.com",
    "DE.LinkedIn.COM",
    "m.linkedin.com",
    "www.linkedin.com.",
    "linkedin.com.evil.example",
    "evil-linkedin.com",
    "www.linkedin.com@evil.example",
    "www.linkedin.com:443",
    "example.com",
    "lnkd.in",
    "business.linkedin.com",
    "www.google.com",
    "l\u0456nkedin.com",
    "lin\u212aedin.com",  # Kelvin sign: lower-cases to "k"
    "www.linkedin.com\u017f",  # long s
    "",
]
PATHS = ["/in/", "/IN/", "/In/", "/company/", "/pub/", "/mwlite/in/", "/in//", "/sales/lead/"]
PATHS += ["/", "", "/redir/", "/comm/in/", "/url?q="]
SLUG_PIECES = [
    *"abcXYZ019-_.%é中😀 /?#\\@:;~'\"İßK",
    "%C3%A9",
    "%c3%a9",
    "%2F",
    "%2e",
    "%ZZ",
    "%00",
    "%E2%80%AE",
    "ACoAA",
    "ACwAA",
    "..",
    "\u0301",
    "\u200d",
    "\u202e",
    "\x00",
    "\ud800",
    "\u00a0",
]
SUFFIXES = ["", "/", "//", "/details/experience/", "/recent-activity/all/", "?utm_source=x"]
SUFFIXES += ["/?originalSubdomain=uk", "#frag", "/../company/x", "/./", "?q=a b", "?q=\\"]
SUFFIXES += ["/%2e%2e/", "/fr", "?é", "#\x7f"]
WRAPPERS = ["{}", " {} ", '"{}"', "'{}'", "<{}>", "\u201c{}\u201d", "\ufeff{}", "{}\n", "={}"]
WRAPPERS += ["\t{}\t", "{}\u200b", "{}\x1c"]

url_shaped = st.builds(
    lambda wrap, scheme, host, path, slug, suffix: wrap.format(
        scheme + host + path + slug + suffix
    ),
    st.sampled_from(WRAPPERS),
    st.sampled_from(SCHEMES),
    st.sampled_from(HOSTS),
    st.sampled_from(PATHS),
    st.lists(st.sampled_from(SLUG_PIECES), max_size=12).map("".join),
    st.sampled_from(SUFFIXES),
)
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
# What an Arrow column can hold: no lone surrogates.
arrow_text = st.text(max_size=60)
arrow_url_shaped = url_shaped.map(lambda s: re.sub("[\ud800-\udfff]", "\ufffd", s))
values = st.one_of(url_shaped, any_text) | st.none()
fast_settings = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _check_canonical(canonical: str) -> None:
    assert CANONICAL_RE.match(canonical), canonical
    slug = canonical[len(CANONICAL_PREFIX) :]
    assert ENCODED_SLUG_RE.match(slug), canonical
    decoded = unquote_to_bytes(slug).decode("utf-8")  # valid percent-encoded UTF-8
    assert quote(decoded, safe="-_") == slug  # one encoding per slug: upper-case hex
    assert normalize_profile_url(canonical).canonical == canonical  # idempotent


@fast_settings
@given(st.one_of(url_shaped, any_text))
def test_never_raises_and_output_is_canonical(raw: str) -> None:
    outcome = normalize_profile_url(raw)
    assert (outcome.canonical is None) != (outcome.reason is None)
    assert isinstance(outcome.message, str) or outcome.reason is None
    if outcome.canonical is not None:
        _check_canonical(outcome.canonical)
    else:
        assert outcome.reason in set(RejectReason)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(arrow_url_shaped, arrow_text, st.none()), max_size=25))
def test_vectorised_equals_scalar(raws: list[str | None]) -> None:
    table = normalize_profile_urls(pa.array(raws, pa.string()), include_messages=True)
    for raw, row in zip(raws, table.to_pylist(), strict=True):
        outcome = normalize_profile_url(raw)
        assert row["raw"] == raw
        assert (row["profile_url"], row["reject_reason"], row["reject_message"]) == (
            outcome.canonical,
            None if outcome.reason is None else outcome.reason.value,
            outcome.message,
        ), raw


@settings(max_examples=100, deadline=None)
@given(st.lists(values, max_size=10))
def test_vectorised_equals_scalar_from_python_sequences(raws: list[str | None]) -> None:
    table = normalize_profile_urls(raws)
    assert table.column("profile_url").to_pylist() == [
        normalize_profile_url(r).canonical for r in raws
    ]
    assert table.column("reject_reason").to_pylist() == [
        normalize_profile_url(r).reason for r in raws
    ]


@fast_settings
@given(
    st.sampled_from(["https://www.linkedin.com/in/", "linkedin.com/in/", "uk.linkedin.com/IN/"]),
    st.text(
        st.characters(categories=["L", "M", "N", "So", "Sk"], include_characters="-_%"),
        min_size=1,
        max_size=30,
    ),
)
def test_unicode_slugs_are_canonical(prefix: str, slug: str) -> None:
    """Letters of any script, marks, emoji: when accepted, the output is canonical."""
    outcome = normalize_profile_url(prefix + slug)
    if outcome.canonical is not None:
        _check_canonical(outcome.canonical)
        table = normalize_profile_urls([prefix + slug])
        assert table.column("profile_url").to_pylist() == [outcome.canonical]
