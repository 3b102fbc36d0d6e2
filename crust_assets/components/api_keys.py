"""Two copies of the pipeline must not submit on the same API key: the account's 5-job limit is
the account's, and two submitters would each think they hold all five slots.

The key of a copy is written `{{ env.NAME }}` in its `defs.yaml`; it reaches the resource as
`dg.EnvVar(NAME)`, so Dagster's UI shows the variable's name and never its value. Keys are
compared by an HMAC with a key made fresh in each process, so neither a key nor a stable hash of
one is ever kept, printed or written.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping

import dagster as dg

ENV_TEMPLATE = re.compile(r"^\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
#: A copy with no key talks to the local emulator, with this stand-in for a key.
NO_KEY = ""
_HASH_KEY = secrets.token_bytes(32)


def key_reference(raw: str | None, prefix: str = "") -> str | None:
    """`{{ env.NAME }}` -> `dg.EnvVar(NAME)` (read at run time, shown by name); nothing -> None
    (the emulator). Anything else is refused: a key written in defs.yaml would sit in the file,
    often in git, and in the UI's resource config. The refusal names the copy, not the text."""
    if raw is None or not str(raw).strip():
        return None
    match = ENV_TEMPLATE.match(str(raw).strip())
    if match is None:
        raise ValueError(
            f"crust_assets copy {prefix!r}: api_key must be written "
            '"{{ env.NAME }}", the name of an environment variable that holds the key; a key '
            "written in defs.yaml would be kept in the file and shown in the UI's resource "
            "config. Set the variable and write its name, or leave api_key out for the emulator."
        )
    return dg.EnvVar(match.group(1))


def key_value(reference: str | None) -> str:
    """The key a reference stands for now (NO_KEY for none, or an unset variable)."""
    if reference is None:
        return NO_KEY
    if isinstance(reference, dg.EnvVar):
        return os.environ.get(reference.env_var_name, NO_KEY)
    return reference


def key_fingerprint(value: str) -> str:
    """A keyed hash of a key, comparable within this process only."""
    return hmac.new(_HASH_KEY, value.encode("utf-8"), hashlib.sha256).hexdigest()


def shared_key_error(prefix: str, keys: Mapping[str, str]) -> str | None:
    """Why the copy `prefix` must not load, given every copy's key fingerprint by prefix
    (its own included): the other copies on the same key, or None."""
    mine = keys[prefix]
    others = sorted(p for p, fingerprint in keys.items() if p != prefix and fingerprint == mine)
    if not others:
        return None
    return (
        f"crust_assets copies {', '.join(repr(p) for p in sorted([prefix, *others]))} use the "
        "same Crustdata API key: the account's 5 active jobs are shared, so only one copy may "
        "submit on it. Give each copy its own key (api_key), or keep one copy."
    )


def fingerprints(copies: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """(prefix, raw api_key attribute) pairs -> prefix -> fingerprint of the key now."""
    return {
        prefix: key_fingerprint(key_value(key_reference(raw, prefix))) for prefix, raw in copies
    }
