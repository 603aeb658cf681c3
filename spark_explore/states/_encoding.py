"""Distinct values of an integer array in one hash pass, with where each first appears; the
non-null mask of an Arrow array."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def first_occurrences(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct values of a 1-d integer array in order of first appearance.

    Returns
    -------
    distinct, first, inverse
        The distinct values; the index of each one's first occurrence (increasing); and
        for every element the index of its value in ``distinct``.

    Notes
    -----
    Arrow's ``dictionary_encode`` hashes the values in one pass and numbers them in order
    of first appearance, so a value first appears exactly where the running maximum of
    the codes grows; ``np.unique`` would sort instead. Should the numbering ever differ,
    the first occurrences are found by ``np.minimum.at``.
    """
    encoded = pc.dictionary_encode(pa.array(values))
    inverse = encoded.indices.to_numpy(zero_copy_only=False).astype(np.intp)
    distinct = encoded.dictionary.to_numpy(zero_copy_only=False)
    if len(inverse) == 0:
        return distinct, np.zeros(0, dtype=np.intp), inverse
    running = np.maximum.accumulate(inverse)
    starts = np.ones(len(inverse), dtype=bool)
    starts[1:] = running[1:] > running[:-1]
    first = np.flatnonzero(starts)
    if len(first) != len(distinct) or np.any(inverse[first] != np.arange(len(first))):
        first = np.full(len(distinct), len(inverse), dtype=np.intp)
        np.minimum.at(first, inverse, np.arange(len(inverse)))
        order = np.argsort(first)
        first, distinct = first[order], distinct[order]
        inverse = np.argsort(order)[inverse]
    return distinct, first, inverse


def valid_mask(array: pa.Array) -> np.ndarray:
    """Boolean mask of an Arrow array's non-null entries, unpacked from its validity bitmap
    where it has one (``Array.is_valid`` builds a bitmap first, then numpy unpacks it)."""
    bitmap = array.buffers()[0] if array.type.num_buffers > 1 else None
    if bitmap is None or pa.types.is_dictionary(array.type) or not array.null_count:
        return np.asarray(array.is_valid())
    bits = np.frombuffer(bitmap, dtype=np.uint8)
    unpacked = np.unpackbits(bits, count=array.offset + len(array), bitorder="little")
    return unpacked[array.offset :].view(bool)
