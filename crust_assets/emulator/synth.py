"""Deterministic synthetic contact data for the emulator.

Why deterministic: the pipeline, its tests and the benchmarks all need to know
what the "API" will answer for a profile without storing anything, and a
restarted emulator must never hand out different data for the same person.
Every value is therefore derived from a BLAKE2b hash of the profile's key
(never Python's salted ``hash()`` and never ``random``, whose algorithms may
change between Python versions), so the same URL gets the same contacts in
every process, on every machine, forever.

Rough fill rates over many profiles (close to what a real contact provider
returns for a typical B2B list):

* about 22 % of profiles are not found at all (``internal_id`` null, no data);
* business email on about 60 %, personal emails on about 35 % and phone
  numbers on about 40 % of all profiles;
* sometimes two values in a list; email statuses of all four kinds.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

# The four selectable field names, in the API's own order.
FIELDS: tuple[str, ...] = (
    "business_email",
    "personal_contact_info",
    "personal_contact_info.personal_emails",
    "personal_contact_info.phone_numbers",
)

# Leaf fields: what is actually delivered (and billed) per record.
BUSINESS_EMAIL = "business_email"
PERSONAL_EMAILS = "personal_contact_info.personal_emails"
PHONE_NUMBERS = "personal_contact_info.phone_numbers"
LEAF_FIELDS: tuple[str, ...] = (BUSINESS_EMAIL, PERSONAL_EMAILS, PHONE_NUMBERS)

# Credits per delivered non-empty leaf field (the published contact-enrich prices).
FIELD_CREDITS: dict[str, int] = {BUSINESS_EMAIL: 1, PERSONAL_EMAILS: 2, PHONE_NUMBERS: 2}

EMAIL_STATUSES: tuple[str, ...] = ("deliverable", "catch_all", "invalid", "unknown")

_FOUND_RATE = 0.78
# Conditional on "found"; chosen so the overall rates land near 60/35/40 %
# once found profiles with no draw are given a business email (see below).
_BUSINESS_RATE = 0.70
_PERSONAL_RATE = 0.45
_PHONE_RATE = 0.51
_SECOND_VALUE_RATE = 0.18

_FIRST_NAMES = (
    "ada", "alex", "amara", "ana", "arjun", "ben", "carla", "chen", "chloe", "daniel",
    "diego", "elena", "emma", "farah", "felix", "grace", "hana", "hugo", "ines", "ivan",
    "jamal", "jana", "jin", "julia", "kai", "karim", "lara", "leo", "lina", "lucas",
    "maya", "mei", "mila", "nadia", "noah", "nora", "olga", "omar", "priya", "quinn",
    "rafael", "rosa", "sam", "sara", "sofia", "tariq", "tom", "uma", "victor", "wei",
    "yara", "yusuf", "zoe", "marta", "paolo", "keiko", "oscar", "helga", "ravi", "lea",
)  # fmt: skip
_LAST_NAMES = (
    "abbott", "ahmed", "alvarez", "bauer", "becker", "chan", "costa", "davies", "diaz",
    "dubois", "evans", "fischer", "garcia", "gupta", "hansen", "herrera", "ito", "jensen",
    "kim", "kowalski", "larsen", "lee", "lopez", "martin", "meyer", "moreau", "nakamura",
    "nguyen", "novak", "okafor", "olsen", "patel", "perez", "petrov", "quinn", "rossi",
    "santos", "schmidt", "silva", "singh", "smith", "suzuki", "tanaka", "taylor", "torres",
    "virtanen", "wagner", "walker", "wang", "weber", "wilson", "yamamoto", "young", "zhang",
)  # fmt: skip
_COMPANY_DOMAINS = (
    "acmecorp.com", "bluepeak.io", "brightlane.co", "cobaltlabs.com", "coralbay.com",
    "datafjord.ai", "driftwood.dev", "emberline.com", "fernhill.io", "foxglove.tech",
    "granitebio.com", "harborview.co", "helixworks.com", "ironbark.io", "junipersoft.com",
    "kestrelhq.com", "lumenfield.ai", "maplestack.com", "meridianpay.com", "nimbusgrid.io",
    "northwind.co", "oakridge-analytics.com", "orbitly.com", "pinecrest.io", "quartzlogic.com",
    "redwoodhealth.com", "saltmarsh.co", "sierraops.com", "solsticeai.com", "tidewater.io",
    "umbrahq.com", "vantagepoint.co", "willowtree-data.com", "zephyrmotors.com",
)  # fmt: skip
_PERSONAL_DOMAINS = (
    "gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com",
    "icloud.com", "proton.me", "gmx.de", "yahoo.co.uk",
)  # fmt: skip
_BUSINESS_STATUS_WEIGHTS = (
    ("deliverable", 0.55),
    ("catch_all", 0.20),
    ("unknown", 0.15),
    ("invalid", 0.10),
)
_PERSONAL_STATUS_WEIGHTS = (
    ("deliverable", 0.60),
    ("unknown", 0.20),
    ("invalid", 0.12),
    ("catch_all", 0.08),
)
_US_AREA_CODES = ("212", "312", "415", "512", "617", "646", "650", "720", "206", "305")

_PROFILE_PATH = re.compile(r"^/in/([^/?#]+)/?$")
_MEMBER_ID = re.compile(r"^ACo[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class SyntheticProfile:
    """Everything the emulator "knows" about one profile, before field selection."""

    key: str
    found: bool
    internal_id: int | None
    business_emails: tuple[dict[str, str], ...]
    personal_emails: tuple[dict[str, str], ...]
    phone_numbers: tuple[str, ...]

    @property
    def is_empty(self) -> bool:
        """True when nothing at all is known (the ~22 % "not found" case)."""
        return not (self.business_emails or self.personal_emails or self.phone_numbers)


class _Draws:
    """Independent uniform draws keyed by a label, all derived from one profile key.

    Each draw hashes ``key|label`` so adding a new draw never shifts the
    values of existing ones (unlike a sequential RNG).
    """

    def __init__(self, key: str) -> None:
        self._key = key.encode("utf-8")

    def unit(self, label: str) -> float:
        digest = hashlib.blake2b(self._key + b"|" + label.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def below(self, label: str, n: int) -> int:
        return min(int(self.unit(label) * n), n - 1)

    def pick(self, label: str, options: Sequence[str]) -> str:
        return options[self.below(label, len(options))]

    def weighted(self, label: str, options: Sequence[tuple[str, float]]) -> str:
        u = self.unit(label) * sum(w for _, w in options)
        for value, weight in options:
            if u < weight:
                return value
            u -= weight
        return options[-1][0]

    def digits(self, label: str, count: int) -> str:
        return "".join(str(self.below(f"{label}:{i}", 10)) for i in range(count))


def profile_key(url: str) -> str:
    """The identity a URL stands for: the ``/in/<slug>`` slug when there is one.

    Vanity slugs are case-insensitive on the real network, so they are
    lower-cased; member-id slugs (``ACoAA...``) are case-sensitive and kept.
    Scheme, host variants, trailing slash, query and fragment do not change
    the person, so they do not change the data either.
    """
    text = url.strip()
    try:
        parts = urlsplit(text if "://" in text else f"https://{text}")
    except ValueError:
        return text
    match = _PROFILE_PATH.match(parts.path)
    if not match:
        return text
    slug = unquote(match.group(1))
    if not _MEMBER_ID.match(slug):
        slug = slug.lower()
    return f"in/{slug}"


def _name_from_slug(slug: str, draws: _Draws) -> tuple[str, str]:
    """Use ``first-last-1234`` style slugs as the name, else draw one."""
    words = [w for w in re.split(r"[-_.]+", slug.lower()) if w.isalpha() and len(w) > 1]
    if len(words) >= 2:
        return words[0], words[1]
    return draws.pick("first", _FIRST_NAMES), draws.pick("last", _LAST_NAMES)


def _business_emails(first: str, last: str, draws: _Draws) -> list[dict[str, str]]:
    domain = draws.pick("domain", _COMPANY_DOMAINS)
    patterns = (f"{first}.{last}", f"{first[0]}{last}", f"{first}", f"{first}{last[0]}")
    local = patterns[draws.below("bpattern", len(patterns))]
    emails = [
        {
            "email": f"{local}@{domain}",
            "status": draws.weighted("bstatus", _BUSINESS_STATUS_WEIGHTS),
        }
    ]
    if draws.unit("bsecond") < _SECOND_VALUE_RATE:
        old_domain = draws.pick("domain2", _COMPANY_DOMAINS)
        if old_domain != domain:
            emails.append(
                {
                    "email": f"{first}.{last}@{old_domain}",
                    "status": draws.weighted("bstatus2", _BUSINESS_STATUS_WEIGHTS),
                }
            )
    return emails


def _personal_emails(first: str, last: str, draws: _Draws) -> list[dict[str, str]]:
    domain = draws.pick("pdomain", _PERSONAL_DOMAINS)
    number = str(10 + draws.below("pnum", 90)) if draws.unit("pnumq") < 0.4 else ""
    emails = [
        {
            "email": f"{first}.{last}{number}@{domain}",
            "status": draws.weighted("pstatus", _PERSONAL_STATUS_WEIGHTS),
        }
    ]
    if draws.unit("psecond") < _SECOND_VALUE_RATE:
        domain2 = draws.pick("pdomain2", _PERSONAL_DOMAINS)
        emails.append(
            {
                "email": f"{first}{last[0]}{draws.digits('pnum2', 2)}@{domain2}",
                "status": draws.weighted("pstatus2", _PERSONAL_STATUS_WEIGHTS),
            }
        )
    return emails


def _phone(draws: _Draws, label: str) -> str:
    """One E.164 number, mostly from ranges reserved for fiction/documentation."""
    country = draws.weighted(
        f"{label}:cc", (("us", 0.55), ("gb", 0.15), ("de", 0.1), ("in", 0.1), ("fr", 0.1))
    )
    if country == "us":  # NANP 555-01XX is reserved for fictional use
        return f"+1{draws.pick(f'{label}:area', _US_AREA_CODES)}55501{draws.digits(label, 2)}"
    if country == "gb":  # Ofcom drama range 07700 900000-900999
        return f"+447700900{draws.digits(label, 3)}"
    if country == "de":
        return f"+49151{draws.digits(label, 8)}"
    if country == "in":
        return f"+919{draws.digits(label, 9)}"
    return f"+336{draws.digits(label, 8)}"


def synthetic_profile(url: str) -> SyntheticProfile:
    """All synthetic contact data for one profile URL, independent of requested fields."""
    key = profile_key(url)
    draws = _Draws(key)
    if draws.unit("found") >= _FOUND_RATE:
        return SyntheticProfile(key, False, None, (), (), ())
    internal_id = (
        100_000
        + int.from_bytes(
            hashlib.blake2b(key.encode("utf-8") + b"|id", digest_size=8).digest(), "big"
        )
        % 2_000_000_000
    )
    slug = key[3:] if key.startswith("in/") else key
    first, last = _name_from_slug(slug, draws)
    has_business = draws.unit("has_business") < _BUSINESS_RATE
    has_personal = draws.unit("has_personal") < _PERSONAL_RATE
    has_phone = draws.unit("has_phone") < _PHONE_RATE
    if not (has_business or has_personal or has_phone):
        # A matched person with no contact at all is rare in practice: give
        # them the most common kind so "not found" stays near 22 %.
        has_business = True
    phones: list[str] = []
    if has_phone:
        phones.append(_phone(draws, "phone1"))
        if draws.unit("phsecond") < _SECOND_VALUE_RATE:
            second = _phone(draws, "phone2")
            if second != phones[0]:
                phones.append(second)
    return SyntheticProfile(
        key=key,
        found=True,
        internal_id=internal_id,
        business_emails=tuple(_business_emails(first, last, draws)) if has_business else (),
        personal_emails=tuple(_personal_emails(first, last, draws)) if has_personal else (),
        phone_numbers=tuple(phones),
    )


def leaf_fields(fields: Iterable[str]) -> frozenset[str]:
    """Expand requested field names to the leaf fields they deliver.

    ``personal_contact_info`` means both sub-fields; unknown names raise
    ``ValueError`` (the API validates before this is called).
    """
    leaves: set[str] = set()
    for field in fields:
        if field == "personal_contact_info":
            leaves.update((PERSONAL_EMAILS, PHONE_NUMBERS))
        elif field in LEAF_FIELDS:
            leaves.add(field)
        else:
            raise ValueError(f"unknown field {field!r}; expected one of {', '.join(FIELDS)}")
    return frozenset(leaves)


def _data(profile: SyntheticProfile, leaves: frozenset[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if BUSINESS_EMAIL in leaves:
        data["business_email"] = [dict(e) for e in profile.business_emails]
    if PERSONAL_EMAILS in leaves or PHONE_NUMBERS in leaves:
        pci: dict[str, Any] = {}
        if PERSONAL_EMAILS in leaves:
            pci["personal_emails"] = [dict(e) for e in profile.personal_emails]
        if PHONE_NUMBERS in leaves:
            pci["phone_numbers"] = list(profile.phone_numbers)
        data["personal_contact_info"] = pci
    return data


def synthetic_contacts(url: str, fields: Iterable[str]) -> dict[str, Any]:
    """The envelope record the emulator delivers for ``url`` with ``fields`` requested.

    ``{"original_identifier": url, "internal_id": int | None, "data": {...}}``
    with only the requested fields in ``data`` (empty lists when nothing was
    found). ``url`` is echoed byte for byte. Pure and deterministic: tests and
    the pipeline can compute expected results without the emulator.
    """
    profile = synthetic_profile(url)
    return {
        "original_identifier": url,
        "internal_id": profile.internal_id,
        "data": _data(profile, leaf_fields(fields)),
    }


def to_flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """Convert an envelope record to the un-enveloped form some clients saw live."""
    flat: dict[str, Any] = {
        "professional_network_url": record["original_identifier"],
        "person_id": record["internal_id"],
    }
    flat.update(record["data"])
    return flat


def _record_data(record: Mapping[str, Any]) -> Mapping[str, Any]:
    """The field part of a record in either form."""
    data = record.get("data")
    return data if isinstance(data, Mapping) else record


def delivered_fields(record: Mapping[str, Any]) -> frozenset[str]:
    """Leaf fields that carry at least one value in a record (envelope or flat)."""
    data = _record_data(record)
    pci = data.get("personal_contact_info") or {}
    found: set[str] = set()
    if data.get("business_email"):
        found.add(BUSINESS_EMAIL)
    if pci.get("personal_emails"):
        found.add(PERSONAL_EMAILS)
    if pci.get("phone_numbers"):
        found.add(PHONE_NUMBERS)
    return frozenset(found)


def record_credits(record: Mapping[str, Any]) -> int:
    """Credits one delivered record costs: only non-empty fields are billed."""
    return sum(FIELD_CREDITS[field] for field in delivered_fields(record))
