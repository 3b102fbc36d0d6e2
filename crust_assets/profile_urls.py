"""Normalise professional-network profile URLs to one canonical form, or reject them.

Why this module exists: the batch API bills per delivered value and echoes every
submitted URL byte for byte, so two spellings of one profile would be enriched
(and paid for) twice, and a URL that is not a member profile makes the whole job
a 400. Every input value therefore ends up either as exactly one canonical URL

    https://www.linkedin.com/in/<slug>

or as a rejection with a stable, machine-readable :class:`RejectReason` plus a
message a person can act on. Nothing is silently dropped.

The rules (each one is a decision; the tests hold the corpus that pins them):

* Surrounding whitespace, zero-width characters, quotes (straight, curly, ``«»``),
  angle brackets and backticks are stripped: they come from copying out of
  e-mails, chat and spreadsheets. Anything inside the value is taken literally.
* ``http``/``https`` or no scheme at all (``linkedin.com/in/x``, ``//www...``),
  hosts ``linkedin.com``, ``www.``, ``m.`` and any two-letter country host
  (``uk.``, ``de.``...), any letter case in scheme, host and the ``/in/`` segment,
  one trailing dot on the host. Everything else about the host is suspicious:
  user-info (``www.linkedin.com@evil.example``) and ports are rejected as
  look-alikes because they are the classic ways to make a URL *read* as LinkedIn
  while going elsewhere.
* Query string and fragment are dropped (tracking parameters, ``originalSubdomain``,
  ``#experience``), as are trailing slashes.
* Sub-pages of a profile (``/in/<slug>/details/experience/``,
  ``/in/<slug>/recent-activity/all/``, ``/in/<slug>/overlay/contact-info/``, a
  language version ``/in/<slug>/fr``) are reduced to the profile. The member is
  identified by the segment after ``/in/`` alone; everything below it is a view of
  the same member, so keeping the member is what the user meant and cannot name a
  different person. The one way a sub-path *could* name another page, dot segments
  (``/in/x/../../company/y``), is rejected outright. ``/mwlite/in/<slug>`` (the
  "LinkedIn Lite" mobile site) is read as ``/in/<slug>``.
* The slug is percent-decoded (strictly: malformed escapes or non-UTF-8 bytes are
  rejected), put into Unicode NFC, lower-cased unless it is a member id
  (``ACoAA...``/``ACwAA...`` followed by base64url characters: those are
  case-sensitive), checked (letters, marks, digits of any script, ``-``, ``_`` and
  emoji; 3 to 100 characters, the limits LinkedIn documents for public profile
  URLs) and re-encoded with upper-case hex. So ``%C3%A9``, ``%c3%a9`` and a raw
  ``é`` all give the same canonical URL, and the canonical URL normalises to itself.

Two entry points that agree exactly: :func:`normalize_profile_url` for one value and
:func:`normalize_profile_urls` for a column. The vectorised one decides with Arrow
compute kernels (RE2 regexes over the whole array) what is common and simple: the
plain-ASCII profile URLs in their usual spellings, blank values, and well-formed
LinkedIn URLs of pages that are not profiles. Only the remaining rows (Unicode or
percent-encoded slugs, other sites, garbage) go to the scalar function, once per
distinct value. Large inputs are cut into slices whose Arrow work runs in threads
while the scalar fallback of finished slices runs in the calling thread. The fast
patterns are deliberately narrower than the scalar rules, so the two cannot disagree
on a row the fast path decides unless a fast pattern is wrong; the tests compare
both on the corpus and on generated input. ``crust_assets.bench.normalisation``
measures the speed against a plain ``urllib.parse`` loop.
"""

from __future__ import annotations

import contextlib
import math
import re
import unicodedata
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum
from urllib.parse import unquote_to_bytes

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "CANONICAL_PREFIX",
    "MAX_SLUG_LENGTH",
    "MAX_URL_LENGTH",
    "MIN_SLUG_LENGTH",
    "NormalizedUrl",
    "RejectReason",
    "fast_path_mask",
    "normalize_profile_url",
    "normalize_profile_urls",
]

CANONICAL_PREFIX = "https://www.linkedin.com/in/"
#: Longest raw value considered at all (browsers and most proxies cap URLs near 2 KB).
MAX_URL_LENGTH = 2048
#: LinkedIn: "Your custom URL can have 3-100 characters". Counted after decoding.
MAX_SLUG_LENGTH = 100
MIN_SLUG_LENGTH = 3


class RejectReason(str, Enum):
    """Why a value is not a usable profile URL. The values are stable identifiers.

    They are stored in the rejected-URL table and counted in asset metadata, so
    renaming one is a breaking change for downstream readers.
    """

    EMPTY = "empty"  # null, blank, or only whitespace/quotes
    TOO_LONG = "too_long"  # value over 2048 characters, or slug over 100
    SPREADSHEET_FORMULA = "spreadsheet_formula"  # starts with = + - @ (CSV injection)
    CONTROL_CHARACTER = "control_character"  # C0/C1 controls, bidi overrides, even encoded
    NOT_A_URL = "not_a_url"  # garbage, whitespace inside, backslashes, dot segments
    UNSAFE_SCHEME = "unsafe_scheme"  # javascript:, data:, file:, ftp:, mailto:...
    LOOKALIKE_HOST = "lookalike_host"  # imitation hosts, user-info, ports
    REDIRECT = "redirect"  # link wrappers and LinkedIn redirects / sign-in walls
    OTHER_SITE = "other_site"  # any other host
    NOT_A_PROFILE = "not_a_profile"  # company, school, /pub/, jobs, posts, /sales/...
    INVALID_SLUG = "invalid_slug"  # bad characters or encoding, or under 3 characters

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class NormalizedUrl:
    """The outcome for one value: exactly one of ``canonical`` / ``reason`` is set."""

    canonical: str | None
    reason: RejectReason | None
    message: str | None

    @property
    def ok(self) -> bool:
        return self.canonical is not None


def _reject(reason: RejectReason, message: str) -> NormalizedUrl:
    return NormalizedUrl(None, reason, message)


_EMPTY_MESSAGE = "empty value"
_EMPTY = _reject(RejectReason.EMPTY, _EMPTY_MESSAGE)

# Stripped from both ends only. Deliberately excludes the C0 "separator" controls
# \x1c-\x1f that str.strip() would remove: those are reported as control characters.
_STRIP_CHARS = (
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"  # whitespace
    "\u200b\u200c\u200d\u2060\ufeff"  # zero-width characters and a stray BOM
    "\"'`<>\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"  # quotes
)
_FORMULA_START = frozenset("=+-@")
# C0, DEL, C1 and the bidirectional overrides/isolates/marks (used to disguise URLs).
_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_WHITESPACE_RE = re.compile(r"\s")
_SUSPECT_CHAR_RE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff\\\\]|\\s"
)
_AUTHORITY_END_RE = re.compile(r"[/?#]")
_ASCII_SLUG_RE = re.compile(r"[A-Za-z0-9_\-]+")
# Letters and digits of any script plus "-" and "_": a shortcut for _slug_char_ok.
_WORD_SLUG_RE = re.compile(r"[\w\-]+")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_UNSAFE_SCHEMES = frozenset(
    {
        "javascript",
        "vbscript",
        "livescript",
        "data",
        "file",
        "ftp",
        "ftps",
        "sftp",
        "blob",
        "about",
        "chrome",
        "mailto",
        "tel",
        "sms",
        "ws",
        "wss",
        "ssh",
        "smb",
        "ldap",
        "jar",
        "view-source",
        "filesystem",
        "intent",
        "linkedin",
        "voyager",
    }
)
_LINKEDIN_HOST_RE = re.compile(r"(?:(?:www|m|[a-z]{2})\.)?linkedin\.com")
_ASCII_HOST_RE = re.compile(r"[a-z0-9.\-]+")
_REDIRECT_HOSTS = frozenset(
    {
        "lnkd.in",
        "t.co",
        "bit.ly",
        "tinyurl.com",
        "ow.ly",
        "buff.ly",
        "goo.gl",
        "rebrand.ly",
        "l.facebook.com",
        "lm.facebook.com",
        "l.instagram.com",
        "out.reddit.com",
        "href.li",
        "urldefense.com",
        "urldefense.proofpoint.com",
        "linkprotect.cudasvc.com",
        "clicktime.symantec.com",
    }
)
_REDIRECT_HOST_SUFFIXES = (".safelinks.protection.outlook.com",)
_GOOGLE_HOST_RE = re.compile(r"(?:www\.)?google(?:\.[a-z]{2,3}){1,2}")
# First path segments on a LinkedIn host that bounce to another address.
_LINKEDIN_REDIRECT_PATHS = frozenset({"redir", "authwall", "comm", "slink", "safety", "checkpoint"})
_NOT_PROFILE_MESSAGES = {
    "company": "a company page (/company/), not a member profile",
    "school": "a school page (/school/), not a member profile",
    "edu": "a school page (/edu/), not a member profile",
    "showcase": "a showcase page (/showcase/), not a member profile",
    "pub": "a legacy /pub/ URL; open it and use the /in/ address it leads to",
    "jobs": "a jobs page, not a member profile",
    "job": "a jobs page, not a member profile",
    "posts": "a post, not a member profile",
    "pulse": "an article (/pulse/), not a member profile",
    "feed": "a feed page, not a member profile",
    "groups": "a group page, not a member profile",
    "events": "an event page, not a member profile",
    "newsletters": "a newsletter page, not a member profile",
    "sales": "a Sales Navigator URL (/sales/); use the member's public /in/ URL",
    "talent": "a LinkedIn Recruiter URL (/talent/); use the member's public /in/ URL",
    "recruiter": "a LinkedIn Recruiter URL; use the member's public /in/ URL",
    "profile": "a legacy /profile/ URL; use the member's public /in/ URL",
    "search": "a search page, not a member profile",
    "learning": "a LinkedIn Learning page, not a member profile",
}
_GENERIC_NOT_PROFILE = "not a member profile URL (/in/<slug>)"
_MEMBER_ID_RE = re.compile(r"AC[ow]AA[A-Za-z0-9_\-]+")
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_DOT_SEGMENTS = frozenset({".", "..", "%2e", ".%2e", "%2e.", "%2e%2e"})
# UTF-8 bytes (seen as Latin-1 characters) 0x80-0xFF -> "%XX": percent-encoding with
# str.translate, which runs in C. Only used on validated slugs, whose ASCII
# characters (letters, digits, "-", "_") never need encoding.
_PERCENT_ENCODE = {b: f"%{b:02X}" for b in range(0x80, 0x100)}


def _ci(literal: str) -> str:
    """A regex for ``literal`` matching ASCII letters in either case.

    Used instead of ``(?i)``: both RE2 and Python fold some non-ASCII characters
    into ASCII letters (the Kelvin sign into "k", the long s into "s"), which
    would let the fast path accept text the scalar rules read differently.
    """
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in literal)


# The common well-formed shapes, for the fast paths (RE2 in Arrow, Python re in the
# scalar function; the syntax is valid for both). Sub-path segments start with a
# character that cannot begin a dot segment; the query/fragment is printable ASCII
# without a backslash.
_PREFIX = (
    "^(?:"
    + _ci("http")
    + "[Ss]?://)?(?:(?:"
    + _ci("www")
    + "|[Mm]|[A-Za-z]{2})\\.)?"
    + _ci("linkedin.com")
)
_SUBPATH = r"(?:/[A-Za-z0-9_~\-][A-Za-z0-9_.~\-]*)*/*"
_QUERY = r"(?:[?#][\x21-\x5B\x5D-\x7E]*)?"
# Scalar shortcut: any slug (the slug rules run on it next); see normalize_profile_url.
_QUICK_RE = re.compile(_PREFIX + "/" + _ci("in") + "/([^/?#]+)" + _SUBPATH + "(?:[?#].*)?$", re.S)
_NON_LETTERS_RE = re.compile(r"[^a-z]")
_LABEL_SPLIT_RE = re.compile(r"[.\-]")
_LINKEDIN_LETTERS = frozenset("linkedin")
_EMOJI_EXTRA = frozenset("\u200d")  # zero-width joiner inside emoji sequences
# Latin look-alikes from other scripts, for the look-alike host check only.
_CONFUSABLES = str.maketrans(
    {
        "\u0430": "a",  # CYRILLIC SMALL LETTER A
        "\u0435": "e",  # CYRILLIC SMALL LETTER IE
        "\u0456": "i",  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
        "\u0131": "i",  # LATIN SMALL LETTER DOTLESS I
        "\u04cf": "l",  # CYRILLIC SMALL LETTER PALOCHKA
        "\u043a": "k",  # CYRILLIC SMALL LETTER KA
        "\u043e": "o",  # CYRILLIC SMALL LETTER O
        "\u0440": "p",  # CYRILLIC SMALL LETTER ER
        "\u0441": "c",  # CYRILLIC SMALL LETTER ES
        "\u0501": "d",  # CYRILLIC SMALL LETTER KOMI DE
        "\u0578": "n",  # ARMENIAN SMALL LETTER VO
        "\u043f": "n",  # CYRILLIC SMALL LETTER PE
        "\u03b9": "i",  # GREEK SMALL LETTER IOTA
        "\u03ba": "k",  # GREEK SMALL LETTER KAPPA
        "\u03bd": "v",  # GREEK SMALL LETTER NU
        "\u03bf": "o",  # GREEK SMALL LETTER OMICRON
        "1": "l",
        "0": "o",
        "|": "l",
    }
)


def normalize_profile_url(raw: str | None) -> NormalizedUrl:
    """Normalise one value to ``https://www.linkedin.com/in/<slug>`` or say why not.

    Total on every ``str`` (and ``None``): it never raises, because one odd cell in
    a customer's list must become a reject row, not a failed run. The checks run in
    a fixed order, so each value has exactly one reason: length of the raw value,
    then (after stripping) blank, formula, control characters, other characters a
    URL cannot hold, scheme, host (user-info, port, LinkedIn, redirector, look-alike,
    other), path (dot segments, redirects, non-profile pages), and last the slug.
    """
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return _EMPTY  # None from Arrow, NaN from pandas: both are a blank cell
    if not isinstance(raw, str):
        return _reject(RejectReason.NOT_A_URL, f"expected text, got {type(raw).__name__}")
    if len(raw) > MAX_URL_LENGTH:
        return _reject(
            RejectReason.TOO_LONG,
            f"value has {len(raw)} characters; the limit is {MAX_URL_LENGTH}",
        )
    s = raw.strip(_STRIP_CHARS)
    if not s:
        return _EMPTY
    if s[0] in _FORMULA_START:
        return _reject(
            RejectReason.SPREADSHEET_FORMULA,
            f"starts with {s[0]!r}: a spreadsheet formula or formula injection, not a URL",
        )
    if _SUSPECT_CHAR_RE.search(s):  # one scan; the order of the checks below is the contract
        return _reject_suspect_chars(s)
    quick = _QUICK_RE.match(s)
    if quick is not None and quick.group(1).lower() not in _DOT_SEGMENTS:
        # The usual shape: what _normalize_clean would conclude about scheme, host and
        # path is already certain, only the slug is left to check.
        return _normalize_slug(quick.group(1))
    return _normalize_clean(s)


def _reject_suspect_chars(s: str) -> NormalizedUrl:
    control = _CONTROL_RE.search(s)
    if control:
        return _reject(
            RejectReason.CONTROL_CHARACTER,
            f"contains control character U+{ord(control.group()):04X}",
        )
    if _SURROGATE_RE.search(s):
        return _reject(RejectReason.NOT_A_URL, "not valid Unicode text (unpaired surrogate)")
    if _WHITESPACE_RE.search(s):
        return _reject(
            RejectReason.NOT_A_URL,
            "contains whitespace inside the value (a URL cannot; several values in one cell?)",
        )
    return _reject(RejectReason.NOT_A_URL, "contains a backslash")


def _normalize_clean(s: str) -> NormalizedUrl:
    """The URL part of the rules, for a stripped value with no whitespace or controls."""
    has_scheme = False
    m = _SCHEME_RE.match(s)
    rest = s
    if m:
        scheme = m.group(1).lower()
        after = s[m.end() :]
        if scheme in ("http", "https"):
            if not after.startswith("//"):
                return _reject(RejectReason.NOT_A_URL, f"'{scheme}:' is not followed by '//'")
            has_scheme = True
            rest = after[2:]
        elif scheme in _UNSAFE_SCHEMES or after.startswith("//"):
            return _reject(
                RejectReason.UNSAFE_SCHEME,
                f"scheme '{scheme}:' is not allowed; only http and https",
            )
        elif not after[:1].isdigit():
            return _reject(RejectReason.NOT_A_URL, "not a URL")
        # else "host:port/..." without a scheme: fall through and parse it as a host.
    if not has_scheme and rest.startswith("//"):
        has_scheme = True  # protocol-relative "//www.linkedin.com/in/x"
        rest = rest[2:]

    m = _AUTHORITY_END_RE.search(rest)
    if m is None:
        authority, tail = rest, ""
    else:
        authority, tail = rest[: m.start()], rest[m.start() :]
    if not authority:
        return _reject(RejectReason.NOT_A_URL, "no host")
    if "@" in authority:
        return _reject(
            RejectReason.LOOKALIKE_HOST,
            "contains user-info before '@' (a trick to make a URL read as another site)",
        )
    if authority.startswith("["):
        return _reject(RejectReason.OTHER_SITE, "an IP address, not linkedin.com")
    host, colon, _port = authority.partition(":")
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        return _reject(RejectReason.NOT_A_URL, "no host")
    ascii_host = _ASCII_HOST_RE.fullmatch(host) is not None
    if not has_scheme and "." not in host:
        return _reject(RejectReason.NOT_A_URL, "not a URL")
    path = tail.partition("?")[0].partition("#")[0]

    if ascii_host and _LINKEDIN_HOST_RE.fullmatch(host):
        if colon:
            return _reject(RejectReason.LOOKALIKE_HOST, "has a port; profile URLs never do")
        return _normalize_path(path)
    if ascii_host and host.endswith(".linkedin.com"):
        if colon:
            return _reject(RejectReason.LOOKALIKE_HOST, "has a port; profile URLs never do")
        return _reject(
            RejectReason.NOT_A_PROFILE,
            f"host '{host}' is a LinkedIn host that does not serve member profiles",
        )
    if _is_redirect(host, path):
        return _reject(
            RejectReason.REDIRECT,
            f"a redirect or link-wrapper ({host}); use the profile URL it leads to",
        )
    if _looks_like_linkedin(host):
        return _reject(
            RejectReason.LOOKALIKE_HOST,
            f"host '{host}' imitates linkedin.com but is not it",
        )
    if not ascii_host and not all(c.isalnum() or c in ".-" for c in host):
        return _reject(RejectReason.NOT_A_URL, "not a URL (invalid host)")
    return _reject(RejectReason.OTHER_SITE, f"host '{host}' is not linkedin.com")


def _is_redirect(host: str, path: str) -> bool:
    if host in _REDIRECT_HOSTS or host.endswith(_REDIRECT_HOST_SUFFIXES):
        return True
    return _GOOGLE_HOST_RE.fullmatch(host) is not None and (path == "/url" or path == "/url/")


def _looks_like_linkedin(host: str) -> bool:
    """True when a host is not LinkedIn's but resembles it (typosquat, homograph, suffix)."""
    if "xn--" in host:
        with contextlib.suppress(UnicodeError, ValueError):
            host = host.encode("ascii").decode("idna")
    folded = host.lower().translate(_CONFUSABLES)
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded).translate(_CONFUSABLES)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    squeezed = _NON_LETTERS_RE.sub("", folded)
    if "linkedin" in squeezed or "lnkd" in squeezed:
        return True
    # Within two edits of "linkedin" ("linkedln", "linkdin", "llnkedin"...). Such a
    # label shares at least 4 of the 6 distinct letters of "linkedin": a cheap filter.
    return any(
        len(_LINKEDIN_LETTERS.intersection(label)) >= 4
        and _within_edit_distance(label, "linkedin", 2)
        for label in _LABEL_SPLIT_RE.split(folded)
    )


def _within_edit_distance(a: str, b: str, limit: int) -> bool:
    """Levenshtein distance <= ``limit``, giving up as soon as a DP row exceeds it."""
    if abs(len(a) - len(b)) > limit:
        return False
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return False
        previous = current
    return previous[-1] <= limit


def _normalize_path(path: str) -> NormalizedUrl:
    segments = path.rstrip("/").split("/")[1:] if path else []
    if not segments:
        return _reject(RejectReason.NOT_A_PROFILE, "a LinkedIn page without a profile path")
    if any(seg.lower() in _DOT_SEGMENTS for seg in segments):
        return _reject(RejectReason.NOT_A_URL, "path contains '.' or '..' segments")
    first = segments[0].lower()
    if first == "mwlite" and len(segments) > 1 and segments[1].lower() == "in":
        segments = segments[1:]
        first = "in"
    if first != "in":
        if first in _LINKEDIN_REDIRECT_PATHS:
            return _reject(
                RejectReason.REDIRECT,
                f"a LinkedIn redirect or sign-in wall (/{first}/); use the profile URL itself",
            )
        message = _NOT_PROFILE_MESSAGES.get(first, _GENERIC_NOT_PROFILE)
        return _reject(RejectReason.NOT_A_PROFILE, message)
    if len(segments) < 2 or not segments[1]:
        return _reject(RejectReason.NOT_A_PROFILE, "/in/ without a profile slug")
    return _normalize_slug(segments[1])


def _normalize_slug(raw_slug: str) -> NormalizedUrl:
    if _ASCII_SLUG_RE.fullmatch(raw_slug):
        # Plain ASCII (most slugs): NFC, the character check and percent-encoding are
        # no-ops for these characters, so skip them.
        text = raw_slug if _MEMBER_ID_RE.fullmatch(raw_slug) else raw_slug.lower()
        return _check_length(text) or NormalizedUrl(CANONICAL_PREFIX + text, None, None)
    text = raw_slug
    if "%" in raw_slug:
        if _BAD_PERCENT_RE.search(raw_slug):
            return _reject(RejectReason.INVALID_SLUG, "malformed percent-encoding in the slug")
        try:
            text = unquote_to_bytes(raw_slug).decode("utf-8")
        except UnicodeDecodeError:
            return _reject(RejectReason.INVALID_SLUG, "percent-encoded slug is not UTF-8")
        control = _CONTROL_RE.search(text)
        if control:
            return _reject(
                RejectReason.CONTROL_CHARACTER,
                f"slug contains (percent-encoded) control character U+{ord(control.group()):04X}",
            )
    text = unicodedata.normalize("NFC", text)
    if _MEMBER_ID_RE.fullmatch(text) is None:
        text = unicodedata.normalize("NFC", text.lower())
    if _WORD_SLUG_RE.fullmatch(text) is None:
        for ch in text:
            if _slug_char_ok(ch):
                continue
            return _reject(
                RejectReason.INVALID_SLUG,
                f"slug contains {ch!r} (U+{ord(ch):04X}), which profile URLs never contain",
            )
    encoded = text.encode("utf-8").decode("latin-1").translate(_PERCENT_ENCODE)
    return _check_length(text) or NormalizedUrl(CANONICAL_PREFIX + encoded, None, None)


def _check_length(text: str) -> NormalizedUrl | None:
    """Length limits on the decoded, case-folded slug (what LinkedIn counts)."""
    if len(text) > MAX_SLUG_LENGTH:
        return _reject(
            RejectReason.TOO_LONG,
            f"slug has {len(text)} characters; the limit is {MAX_SLUG_LENGTH}",
        )
    if len(text) < MIN_SLUG_LENGTH:
        return _reject(
            RejectReason.INVALID_SLUG,
            f"slug has {len(text)} characters; profile slugs have at least {MIN_SLUG_LENGTH}",
        )
    return None


def _slug_char_ok(ch: str) -> bool:
    if ch < "\x80":
        return ch.isalnum() or ch in "-_"
    category = unicodedata.category(ch)
    return category[0] in "LMN" or category in ("So", "Sk") or ch in _EMOJI_EXTRA


# ---------------------------------------------------------------------------------------
# Vectorised

# The vectorised fast path: plain-ASCII values in the common shapes, tested after
# stripping. Narrower than the scalar rules on purpose (ASCII slug only, no dot
# segments, no trailing host dot, no "//" before the host); whatever it does not
# match goes to the scalar function. The slug length (3..100) is checked after
# extraction: a counted repetition makes the RE2 DFA noticeably slower.
_FAST_PATTERN = _PREFIX + "/" + _ci("in") + "/[A-Za-z0-9_\\-]+" + _SUBPATH + _QUERY + "$"
# Meaningful only on rows _FAST_PATTERN matched: there it finds the slug. Written so
# that RE2 can run it "one-pass" (at each character only one way to continue):
# up to the first "/", then either "/host/" (a scheme was present) or directly "in/".
_FAST_SLUG_PATTERN = "^[^/]*/(?:/[^/]*/)?" + _ci("in") + "/(?P<slug>[A-Za-z0-9_\\-]+)"
# Well-formed LinkedIn URLs whose first path segment is a plain word: the scalar
# rules reject them as NOT_A_PROFILE with a message chosen by that word alone,
# except for the words excluded below (profiles, redirects), left to the scalar path.
_FAST_NOT_PROFILE_PATTERN = _PREFIX + "/[A-Za-z]+" + _SUBPATH + _QUERY + "$"
_FAST_FIRST_SEGMENT_PATTERN = "^[^/]*/(?:/[^/]*/)?(?P<first>[A-Za-z]+)"
_FAST_NOT_PROFILE_EXCLUDED = pa.array(sorted({"in", "mwlite"} | _LINKEDIN_REDIRECT_PATHS))
_FAST_NOT_PROFILE_KEYS = pa.array(list(_NOT_PROFILE_MESSAGES))
_FAST_NOT_PROFILE_MESSAGES = pa.array(list(_NOT_PROFILE_MESSAGES.values()))
#: Rows per slice of work (see _normalize_array): big enough that per-call overhead
#: is noise, small enough that threads and the scalar fallback overlap.
_SLICE_ROWS = 131_072


def normalize_profile_urls(
    values: pa.Array | pa.ChunkedArray | Sequence[str | None],
    *,
    include_messages: bool = False,
) -> pa.Table:
    """Normalise a column of values; row ``i`` equals ``normalize_profile_url(values[i])``.

    Returns a table with ``raw`` (the input), ``profile_url`` (null if rejected) and
    ``reject_reason`` (a :class:`RejectReason` value, null if valid), in input order;
    with ``include_messages`` also ``reject_message`` (the scalar function's message).
    Why vectorised: input lists reach hundreds of thousands of rows and a Python
    loop over them dominated the asset's run time; see the module docstring.

    A Python sequence may hold strings that Arrow cannot store (lone surrogates):
    their ``raw`` is stored with those code points replaced by U+FFFD, and their
    outcome is still computed from the original string.
    """
    return _normalize_array(values, with_messages=include_messages)


def _normalize_array(
    values: pa.Array | pa.ChunkedArray | Sequence[str | None], *, with_messages: bool
) -> pa.Table:
    """Shared body of :func:`normalize_profile_urls`; optionally adds ``reject_message``.

    Large inputs are cut into slices. The Arrow part of each slice runs in a thread
    pool (Arrow kernels release the GIL) while this thread runs the scalar fallback
    of the slices already done, so the two kinds of work overlap. A memo shared by
    all slices evaluates each distinct fallback value once.
    """
    overrides: dict[int, str] = {}
    if isinstance(values, pa.ChunkedArray):
        chunks = list(values.chunks)
    elif isinstance(values, pa.Array):
        chunks = [values]
    else:
        array, overrides = _sequence_to_array(values)
        chunks = [array]
    slices: list[tuple[int, pa.Array]] = []  # (position of the slice in the input, slice)
    position = 0
    for chunk in chunks:
        for start in range(0, len(chunk), _SLICE_ROWS):
            slices.append((position + start, _as_string_array(chunk.slice(start, _SLICE_ROWS))))
        position += len(chunk)
    if not slices:
        slices.append((0, pa.array([], pa.string())))

    memo: dict[str, NormalizedUrl] = {}
    workers = min(pa.cpu_count(), 8, len(slices))
    parts: list[tuple[pa.Array, pa.Array, pa.Array, pa.Array]] = []
    if workers < 2:
        for offset, piece in slices:
            parts.append(_resolve_rest(piece, offset, _fast_path(piece), overrides, memo))
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            decided = pool.map(_fast_path, [piece for _, piece in slices])
            for (offset, piece), fast in zip(slices, decided, strict=True):
                parts.append(_resolve_rest(piece, offset, fast, overrides, memo))

    names = ["raw", "profile_url", "reject_reason"]
    if with_messages:
        names.append("reject_message")
    columns = [pa.chunked_array([p[k] for p in parts], pa.string()) for k in range(len(names))]
    return pa.Table.from_arrays(columns, names=names)


def _as_string_array(array: pa.Array) -> pa.Array:
    if isinstance(array, pa.DictionaryArray):
        array = array.dictionary_decode()
    if pa.types.is_string(array.type):
        return array
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        return array.cast(pa.string())
    if pa.types.is_null(array.type):
        return array.cast(pa.string())
    raise TypeError(f"expected a string array, got {array.type}")


def _sequence_to_array(values: Sequence[str | None]) -> tuple[pa.Array, dict[int, str]]:
    """Build a string array; remember originals that Arrow cannot hold (surrogates)."""
    items = list(values)
    try:
        return pa.array(items, type=pa.string(), from_pandas=True), {}
    except (UnicodeEncodeError, pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    overrides: dict[int, str] = {}
    cleaned: list[str | None] = []
    for i, item in enumerate(items):
        if isinstance(item, str):
            if _SURROGATE_RE.search(item):
                overrides[i] = item
                item = _SURROGATE_RE.sub("\ufffd", item)
            cleaned.append(item)
        elif item is None or (isinstance(item, float) and math.isnan(item)):
            cleaned.append(None)
        else:
            raise TypeError(f"expected str or None, got {type(item).__name__} at position {i}")
    return pa.array(cleaned, type=pa.string()), overrides


def _resolve_rest(
    piece: pa.Array,
    offset: int,
    fast: tuple[pa.Array, pa.Array, pa.Array, pa.Array],
    overrides: dict[int, str],
    memo: dict[str, NormalizedUrl],
) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """Complete one slice: the scalar rules for every row the fast path left open."""
    fast_ok, profile_url, reject_reason, reject_message = fast
    undecided = pc.invert(pc.or_(fast_ok, pc.is_valid(reject_reason)))
    local = {i - offset: raw for i, raw in overrides.items() if 0 <= i - offset < len(piece)}
    if local:  # values Arrow could not hold: decide them from the original strings
        flags = [False] * len(piece)
        for i in local:
            flags[i] = True
        undecided = pc.or_(undecided, pa.array(flags, pa.bool_()))
    if not pc.any(undecided).as_py():
        return piece, profile_url, reject_reason, reject_message

    rows = piece.filter(undecided)
    if local:
        values = rows.to_pylist()
        for k, i in enumerate(pc.indices_nonzero(undecided).to_pylist()):
            if i in local:
                values[k] = local[i]
        outcomes = [_memo_normalize(v, memo) for v in values]
        take = None
    else:
        distinct = pc.unique(rows)
        outcomes = [_memo_normalize(v, memo) for v in distinct.to_pylist()]
        take = pc.index_in(rows, value_set=distinct)
    filled = []
    for column in (
        [o.canonical for o in outcomes],
        [None if o.reason is None else o.reason.value for o in outcomes],
        [o.message for o in outcomes],
    ):
        array = pa.array(column, pa.string())
        filled.append(array if take is None else array.take(take))
    return (
        piece,
        pc.replace_with_mask(profile_url, undecided, filled[0]),
        pc.replace_with_mask(reject_reason, undecided, filled[1]),
        pc.replace_with_mask(reject_message, undecided, filled[2]),
    )


def _memo_normalize(value: str | None, memo: dict[str, NormalizedUrl]) -> NormalizedUrl:
    if value is None:
        return _EMPTY
    outcome = memo.get(value)
    if outcome is None:
        outcome = memo[value] = normalize_profile_url(value)
    return outcome


def _fast_path(array: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """Decide what Arrow kernels can: ``(fast, profile_url, reject_reason, reject_message)``.

    ``fast`` marks rows with a canonical URL in ``profile_url``; rows with a
    non-null ``reject_reason`` are decided rejects; all other rows are left to the
    scalar function. Decided here: the common well-formed profile URLs, blanks,
    and well-formed LinkedIn URLs of pages that are not profiles (company, school,
    jobs...: frequent in real lists, and their message depends only on the path).
    """
    null_str = pa.nulls(len(array), pa.string())
    # Same order as the scalar function: length of the raw value, then strip.
    length_ok = pc.less_equal(pc.binary_length(array), MAX_URL_LENGTH)
    stripped = pc.utf8_trim(array, characters=_STRIP_CHARS)
    blank = pc.fill_null(pc.and_(length_ok, pc.equal(stripped, "")), True)

    # A DFA pass decides which rows are fast; a second, "one-pass" pattern (cheap in
    # RE2) extracts the slug. It runs on every row because filtering the matches out
    # and scattering the results back costs more than the rows it would skip.
    fast = pc.fill_null(
        pc.and_(length_ok, pc.match_substring_regex(stripped, _FAST_PATTERN)), False
    )
    slug = pc.struct_field(pc.extract_regex(stripped, pattern=_FAST_SLUG_PATTERN), "slug")
    slug_length = pc.utf8_length(slug)
    slug_ok = pc.and_(
        pc.greater_equal(slug_length, MIN_SLUG_LENGTH),
        pc.less_equal(slug_length, MAX_SLUG_LENGTH),
    )
    fast = pc.and_(fast, pc.fill_null(slug_ok, False))  # too short or long: scalar decides
    # _MEMBER_ID_RE on a slug already known to be [A-Za-z0-9_-]+: prefix and length.
    is_member = pc.and_(
        pc.or_(pc.starts_with(slug, "ACoAA"), pc.starts_with(slug, "ACwAA")),
        pc.greater(slug_length, 5),
    )
    canonical = pc.binary_join_element_wise(
        CANONICAL_PREFIX, pc.if_else(is_member, slug, pc.ascii_lower(slug)), ""
    )
    profile_url = pc.if_else(fast, canonical, null_str)

    reject_reason = pc.if_else(blank, RejectReason.EMPTY.value, null_str)
    reject_message = pc.if_else(blank, _EMPTY_MESSAGE, null_str)

    # LinkedIn pages that are not profiles, among the rows still undecided.
    rest = pc.and_(pc.and_(pc.invert(fast), pc.invert(blank)), length_ok)
    rest_values = stripped.filter(rest)
    matches = pc.match_substring_regex(rest_values, _FAST_NOT_PROFILE_PATTERN)
    first = pc.struct_field(
        pc.extract_regex(rest_values, pattern=_FAST_FIRST_SEGMENT_PATTERN), "first"
    )
    first = pc.if_else(matches, pc.ascii_lower(first), None)
    first = pc.if_else(pc.is_in(first, value_set=_FAST_NOT_PROFILE_EXCLUDED), None, first)
    message = pc.take(
        _FAST_NOT_PROFILE_MESSAGES, pc.index_in(first, value_set=_FAST_NOT_PROFILE_KEYS)
    )
    message = pc.if_else(pc.is_valid(first), pc.fill_null(message, _GENERIC_NOT_PROFILE), None)
    reason = pc.if_else(pc.is_valid(first), RejectReason.NOT_A_PROFILE.value, None)
    reject_reason = pc.replace_with_mask(reject_reason, rest, reason)
    reject_message = pc.replace_with_mask(reject_message, rest, message)
    return fast, profile_url, reject_reason, reject_message


def fast_path_mask(values: pa.Array) -> pa.Array:
    """Which rows the vectorised path decides without the scalar function.

    The benchmark reports this share and a test guards it: the usual spellings must not fall
    back to Python, or normalising a large list slows down with no wrong answer to show it.
    """
    return _fast_path(values)[0]
