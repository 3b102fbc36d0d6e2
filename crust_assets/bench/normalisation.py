"""How fast is profile-URL normalisation on a large mixed list?

Why this exists: ``contact_url_list`` normalises every input row, lists reach
hundreds of thousands of rows, and the vectorised normaliser only earns its
complexity if it is clearly faster than the obvious per-row loop. The target is
>= 5x a straightforward ``urllib.parse`` loop on 1,000,000 mixed URLs. Timing is
kept out of the test suite (machines vary); this function reports the figures.
"""

from __future__ import annotations

import random
import string
import time
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crust_assets.profile_urls import (
    fast_path_mask,
    normalize_profile_url,
    normalize_profile_urls,
)

__all__ = ["MIX", "bench_normalisation", "generate_urls", "naive_normalise"]

_HOSTS = (
    "https://www.linkedin.com",
    "http://www.linkedin.com",
    "https://linkedin.com",
    "www.linkedin.com",
    "linkedin.com",
    "https://uk.linkedin.com",
    "https://de.linkedin.com",
    "https://m.linkedin.com",
    "HTTPS://WWW.LINKEDIN.COM",
)
_SUFFIXES = (
    "",
    "",
    "",
    "/",
    "/",
    "?utm_source=share&utm_medium=member_desktop",
    "/?originalSubdomain=uk",
    "#experience",
    "/details/experience/",
    "/recent-activity/all/",
    "?trk=public_profile_browsemap",
)
_UNICODE_SLUGS = ("josé-garcía", "jos%C3%A9-garc%C3%ADa", "张伟-8a1b2c", "müller-hans", "😀smile")
_INVALID = (
    "",
    "",
    "   ",
    "https://www.linkedin.com/company/{slug}/",
    "https://www.linkedin.com/company/{slug}",
    "https://www.linkedin.com/school/{slug}/",
    "https://www.linkedin.com/pub/{slug}/12/345/678",
    "https://www.linkedin.com/posts/{slug}_activity-7012345678901234567-abcd",
    "https://www.linkedin.com/sales/lead/ACwAA{slug},NAME_SEARCH",
    "https://www.example.com/in/{slug}",
    "https://twitter.com/{slug}",
    "https://www.google.com/url?q=https://www.linkedin.com/in/{slug}",
    "linkedin.com.evil.example/in/{slug}",
    '=HYPERLINK("https://www.linkedin.com/in/{slug}")',
    "{slug}",
    "N/A",
    "javascript:alert(1)",
    "https://www.linkedin.com/in/",
)

#: (share, description) of the generated rows; shares sum to 1.
MIX: tuple[tuple[float, str], ...] = (
    (0.80, "vanity /in/ URLs: 9 scheme/host spellings x 11 suffixes, random mixed-case slugs"),
    (0.06, "member-id /in/ACoAA... URLs in the same spellings"),
    (0.04, "Unicode slugs, raw and percent-encoded (left to the scalar fallback)"),
    (0.04, "quoted, padded or bracketed values, double trailing slashes"),
    (
        0.06,
        "not profiles, mostly distinct: blank, company, school, /pub/, posts, Sales"
        " Navigator, other sites, look-alikes, redirects, formulas, bare words",
    ),
)


def generate_urls(n: int, seed: int = 20261129) -> list[str]:
    """``n`` deterministic values following :data:`MIX`, mostly distinct (like a real list)."""
    rng = random.Random(seed)
    letters = string.ascii_letters + string.digits
    cut1 = MIX[0][0]
    cut2 = cut1 + MIX[1][0]
    cut3 = cut2 + MIX[2][0]
    cut4 = cut3 + MIX[3][0]
    out: list[str] = []
    append = out.append
    for _ in range(n):
        r = rng.random()
        host = rng.choice(_HOSTS)
        suffix = rng.choice(_SUFFIXES)
        if r < cut1:
            slug = "-".join(
                "".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(rng.randint(1, 3))
            )
            append(f"{host}/in/{slug}{suffix}")
        elif r < cut2:
            slug = "ACoAA" + "".join(rng.choices(letters + "_-", k=34))
            append(f"{host}/in/{slug}{suffix}")
        elif r < cut3:
            slug = rng.choice(_UNICODE_SLUGS) + "-" + str(rng.randint(1, 10**6))
            append(f"{host}/in/{slug}{suffix}")
        elif r < cut4:
            slug = "".join(rng.choices(string.ascii_lowercase, k=8)) + str(rng.randint(1, 10**6))
            append(rng.choice(('"{}"', " {} ", "<{}>", "{}//")).format(f"{host}/in/{slug}"))
        else:
            slug = "".join(rng.choices(string.ascii_lowercase, k=8)) + str(rng.randint(1, 10**6))
            append(rng.choice(_INVALID).format(slug=slug))
    return out


def naive_normalise(value: str | None) -> str | None:
    """The obvious per-row version the vectorised path is measured against.

    It is what one would write first with ``urllib.parse``, and it is *less* strict
    than the real rules (no look-alike, slug or percent-encoding checks), so the
    comparison flatters the baseline, not the vectorised code.
    """
    if value is None:
        return None
    s = value.strip().strip("\"'<>").strip()
    if not s:
        return None
    if "://" not in s:
        s = "https://" + s
    parts = urllib.parse.urlsplit(s)
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = (parts.hostname or "").lower()
    if host != "linkedin.com" and not host.endswith(".linkedin.com"):
        return None
    segments = [p for p in parts.path.split("/") if p]
    if len(segments) < 2 or segments[0].lower() != "in":
        return None
    slug = urllib.parse.unquote(segments[1])
    if not slug.startswith("ACoAA"):
        slug = slug.lower()
    return "https://www.linkedin.com/in/" + urllib.parse.quote(slug, safe="-_")


def _best_of(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def bench_normalisation(n: int = 1_000_000, *, repeat: int = 3, seed: int = 20261129) -> dict:
    """Time the vectorised normaliser against the naive loop on ``n`` generated URLs.

    Returns seconds (best of ``repeat``) for: the naive ``urllib.parse`` loop, the
    project's scalar function in a loop (once), and :func:`normalize_profile_urls`
    from a ready Arrow array (as the asset calls it; with Arrow's threads and with
    one thread) and from a Python list (once); the ratios naive / vectorised; the
    share of rows the Arrow fast path turned into URLs; and whether the vectorised
    output equals the scalar one on every row.
    """
    values: Sequence[str] = generate_urls(n, seed)
    array = pa.array(values, pa.string())

    naive_s, naive_out = _best_of(repeat, lambda: [naive_normalise(v) for v in values])
    vector_s, table = _best_of(repeat, lambda: normalize_profile_urls(array))
    threads = pa.cpu_count()
    try:
        pa.set_cpu_count(1)  # the figure for a one-CPU machine
        one_thread_s, _ = _best_of(repeat, lambda: normalize_profile_urls(array))
    finally:
        pa.set_cpu_count(threads)
    from_list_s, _ = _best_of(1, lambda: normalize_profile_urls(values))
    scalar_s, scalar_out = _best_of(1, lambda: [normalize_profile_url(v) for v in values])

    vector_urls = table.column("profile_url").to_pylist()
    vector_reasons = table.column("reject_reason").to_pylist()
    agree = all(
        u == o.canonical and r == (None if o.reason is None else o.reason.value)
        for u, r, o in zip(vector_urls, vector_reasons, scalar_out, strict=True)
    )
    fast_share = pc.mean(fast_path_mask(array).cast(pa.int8())).as_py() or 0.0
    invalid_share = pc.mean(table.column("profile_url").is_null().cast(pa.int8())).as_py() or 0.0
    return {
        "n": n,
        "mix": [{"share": share, "rows": what} for share, what in MIX],
        "valid_share": 1 - invalid_share if n else 0.0,
        "naive_valid_share": sum(u is not None for u in naive_out) / n if n else 0.0,
        "fast_path_share": fast_share,
        "naive_loop_seconds": naive_s,
        "scalar_loop_seconds": scalar_s,
        "vectorised_seconds": vector_s,
        "vectorised_one_thread_seconds": one_thread_s,
        "vectorised_from_list_seconds": from_list_s,
        "arrow_threads": threads,
        "ratio_naive_over_vectorised": naive_s / vector_s if vector_s else float("inf"),
        "ratio_naive_over_vectorised_one_thread": (
            naive_s / one_thread_s if one_thread_s else float("inf")
        ),
        "ratio_scalar_over_vectorised": scalar_s / vector_s if vector_s else float("inf"),
        "vectorised_equals_scalar": agree,
    }


def main() -> None:
    """``python -m crust_assets.bench.normalisation [N]``: print the figures as JSON."""
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(json.dumps(bench_normalisation(n), indent=2))


if __name__ == "__main__":
    main()
