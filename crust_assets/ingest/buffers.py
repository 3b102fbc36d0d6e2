"""Arrow values of the fast path built from, and read back as, their buffers.

Why: pyarrow imports pandas (about 0.25 s, as long as the rest of the command's start-up) the
first time `pa.scalar`, `pa.array`, `Array.to_numpy` or a compute function given a Python value
asks whether a value is a pandas object or needs pandas' types. The fast path needs only a few
constants, two arrays made from numpy and three read back into numpy; built from and read as
their buffers, they are the same values, and `crust-assets ingest` never loads pandas. Compute
functions given only Arrow arrays and scalars ask nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa

__all__ = [
    "boolean",
    "booleans",
    "booleans_to_numpy",
    "integer",
    "integers",
    "integers_to_numpy",
    "string",
    "strings",
    "timestamp",
]

_INT64 = pa.int64()
_NUMPY_INTEGERS = {pa.int32(): np.int32, _INT64: np.int64}
_NUMPY_TYPES = {**_NUMPY_INTEGERS, pa.int8(): np.int8, pa.int16(): np.int16}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)
_UNITS = {"s": timedelta(seconds=1), "ms": timedelta(milliseconds=1), "us": _MICROSECOND}


def _bitmap(flags: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(np.asarray(flags, dtype=bool), bitorder="little"))


def integers(
    values: np.ndarray, type_: pa.DataType = _INT64, valid: np.ndarray | None = None
) -> pa.Array:
    """An int32/int64 array of `values`; null where `valid` is False."""
    data = np.ascontiguousarray(values, dtype=_NUMPY_INTEGERS[type_])
    validity = None if valid is None else _bitmap(valid)
    nulls = 0 if valid is None else -1  # -1: counted by Arrow
    return pa.Array.from_buffers(type_, len(data), [validity, pa.py_buffer(data)], nulls)


def integer(value: int, type_: pa.DataType = _INT64) -> pa.Scalar:
    return integers(np.array([value]), type_)[0]


def booleans(flags: np.ndarray) -> pa.Array:
    """A boolean array of `flags`, with no nulls."""
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, _bitmap(flags)], 0)


def boolean(value: bool) -> pa.Scalar:
    return booleans(np.array([value]))[0]


def string(value: str) -> pa.Scalar:
    data = value.encode("utf-8")
    offsets = np.array([0, len(data)], dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(pa.string(), 1, buffers, 0)[0]


def strings(values: Sequence[str]) -> pa.Array:
    """A string array of `values` (no nulls)."""
    encoded = [value.encode("utf-8") for value in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.large_string(), len(encoded), buffers, 0).cast(pa.string())


def timestamp(value: datetime | None, type_: pa.TimestampType) -> pa.Scalar:
    """`pa.scalar(value, type_)` for a timestamp type in s, ms or us: a naive `value` is UTC."""
    if value is None:
        return pa.nulls(1, type_)[0]
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    ticks = (value - _EPOCH) // _UNITS[type_.unit]
    data = pa.py_buffer(np.array([ticks], dtype=np.int64))
    return pa.Array.from_buffers(type_, 1, [None, data], 0)[0]


def integers_to_numpy(array: pa.Array) -> np.ndarray:
    """`array.to_numpy()` of an integer array with no nulls (a read-only view)."""
    _no_nulls(array)
    dtype = _NUMPY_TYPES[array.type]
    if len(array) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=_skip(array))


def booleans_to_numpy(array: pa.Array) -> np.ndarray:
    """`array.to_numpy(zero_copy_only=False)` of a boolean array with no nulls."""
    _no_nulls(array)
    if len(array) == 0:
        return np.empty(0, dtype=bool)
    bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    start = array.offset
    return np.unpackbits(bits, count=start + len(array), bitorder="little")[start:].astype(bool)


def _skip(array: pa.Array) -> int:
    return array.offset * np.dtype(_NUMPY_TYPES[array.type]).itemsize


def _no_nulls(array: pa.Array) -> None:
    if array.null_count:
        raise ValueError(f"{array.null_count} nulls in an array read as numpy without a mask")
