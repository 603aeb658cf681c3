"""Univariate results per column and the correlation matrix, from a merged bundle.

Driver-side and Spark-free. Every statistic that is undefined for the data at hand (no
finite values, a constant column, fewer than two values) or that float64 cannot hold (a
central moment of values near its limits) is ``None`` with the reason in the column's
``undefined`` mapping, never 0, NaN or a number produced by rounding noise.

Estimators
----------
``std`` and ``variance`` use ``n - 1``. ``skewness`` is the moment estimator
g1 = m3 / m2**1.5 and ``kurtosis`` the excess moment estimator g2 = m4 / m2**2 - 3, where
m_k are the central moments with divisor n; these equal ``scipy.stats.skew`` and
``scipy.stats.kurtosis`` with their defaults (``bias=True``, ``fisher=True``). See D. N.
Joanes and C. A. Gill, "Comparing measures of sample skewness and kurtosis", The
Statistician 47(1), 1998, pp. 183-189.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from typing import Any

import numpy as np

from spark_explore.columns import BOOLEAN, NUMBER_ROLES, STRING, TEMPORAL, UNSUPPORTED, Leaf
from spark_explore.scan.plan import ScanPlan
from spark_explore.states.bundle import StateBundle

SKEWNESS_ESTIMATOR = "g1 = m3 / m2^1.5 (moment estimator; scipy.stats.skew, bias=True)"
KURTOSIS_ESTIMATOR = (
    "g2 = m4 / m2^2 - 3 (excess, moment estimator; scipy.stats.kurtosis, bias=True)"
)

_EPOCH = dt.datetime(1970, 1, 1)

#: Why the variance and what derives from it are undefined when M2 overflows.
OVERFLOW = "the sum of squared deviations overflows float64 (values near the float64 limits)"
#: ... and when a central moment falls below float64's normal range, losing its precision.
UNDERFLOW = "the {order} central moment underflows float64 (the values' spread is too small)"
_TINY = sys.float_info.min


def column_summaries(bundle: StateBundle, plan: ScanPlan) -> dict[str, dict[str, Any]]:
    """One result mapping per leaf, keyed by the leaf's display name, in table order."""
    table = bundle["table"]
    rows = int(table.rows)
    results: dict[str, dict[str, Any]] = {}
    for leaf in plan.leaves:
        nulls = int(table.nulls[table.slots.index(leaf.slot)])
        entry: dict[str, Any] = {
            "role": leaf.role,
            "spark_type": leaf.spark_type,
            "measure": leaf.measure,
            "rows": rows,
            "count": rows - nulls,
            "null_count": nulls,
        }
        undefined: dict[str, str] = {}
        if leaf.role in NUMBER_ROLES:
            entry.update(_number_summary(bundle, plan, leaf, undefined))
        elif leaf.role == STRING:
            entry.update(_string_summary(bundle, plan, leaf))
        elif leaf.role == BOOLEAN:
            entry.update(_boolean_summary(bundle, leaf))
        elif leaf.role == UNSUPPORTED:
            entry["not_profiled"] = leaf.reason
        if leaf.role != UNSUPPORTED and entry["count"] == 0:
            undefined.setdefault("all", "the column has no non-null values")
        entry["undefined"] = undefined
        results[leaf.name] = entry
    return results


def _number_summary(
    bundle: StateBundle, plan: ScanPlan, leaf: Leaf, undefined: dict[str, str]
) -> dict[str, Any]:
    moments_state = bundle["moments"]
    j = moments_state.slots.index(leaf.slot)
    m = moments_state.moments
    n, mean, m2, m3, m4 = (
        float(m.n[j]),
        float(m.mean[j] + m.mean_lo[j]),
        float(m.m2[j]),
        float(m.m3[j]),
        float(m.m4[j]),
    )
    counts = {name: int(values[j]) for name, values in moments_state.counts.items()}
    out: dict[str, Any] = {
        "nan_count": counts["nan"],
        "posinf_count": counts["posinf"],
        "neginf_count": counts["neginf"],
        "finite_count": int(n),
        "zeros_count": counts["zeros"],
        "negatives_count": counts["negatives"],
    }
    kll = bundle[f"kll/{leaf.slot}"]
    convert = _temporal_converter(leaf) if leaf.role == TEMPORAL else _plain_number
    if n == 0:
        for name in ("mean", "std", "variance", "min", "max", "quantiles", "skewness", "kurtosis"):
            out[name] = None
            undefined[name] = "the column has no finite values"
    else:
        out["min"] = convert(_extreme(moments_state, j, "min"))
        out["max"] = convert(_extreme(moments_state, j, "max"))
        out["quantiles"] = {
            _prob_key(p): convert(q)
            for p, q in zip(plan.config.quantiles, kll.quantiles(list(plan.config.quantiles)))
        }
        out["quantile_rank_error"] = 0.0 if kll.exact else kll.rank_error
        if leaf.role == TEMPORAL:
            out["mean"] = convert(mean)
            for name in ("std", "variance", "skewness", "kurtosis"):
                out[name] = None
                undefined[name] = "not computed for dates and timestamps"
        else:
            out.update(_moment_statistics(n, mean, m2, m3, m4, undefined))
    if leaf.role != TEMPORAL:
        out["skewness_estimator"] = SKEWNESS_ESTIMATOR
        out["kurtosis_estimator"] = KURTOSIS_ESTIMATOR
    hll_key = f"hll/{leaf.slot}"
    if hll_key in bundle:
        count = sum(counts[k] for k in ("nan", "posinf", "neginf")) + int(n)
        out.update(_distinct(bundle[hll_key], count))
    return out


def _moment_statistics(
    n: float, mean: float, m2: float, m3: float, m4: float, undefined: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    values, reasons = moment_statistics(n, mean, m2, m3, m4)
    for name in ("mean", "variance", "std", "skewness", "kurtosis"):
        out[name] = values.get(name)
        if name in reasons:
            undefined[name] = reasons[name]
    return out


def moment_statistics(
    n: float, mean: float, m2: float, m3: float, m4: float
) -> tuple[dict[str, float], dict[str, str]]:
    """Mean, variance, std, skewness and excess kurtosis from a column's count, mean and
    central sums M2..M4 of its finite values; and the reason for each that is undefined.

    The moments of values near the float64 limits overflow (an ``inf`` or ``nan`` central
    sum), and those of values near its smallest numbers underflow: the statistics that
    depend on them are then reported undefined with that reason, not as a wrong number.
    The standardised moments are formed from ``M_k / n`` so that no intermediate power
    overflows where the result does not.
    """
    n, mean, m2, m3, m4 = (float(v) for v in (n, mean, m2, m3, m4))  # no numpy warnings
    values: dict[str, float] = {}
    reasons: dict[str, str] = {}
    if not math.isfinite(mean):  # not from a state's merge; kept for hand-made moments
        reasons["mean"] = "the mean of the finite values overflows float64"
    else:
        values["mean"] = mean
    var = m2 / n if n >= 2 else 0.0
    if n < 2:
        reasons["variance"] = reasons["std"] = "fewer than 2 finite values"
    elif not math.isfinite(m2):
        reasons["variance"] = reasons["std"] = OVERFLOW
    elif 0 < var < _TINY:
        reasons["variance"] = reasons["std"] = UNDERFLOW.format(order="second")
    else:
        values["variance"] = m2 / (n - 1)
        values["std"] = math.sqrt(values["variance"])
    if "variance" in reasons:
        reasons["skewness"] = reasons["kurtosis"] = reasons["variance"]
    elif m2 <= 0:
        reasons["skewness"] = reasons["kurtosis"] = "all finite values are equal (zero variance)"
    else:
        for name, power, central, order in (
            ("skewness", var * math.sqrt(var), m3, "third"),
            ("kurtosis", var * var, m4, "fourth"),
        ):
            if not math.isfinite(central):
                reasons[name] = f"the {order} central moment overflows float64"
            elif power < _TINY:
                reasons[name] = UNDERFLOW.format(order=order)
            else:
                values[name] = central / n / power - (3.0 if name == "kurtosis" else 0.0)
    return values, reasons


def _extreme(moments_state: Any, j: int, which: str) -> Any:
    exact = moments_state.exact_min[j] if which == "min" else moments_state.exact_max[j]
    if exact is not None:
        return exact
    return float(moments_state.fmin[j] if which == "min" else moments_state.fmax[j])


def _plain_number(value: Any) -> Any:
    """JSON-safe number: decimals as exact strings, ints as ints, floats as floats."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, float) or isinstance(value, np.floating):
        return float(value)
    return str(value)


def _temporal_converter(leaf: Leaf) -> Any:
    """Dates (days) and timestamps (microseconds) back to ISO-8601 strings."""

    def convert(value: Any) -> str | None:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return None
        if leaf.temporal_unit == "date":
            return (_EPOCH + dt.timedelta(days=round(value))).date().isoformat()
        moment = _EPOCH + dt.timedelta(microseconds=round(value))
        suffix = "Z" if leaf.temporal_unit == "timestamp" else ""
        return moment.isoformat(timespec="microseconds") + suffix

    return convert


def _prob_key(p: float) -> str:
    return f"{p:g}"


def _distinct(hll: Any, count: int) -> dict[str, Any]:
    """HLL estimate and bounds, none above ``count``: there cannot be more distinct values
    than non-null values, though the sketch's estimate can say so."""
    return {
        "distinct_estimate": min(hll.estimate(), count),
        "distinct_lower_bound": min(hll.lower_bound(2), count),
        "distinct_upper_bound": min(hll.upper_bound(2), count),
        "distinct_relative_error": hll.relative_error,
    }


def _string_summary(bundle: StateBundle, plan: ScanPlan, leaf: Leaf) -> dict[str, Any]:
    state = bundle[f"string/{leaf.slot}"]
    lengths = state.length
    n = float(lengths.n[0])
    out: dict[str, Any] = {
        "empty_count": int(state.empty_count),
        "blank_count": int(state.blank_count),
        "length": {
            "mean": float(lengths.mean[0] + lengths.mean_lo[0]) if n else None,
            "std": math.sqrt(lengths.m2[0] / (n - 1)) if n >= 2 else None,
            "min": state.min_length,
            "max": state.max_length,
        },
    }
    out.update(_distinct(bundle[f"hll/{leaf.slot}"], int(state.count)))
    top = plan.config.top_values
    exact = state.exact_counts()
    if exact is not None:
        out["distinct_count"] = len(exact)
        ranked = sorted(exact.items(), key=lambda item: (-item[1], item[0]))[:top]
        out["top_values"] = [{"value": v, "count": c, "exact": True} for v, c in ranked]
    else:
        frequent = bundle[f"frequent/{leaf.slot}"]
        out["top_values"] = [
            {"value": v, "count": est, "lower_bound": lb, "upper_bound": ub, "exact": False}
            for v, est, lb, ub in frequent.top(top)
        ]
        out["top_values_max_error"] = frequent.max_error
    return out


def _boolean_summary(bundle: StateBundle, leaf: Leaf) -> dict[str, Any]:
    state = bundle["boolean"]
    j = state.slots.index(leaf.slot)
    true, false = int(state.true_counts[j]), int(state.false_counts[j])
    return {
        "true_count": true,
        "false_count": false,
        "distinct_count": int(true > 0) + int(false > 0),
    }


def correlation_summary(bundle: StateBundle, plan: ScanPlan) -> dict[str, Any]:
    """Pearson correlations over pairwise-complete finite rows.

    A coefficient is ``None`` where it is undefined: fewer than 2 common rows, or a column
    that is constant over the common rows.
    """
    state = bundle["comoments"]
    names = [leaf.name for leaf in plan.comoment_leaves]
    r = state.correlation()
    matrix = [[None if math.isnan(v) else float(v) for v in row] for row in r]
    return {
        "method": "pearson",
        "pairs": "pairwise-complete (rows where both values are finite)",
        "columns": names,
        "matrix": matrix,
        "pair_counts": [[int(v) for v in row] for row in state.comoments.n],
        "left_out": [leaf.name for leaf in plan.comoment_left_out],
        "max_columns": plan.config.max_comoment_columns,
    }
