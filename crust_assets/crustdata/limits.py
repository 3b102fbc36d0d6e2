"""What one result part may cost: bytes on the wire, bytes decoded, line length, time, retries.

Why these exist: the API hands us URLs and the object store hands us bytes, and neither is
ours. Without a bound, a gzip of newlines burns minutes of CPU, one giant line fills memory, an
endless body fills the disk and a body trickling one byte at a time never trips a read timeout.
A job holds at most 300 records (a few hundred KiB), so the defaults are generous and still
bounded. Every limit is settable: a client keyword (``DownloadLimits``) or an env var on the
Dagster resource; the name of both is in every error that a limit raises, so the person who
meets it knows what to raise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["LIMIT_SETTINGS", "DownloadLimits", "host_patterns", "limit_text"]

MIB = 1024 * 1024

#: limit field -> (env var of the Dagster resource, unit shown in messages)
LIMIT_SETTINGS: dict[str, tuple[str, str]] = {
    "max_bytes": ("CRUST_DOWNLOAD_MAX_BYTES", "bytes"),
    "max_decompressed_bytes": ("CRUST_DOWNLOAD_MAX_DECOMPRESSED_BYTES", "bytes"),
    "max_line_bytes": ("CRUST_RESULT_MAX_LINE_BYTES", "bytes"),
    "max_lines": ("CRUST_RESULT_MAX_LINES", "lines"),
    "deadline_seconds": ("CRUST_DOWNLOAD_DEADLINE_SECONDS", "s"),
    "part_attempts": ("CRUST_DOWNLOAD_PART_ATTEMPTS", "attempts"),
    "max_redirects": ("CRUST_DOWNLOAD_MAX_REDIRECTS", "redirects"),
}


@dataclass(frozen=True)
class DownloadLimits:
    """Caps on one result part, and how often a part that fails verification is fetched again.

    * ``max_bytes``: bytes read from the wire (compressed); reading stops at the cap.
    * ``max_decompressed_bytes``: bytes after unwrapping gzip (each layer counted).
    * ``max_line_bytes`` / ``max_lines``: one JSONL line, and lines (blank ones too) per part.
    * ``deadline_seconds``: the whole part, all attempts and waits included.
    * ``part_attempts``: downloads of a part that arrives truncated or corrupt (>= 1).
    * ``max_redirects``: redirect hops followed (each one checked like the first URL).
    * ``allowed_hosts``: if not empty, the only hosts downloads may reach: exact names or
      ``*.suffix`` patterns (lower case).
    """

    max_bytes: int = 256 * MIB
    max_decompressed_bytes: int = 1024 * MIB
    max_line_bytes: int = 16 * MIB
    max_lines: int = 1_000_000
    deadline_seconds: float = 300.0
    part_attempts: int = 4
    max_redirects: int = 5
    allowed_hosts: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_decompressed_bytes", "max_line_bytes", "max_lines"):
            if getattr(self, name) < 1:
                raise ValueError(f"DownloadLimits.{name} must be >= 1")
        if self.deadline_seconds <= 0:
            raise ValueError("DownloadLimits.deadline_seconds must be > 0")
        if self.part_attempts < 1:
            raise ValueError("DownloadLimits.part_attempts must be >= 1")
        if self.max_redirects < 0:
            raise ValueError("DownloadLimits.max_redirects must be >= 0")
        object.__setattr__(self, "allowed_hosts", host_patterns(self.allowed_hosts))


def host_patterns(value: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """``"a.com, *.b.com"`` (or a sequence) -> ``("a.com", "*.b.com")``, lower case, no blanks."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    patterns = tuple(item.strip().lower().rstrip(".") for item in items if item.strip())
    for pattern in patterns:
        if "*" in pattern and (not pattern.startswith("*.") or "*" in pattern[2:]):
            raise ValueError(f"download host pattern {pattern!r}: only a leading '*.' is allowed")
    return patterns


def limit_text(limits: DownloadLimits, name: str) -> str:
    """``"max_bytes=1024 bytes (raise it with CRUST_DOWNLOAD_MAX_BYTES or ...)"``."""
    env, unit = LIMIT_SETTINGS[name]
    value = getattr(limits, name)
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    return f"limit {name}={shown} {unit} (raise it with {env} or DownloadLimits({name}=...))"
