"""Helpers the protocol modules share: state lookup, warnings capture, Holm's correction,
result entries and number formatting."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from spark_explore.columns import Leaf
from spark_explore.protocols.base import ProtocolContext
from spark_explore.states.moments import MomentsState
from spark_explore.states.reservoir import ReservoirState

logger = logging.getLogger(__name__)

S = TypeVar("S")


def state_of(context: ProtocolContext, key: str, kind: type[S]) -> S:
    """The bundle's state under ``key``, checked to be a ``kind``.

    Raises
    ------
    KeyError
        The bundle has no such state.
    TypeError
        The state is of another kind (a bundle from another plan).
    """
    state = context.bundle[key]
    if not isinstance(state, kind):
        raise TypeError(f"state `{key}` is a {type(state).__name__}, not a {kind.__name__}")
    return state


def sample_column(context: ProtocolContext, slot: str) -> pa.Array:
    """One column of the uniform sample, by slot."""
    return state_of(context, "reservoir", ReservoirState).column(slot)


def quietly(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a statistics function with its warnings caught, and carry their text into the
    result's ``warnings`` (when the result is a dataclass with such a field)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args, **kwargs)
    return with_warnings(result, [str(w.message) for w in caught])


def with_warnings(result: Any, texts: Sequence[str]) -> Any:
    """``result`` with the caught warning texts it does not already state added to its
    ``warnings`` tuple; other results are returned unchanged."""
    if not texts or not dataclasses.is_dataclass(result) or isinstance(result, type):
        return result
    if not hasattr(result, "warnings"):
        return result
    reason = getattr(result, "reason", None)
    known = [*result.warnings, *([reason] if reason else [])]
    extra: list[str] = []
    for text in texts:
        if text in extra or any(k and k in text for k in known):
            continue
        extra.append(text)
    if not extra:
        return result
    return dataclasses.replace(result, warnings=tuple(result.warnings) + tuple(extra))


def holm_adjust(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979, Scand. J. Statist. 6:65-70).

    The i-th smallest of m p-values becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``;
    rejecting where the adjusted value is below alpha controls the family-wise error rate.
    """
    p = np.asarray(pvalues, dtype=np.float64).reshape(-1)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def apply_holm(tests: Sequence[dict[str, Any]]) -> None:
    """Add ``pvalue_holm`` to every test dictionary that has a p-value (in place), Holm's
    correction being taken over all of them together."""
    with_p = [t for t in tests if t.get("pvalue") is not None]
    for test, adjusted in zip(with_p, holm_adjust([t["pvalue"] for t in with_p]), strict=True):
        test["pvalue_holm"] = float(adjusted)


def not_applicable_entry(reason: str) -> dict[str, Any]:
    """A subject's entry when nothing can be computed for it."""
    return {"applicable": False, "reason": reason}


def failure_entry(subject: str, exc: BaseException) -> dict[str, Any]:
    """A subject's entry when its computation failed: reported, not raised, and logged in
    one line (with the traceback when this logger is at DEBUG level, as ``--debug`` sets)."""
    logger.warning(
        "protocol step failed for %s: %s: %s",
        subject,
        type(exc).__name__,
        exc,
        exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None,
    )
    return not_applicable_entry(f"failed: {type(exc).__name__}: {exc}")


def format_p(p: float | None) -> str:
    """A p-value for a sentence: ``"p = 0.0031"``, or ``"p < 1e-300"`` once it underflows."""
    if p is None:
        return "p n/a"
    return "p < 1e-300" if p < 1e-300 else f"p = {p:.2g}"


def format_share(share: float) -> str:
    """A share as a percentage for a sentence."""
    return f"{100 * share:.2g} %" if 0 < share < 0.001 else f"{100 * share:.1f} %"


def json_value(value: Any) -> Any:
    """A sample value as JSON: finite floats, ints, strings, bools, ISO dates, decimal text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def sample_rows(context: ProtocolContext, indices: Sequence[int]) -> list[dict[str, Any]]:
    """Whole sample rows by position, their values keyed by column name."""
    sample = context.sample()
    if not indices or sample.num_columns == 0:
        return []
    names = {leaf.slot: leaf.name for leaf in context.plan.leaves}
    taken = sample.take(pa.array(list(indices), type=pa.int64())).to_pylist()
    return [
        {names[slot]: json_value(v) for slot, v in row.items() if slot in names} for row in taken
    ]


def sketch_error(kll: Any, *, double_sided: bool = False) -> float:
    """Rank error of a KLL state: 0 while the sketch still holds every value exactly.

    The single-sided error bounds a rank (the share below a point); the double-sided one,
    the library's bound for its PMF queries, bounds the share between two points.
    """
    if not kll.sketch.is_estimation_mode():
        return 0.0
    return float(kll.sketch.normalized_rank_error(double_sided))


def exact_moments(context: ProtocolContext, leaf: Leaf) -> tuple[float, float, float, float, float]:
    """``n, mean, M2, M3, M4`` of a numeric leaf's finite values (exact aggregates)."""
    state = state_of(context, "moments", MomentsState)
    j = state.column_index(leaf.slot)
    m = state.moments
    return (
        float(m.n[j]),
        float(m.mean[j] + m.mean_lo[j]),
        float(m.m2[j]),
        float(m.m3[j]),
        float(m.m4[j]),
    )


# ---------------------------------------------------------------------------------------
# The protocol
# ---------------------------------------------------------------------------------------
