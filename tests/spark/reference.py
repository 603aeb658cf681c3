"""Reference statistics computed with numpy/scipy on in-memory values, for comparison."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import scipy.stats

RTOL = 1e-9


def check_numeric(entry: dict, values: pa.Array) -> None:
    """Assert a numeric column's profile entry equals numpy/scipy on ``values``."""
    nulls = np.asarray(values.is_null())
    x = values.to_numpy(zero_copy_only=False).astype(np.float64)[~nulls]
    finite = x[np.isfinite(x)]
    assert entry["null_count"] == int(nulls.sum())
    assert entry["count"] == len(x)
    assert entry["nan_count"] == int(np.isnan(x).sum())
    assert entry["posinf_count"] == int((x == np.inf).sum())
    assert entry["neginf_count"] == int((x == -np.inf).sum())
    assert entry["finite_count"] == len(finite)
    assert entry["zeros_count"] == int((finite == 0).sum())
    assert entry["negatives_count"] == int((finite < 0).sum())
    if len(finite) == 0:
        assert entry["mean"] is None and "mean" in entry["undefined"]
        return
    assert entry["min"] == finite.min() and entry["max"] == finite.max()
    np.testing.assert_allclose(entry["mean"], np.mean(finite), rtol=RTOL)
    if len(finite) < 2:
        assert entry["std"] is None and "std" in entry["undefined"]
        return
    np.testing.assert_allclose(entry["std"], np.std(finite, ddof=1), rtol=RTOL, atol=1e-300)
    if np.ptp(finite) == 0:
        assert entry["skewness"] is None and "skewness" in entry["undefined"]
        return
    np.testing.assert_allclose(entry["skewness"], scipy.stats.skew(finite), rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(entry["kurtosis"], scipy.stats.kurtosis(finite), rtol=RTOL)
    check_quantiles(entry, finite)
    check_distinct(entry, len(np.unique(x[~np.isnan(x)])) + int(np.isnan(x).any()))


def check_quantiles(entry: dict, finite: np.ndarray) -> None:
    """Each reported quantile's true rank lies within the sketch's rank error of p."""
    eps = entry["quantile_rank_error"]
    ordered = np.sort(finite)
    n = len(ordered)
    for p_text, q in entry["quantiles"].items():
        p = float(p_text)
        below = np.searchsorted(ordered, q, side="left") / n
        at_or_below = np.searchsorted(ordered, q, side="right") / n
        assert below - eps <= p <= at_or_below + eps, (p, q, below, at_or_below, eps)


def check_distinct(entry: dict, true_distinct: int) -> None:
    """The HLL estimate is within three standard errors of the true distinct count."""
    tolerance = 3 * entry["distinct_relative_error"] * true_distinct + 0.5
    assert abs(entry["distinct_estimate"] - true_distinct) <= tolerance
    assert entry["distinct_upper_bound"] <= entry["count"]
    assert entry["distinct_lower_bound"] <= true_distinct + tolerance


def check_string(entry: dict, values: pa.Array, cap: int) -> None:
    """Assert a string column's entry equals Python's own counting."""
    items = [v for v in values.to_pylist() if v is not None]
    assert entry["null_count"] == len(values) - len(items)
    assert entry["count"] == len(items)
    assert entry["empty_count"] == sum(v == "" for v in items)
    assert entry["blank_count"] == sum(v != "" and v.isspace() for v in items)
    counts = Counter(items)
    if items:
        lengths = np.array([len(v) for v in items], dtype=float)
        np.testing.assert_allclose(entry["length"]["mean"], lengths.mean(), rtol=RTOL)
        assert entry["length"]["min"] == lengths.min() and entry["length"]["max"] == lengths.max()
    if len(counts) <= cap:
        assert entry["distinct_count"] == len(counts)
        top = entry["top_values"]
        assert all(counts[t["value"]] == t["count"] and t["exact"] for t in top)
        assert [t["count"] for t in top] == sorted(counts.values(), reverse=True)[: len(top)]
    check_distinct(entry, len(counts))
