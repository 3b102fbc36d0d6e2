"""Parse one line of a result file into a :class:`ResultRecord`.

The vendor documents an envelope form, ``{"original_identifier", "internal_id",
"data": {...}}``; a public client that checked the live API saw a flat form,
``{"professional_network_url", "person_id", "business_email", ...}``. Both map
onto the same record. Values are accepted loosely (bare strings for emails, a
single value for a list) because the docs and observed output disagree, but
anything structurally wrong fails loudly with the batch, part and line number:
silently dropping a row would bill credits for data nobody sees.

Field semantics: a key that is absent -> ``None`` (not requested); a key that is
present with ``null``, ``""`` or ``[]`` -> ``[]`` (requested, nothing found).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import ResultParseError
from .models import ResultRecord

__all__ = ["normalise_result_line", "parse_result_line"]

# Where each form keeps the submitted profile URL and the person id, in order of preference.
_IDENTIFIER_KEYS = (
    "original_identifier",
    "professional_network_url",
    "professional_network_profile_url",
    "profile_url",
)
_PERSON_ID_KEYS = ("internal_id", "person_id", "crustdata_person_id")
_EMAIL_VALUE_KEYS = ("email", "address", "value")
_PHONE_VALUE_KEYS = ("phone_number", "number", "phone", "value")


class _BadValue(Exception):
    """Internal: a value of the wrong shape; converted to ResultParseError with context."""


def parse_result_line(
    line: bytes | str, *, batch_id: str, part: str, line_number: int
) -> ResultRecord:
    """Parse one JSONL line (either record form) into a :class:`ResultRecord`.

    Raises :class:`ResultParseError` naming ``batch_id``, ``part`` and
    ``line_number`` for invalid JSON, a non-object, a record without an
    identifier, or a value of the wrong type. The JSON library's own error is
    not chained (``from None``): its text would quote the line, which is data.
    """
    fields = normalise_result_line(line, batch_id=batch_id, part=part, line_number=line_number)
    # Validating plain dicts is pydantic's fast path (faster than model_construct).
    return ResultRecord.model_validate(fields)


def normalise_result_line(
    line: bytes | str, *, batch_id: str, part: str, line_number: int
) -> dict[str, Any]:
    """The checks and field mapping of :func:`parse_result_line`, as a plain dict.

    Used on its own to validate a whole part cheaply before any record is yielded.
    """

    def fail(reason: str) -> ResultParseError:
        return ResultParseError(
            f"batch {batch_id} {part} line {line_number}: {reason}",
            batch_id=batch_id,
            part=part,
            line_number=line_number,
        )

    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        # ValueError covers json.JSONDecodeError; keep only its position, not the text.
        pos = getattr(exc, "pos", None)
        where = f" at character {pos}" if isinstance(pos, int) else ""
        raise fail(f"not valid JSON{where}") from None
    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object, got {type(obj).__name__}")

    profile_url = _first_str(obj, _IDENTIFIER_KEYS)
    envelope = obj.get("data")
    data: Mapping[str, Any]
    if isinstance(envelope, dict):
        data = envelope  # documented envelope form
        if profile_url is None:
            profile_url = _first_str(envelope, _IDENTIFIER_KEYS)
    elif envelope is None:
        data = obj  # flat form (or an envelope without data: every field then reads None)
    else:
        raise fail(f"'data' is a {type(envelope).__name__}, not an object")
    if profile_url is None:
        raise fail("record has no identifier (expected one of " + ", ".join(_IDENTIFIER_KEYS) + ")")

    try:
        person_id = _person_id(obj, data)
        business = _emails(data, ("business_email", "business_emails"))
        pci = data.get("personal_contact_info", _MISSING)
        if pci is _MISSING:
            # Not nested: accept the leaves at the top of data as well.
            personal = _emails(data, ("personal_emails", "personal_email"))
            phones = _phones(data, ("phone_numbers", "phone_number"))
        elif pci is None or pci == [] or pci == {}:
            # personal_contact_info requested, nothing at all found.
            personal, phones = [], []
        elif isinstance(pci, dict):
            personal = _emails(pci, ("personal_emails", "personal_email"))
            phones = _phones(pci, ("phone_numbers", "phone_number"))
        else:
            raise _BadValue(f"personal_contact_info is a {type(pci).__name__}, not an object")
    except _BadValue as exc:
        raise fail(str(exc)) from None

    return {
        "profile_url": profile_url,
        "person_id": person_id,
        "business_emails": business,
        "personal_emails": personal,
        "phone_numbers": phones,
    }


_MISSING: Any = object()


def _first_str(obj: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _person_id(obj: Mapping[str, Any], data: Mapping[str, Any]) -> int | None:
    for source in (obj, data):
        for key in _PERSON_ID_KEYS:
            if key not in source:
                continue
            value = source[key]
            if value is None or value == "":
                return None
            if isinstance(value, bool):
                raise _BadValue(f"{key} is a boolean")
            if isinstance(value, int):
                return value
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                return int(value.strip())
            raise _BadValue(f"{key} is not an integer")
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _emails(data: Mapping[str, Any], keys: tuple[str, ...]) -> list[dict[str, str | None]] | None:
    key = next((k for k in keys if k in data), None)
    if key is None:
        return None
    out: list[dict[str, str | None]] = []
    for item in _as_list(data[key]):
        if item is None or item == "":
            continue
        if isinstance(item, str):
            out.append({"email": item, "status": None})
        elif isinstance(item, dict):
            address = _first_str(item, _EMAIL_VALUE_KEYS)
            if address is None:
                raise _BadValue(f"{key} entry has no email address")
            status = item.get("status")
            if status is not None and not isinstance(status, str):
                status = str(status)
            out.append({"email": address, "status": status})
        else:
            raise _BadValue(f"{key} entry is a {type(item).__name__}, not an email")
    return out


def _phones(data: Mapping[str, Any], keys: tuple[str, ...]) -> list[str] | None:
    key = next((k for k in keys if k in data), None)
    if key is None:
        return None
    out: list[str] = []
    for item in _as_list(data[key]):
        if item is None or item == "":
            continue
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            out.append(str(item))
        elif isinstance(item, dict) and (number := _first_str(item, _PHONE_VALUE_KEYS)):
            out.append(number)
        else:
            raise _BadValue(f"{key} entry is not a phone number")
    return out
