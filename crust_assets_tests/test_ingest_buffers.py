"""The fast path's Arrow values built from buffers equal what pyarrow's own constructors give.

`crust_assets.ingest.buffers` exists so `crust-assets ingest` never loads pandas; these values
are compared with `pa.scalar`, `pa.array` and `to_numpy` (which may load pandas here: this
process has it already), including sliced arrays, whose buffers start before their first value.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from crust_assets.ingest import buffers

MICROS_UTC = pa.timestamp("us", tz="UTC")


def same(left: pa.Array | pa.Scalar, right: pa.Array | pa.Scalar) -> bool:
    return left.type == right.type and left.equals(right)


def test_constants_equal_pa_scalar() -> None:
    assert same(buffers.integer(0, pa.int32()), pa.scalar(0, pa.int32()))
    assert same(buffers.integer(-1, pa.int32()), pa.scalar(-1, pa.int32()))
    assert same(buffers.integer(2**40), pa.scalar(2**40, pa.int64()))
    assert same(buffers.boolean(False), pa.scalar(False))
    assert same(buffers.boolean(True), pa.scalar(True))
    for text in ("", "deliverable", "bench-Ω-✓"):
        assert same(buffers.string(text), pa.scalar(text, pa.string()))


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 20, 12, 0, 0, 123456, tzinfo=timezone.utc),
        datetime(2026, 11, 20, 12, 0, 0, 123456),  # naive: UTC, as pa.scalar reads it
        datetime(2026, 11, 20, 12, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(1, 1, 1, tzinfo=timezone.utc),
        None,
    ],
)
@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_timestamps_equal_pa_scalar(value: datetime | None, unit: str) -> None:
    type_ = pa.timestamp(unit, tz="UTC")
    if value is not None and unit != "us":
        value = value.replace(microsecond=0)
    assert same(buffers.timestamp(value, type_), pa.scalar(value, type_))


def test_arrays_equal_pa_array() -> None:
    values = np.array([5, -1, 0, 2**33], dtype=np.int64)
    valid = values >= 0
    assert same(buffers.integers(values), pa.array(values))
    assert same(buffers.integers(values, valid=valid), pa.array(values, mask=~valid))
    assert buffers.integers(values, valid=valid).null_count == 1
    assert same(buffers.integers(values[:3], pa.int32()), pa.array(values[:3], pa.int32()))
    flags = np.array([True, False, True, True, False, False, True, False, True])
    assert same(buffers.booleans(flags), pa.array(flags))
    assert same(buffers.booleans(flags[:0]), pa.array([], pa.bool_()))
    texts = ["https://www.linkedin.com/in/a", "", "ü-ß", "x" * 300]
    assert same(buffers.strings(texts), pa.array(texts, pa.string()))
    assert same(buffers.strings([]), pa.array([], pa.string()))


def test_reading_back_equals_to_numpy_also_for_slices() -> None:
    ints = pa.array(np.arange(-3, 20, dtype=np.int32))
    flags = pc.greater(pa.array(np.arange(23) % 3), 0)
    for start, stop in ((0, 23), (5, 17), (9, 9), (22, 23)):
        part = ints.slice(start, stop - start)
        assert np.array_equal(buffers.integers_to_numpy(part), part.to_numpy())
        assert buffers.integers_to_numpy(part).dtype == np.int32
        bits = flags.slice(start, stop - start)
        read = buffers.booleans_to_numpy(bits)
        assert read.dtype == bool
        assert np.array_equal(read, bits.to_numpy(zero_copy_only=False))


def test_reading_back_refuses_nulls_instead_of_inventing_values() -> None:
    with pytest.raises(ValueError, match="1 nulls"):
        buffers.integers_to_numpy(pa.array([1, None, 3]))
    with pytest.raises(ValueError, match="2 nulls"):
        buffers.booleans_to_numpy(pa.array([None, True, None]))
