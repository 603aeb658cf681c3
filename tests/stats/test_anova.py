"""ANOVA from per-group and per-cell moments against statsmodels and scipy.

References: statsmodels 0.15 ``anova_lm(ols("y ~ C(a)*C(b)"), typ=2)`` and
``anova_lm(ols("y ~ C(a, Sum)*C(b, Sum)"), typ=3)``; residual sums of squares of nested
``OLS`` fits on the rows (for designs with empty cells, where ``anova_lm``'s Wald tests on
a rank-deficient design are not usable); scipy 1.17 ``stats.f_oneway``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm

from spark_explore.errors import DegenerateDataWarning
from spark_explore.states import _algebra
from spark_explore.stats.anova import CellStatistics, one_way_from_groups, two_way_interaction

RTOL = 1e-9


def _design(
    seed: int,
    levels: tuple[int, int],
    empty: tuple[tuple[int, int], ...] = (),
    offset: float = 1e3,
    interaction: float = 0.3,
) -> pd.DataFrame:
    """Unbalanced data: 1-12 rows per cell, main effects, an interaction and an offset."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(levels[0]):
        for j in range(levels[1]):
            if (i, j) in empty:
                continue
            size = int(rng.integers(1, 13)) if (i + j) % 3 else int(rng.integers(2, 13))
            y = offset + i + 0.5 * j + interaction * i * j + rng.normal(0, 2, size=size)
            rows += [(f"a{i}", f"b{j}", v) for v in y]
    return pd.DataFrame(rows, columns=["a", "b", "y"])


def _cells(frame: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float, float]]:
    """Cell count, mean and M2 as the scan's moment states compute them."""
    out = {}
    for key, group in frame.groupby(["a", "b"])["y"]:
        y = group.to_numpy()[:, None]
        m = _algebra.batch_moments(y, np.ones_like(y, dtype=bool))
        out[key] = (float(m.n[0]), float(m.mean[0] + m.mean_lo[0]), float(m.m2[0]))
    return out


def _assert_table(ours: dict, ref: pd.DataFrame, names: dict[str, str]) -> None:
    for our_name, ref_name in names.items():
        row = ref.loc[ref_name]
        assert ours[our_name]["sum_sq"] == pytest.approx(row["sum_sq"], rel=RTOL), our_name
        assert ours[our_name]["df"] == row["df"], our_name
        if ref_name != "Residual":
            assert ours[our_name]["F"] == pytest.approx(row["F"], rel=RTOL), our_name
            assert ours[our_name]["pvalue"] == pytest.approx(row["PR(>F)"], rel=RTOL), our_name


@pytest.mark.parametrize(
    ("seed", "levels"), [(0, (3, 4)), (1, (2, 2)), (2, (5, 3)), (3, (4, 6)), (4, (2, 7))]
)
def test_type2_and_type3_match_statsmodels_on_unbalanced_designs(seed, levels) -> None:
    frame = _design(seed, levels)
    result = two_way_interaction(_cells(frame))
    type2 = anova_lm(smf.ols("y ~ C(a)*C(b)", frame).fit(), typ=2)
    type3 = anova_lm(smf.ols("y ~ C(a, Sum)*C(b, Sum)", frame).fit(), typ=3)
    _assert_table(
        result.details["type2"],
        type2,
        {"A": "C(a)", "B": "C(b)", "A:B": "C(a):C(b)", "Residual": "Residual"},
    )
    _assert_table(
        result.details["type3"],
        type3,
        {
            "Intercept": "Intercept",
            "A": "C(a, Sum)",
            "B": "C(b, Sum)",
            "A:B": "C(a, Sum):C(b, Sum)",
            "Residual": "Residual",
        },
    )
    assert result.statistic == pytest.approx(type2.loc["C(a):C(b)", "F"], rel=RTOL)
    assert result.pvalue == pytest.approx(type2.loc["C(a):C(b)", "PR(>F)"], rel=RTOL)
    ss_ab, sse = type2.loc["C(a):C(b)", "sum_sq"], type2.loc["Residual", "sum_sq"]
    assert result.effect_size == pytest.approx(ss_ab / (ss_ab + sse), rel=RTOL)
    assert result.df == (type2.loc["C(a):C(b)", "df"], type2.loc["Residual", "df"])
    assert result.n == len(frame) and result.details["empty_cells"] == []


def test_a_strong_interaction_is_found() -> None:
    frame = _design(11, (3, 3), interaction=3.0)
    result = two_way_interaction(_cells(frame), factor_names=("dose", "site"))
    assert result.pvalue < 1e-6 and "dose:site" in result.details["type2"]


def _ssr(formula: str, frame: pd.DataFrame) -> tuple[float, float]:
    fit = smf.ols(formula, frame).fit()
    return fit.ssr, fit.df_resid


@pytest.mark.filterwarnings("ignore:The design matrix is rank-deficient")
@pytest.mark.parametrize(
    ("seed", "levels", "empty"),
    [
        (5, (3, 4), ((0, 1), (2, 2))),
        (6, (4, 4), ((0, 0), (1, 1), (2, 2))),
        (7, (3, 3), ((0, 2), (2, 0))),
    ],
)
def test_empty_cells_type2_from_nested_fits(seed, levels, empty) -> None:
    frame = _design(seed, levels, empty)
    result = two_way_interaction(_cells(frame))
    ssr_full, df_full = _ssr("y ~ C(a)*C(b)", frame)  # pinv: the right projection
    ssr_add, df_add = _ssr("y ~ C(a) + C(b)", frame)
    ssr_a, _ = _ssr("y ~ C(a)", frame)
    ssr_b, _ = _ssr("y ~ C(b)", frame)
    table = result.details["type2"]
    assert table["Residual"]["sum_sq"] == pytest.approx(ssr_full, rel=RTOL)
    assert table["Residual"]["df"] == len(frame) - (levels[0] * levels[1] - len(empty))
    assert table["A:B"]["sum_sq"] == pytest.approx(ssr_add - ssr_full, rel=RTOL)
    assert table["A:B"]["df"] == df_add - table["Residual"]["df"]
    assert table["A"]["sum_sq"] == pytest.approx(ssr_b - ssr_add, rel=RTOL)
    assert table["B"]["sum_sq"] == pytest.approx(ssr_a - ssr_add, rel=RTOL)
    f_ab = (table["A:B"]["sum_sq"] / table["A:B"]["df"]) / (ssr_full / table["Residual"]["df"])
    assert result.statistic == pytest.approx(f_ab, rel=RTOL)
    assert result.pvalue == pytest.approx(
        stats.f.sf(f_ab, table["A:B"]["df"], table["Residual"]["df"]), rel=RTOL
    )
    assert sorted(result.details["empty_cells"]) == sorted((f"a{i}", f"b{j}") for i, j in empty)
    assert result.details["type3"] is None and "empty" in result.details["type3_reason"]
    assert result.warnings and "empty cell" in result.warnings[0]


def test_cell_statistics_from_arrays_and_dropped_levels() -> None:
    frame = _design(8, (3, 3))
    cells = _cells(frame)
    a_levels, b_levels = ("a0", "a1", "a2", "unused"), ("b0", "b1", "b2")
    shape = (4, 3)
    n, mean, m2 = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for (a, b), (count, mu, sq) in cells.items():
        i, j = a_levels.index(a), b_levels.index(b)
        n[i, j], mean[i, j], m2[i, j] = count, mu, sq
    mean[3] = np.nan  # ignored: the level is empty
    result = two_way_interaction(CellStatistics(a_levels, b_levels, n, mean, m2))
    reference = two_way_interaction(cells)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-12)
    assert result.details["dropped_levels"] == [("A", "unused")]


def test_disconnected_design_is_not_applicable() -> None:
    frame = _design(
        9, (4, 4), empty=((0, 2), (0, 3), (1, 2), (1, 3), (2, 0), (2, 1), (3, 0), (3, 1))
    )
    result = two_way_interaction(_cells(frame))
    assert not result.applicable and "not connected" in result.reason
    assert len(result.details["empty_cells"]) == 8


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({("a", "x"): (3, 1.0, 2.0), ("a", "y"): (3, 2.0, 2.0)}, "at least 2"),
        (
            {
                ("a", "x"): (1, 1.0, 0.0),
                ("a", "y"): (1, 2.0, 0.0),
                ("b", "x"): (1, 3.0, 0.0),
                ("b", "y"): (1, 5.0, 0.0),
            },
            "one row",
        ),
        (
            {
                ("a", "x"): (2, 1.0, 0.0),
                ("a", "y"): (2, 2.0, 0.0),
                ("b", "x"): (2, 3.0, 0.0),
                ("b", "y"): (2, 5.0, 0.0),
            },
            "constant",
        ),
        (
            {
                ("a", "x"): (2, 1.0, 1.0),
                ("a", "y"): (2, 2.0, 1.0),
                ("b", "x"): (2, 3.0, 1.0),
                ("b", "y"): (0, 0.0, 0.0),
            },
            "interaction degrees",
        ),
    ],
)
def test_degenerate_designs_are_not_applicable(cells, reason) -> None:
    result = two_way_interaction(cells)
    assert not result.applicable and result.statistic is None and reason in result.reason


# --- one-way -------------------------------------------------------------------------------


def _moments(groups: list[np.ndarray]) -> tuple[list[float], list[float], list[float]]:
    return (
        [len(g) for g in groups],
        [float(np.mean(g)) if len(g) else 0.0 for g in groups],
        [float(((g - g.mean()) ** 2).sum()) if len(g) else 0.0 for g in groups],
    )


def test_one_way_equals_f_oneway_on_iris(shared_data) -> None:
    table = pq.read_table(shared_data / "real" / "iris.parquet").to_pandas()
    for column in ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"):
        groups = [g[column].to_numpy() for _, g in table.groupby("species")]
        result = one_way_from_groups(*_moments(groups))
        ref = stats.f_oneway(*groups)
        assert result.statistic == pytest.approx(ref.statistic, rel=RTOL)
        assert result.pvalue == pytest.approx(ref.pvalue, rel=RTOL)
        values = table[column].to_numpy()
        ss_total = ((values - values.mean()) ** 2).sum()
        assert result.effect_size == pytest.approx(
            result.details["ss_between"] / ss_total, rel=RTOL
        )
        assert result.df == (2.0, 147.0)


@pytest.mark.parametrize("seed", range(5))
def test_one_way_equals_f_oneway_unbalanced(seed) -> None:
    rng = np.random.default_rng(seed)
    groups = [rng.normal(1e6 + 0.3 * i, 1 + i, size=rng.integers(2, 40)) for i in range(6)]
    result = one_way_from_groups(*_moments([*groups, np.array([])]))  # an empty group too
    ref = stats.f_oneway(*groups)
    assert result.statistic == pytest.approx(ref.statistic, rel=RTOL)
    assert result.pvalue == pytest.approx(ref.pvalue, rel=RTOL)
    assert result.details["groups"] == 6


def test_one_way_degenerate_inputs() -> None:
    assert not one_way_from_groups([5], [1.0], [2.0]).applicable
    assert not one_way_from_groups([1, 1], [1.0, 2.0], [0.0, 0.0]).applicable
    constant = one_way_from_groups([3, 4], [2.0, 2.0], [0.0, 0.0])
    assert not constant.applicable and "constant" in constant.reason
    with pytest.warns(DegenerateDataWarning):
        separated = one_way_from_groups([3, 4], [1.0, 2.0], [0.0, 0.0])
    ref = stats.f_oneway([1.0] * 3, [2.0] * 4)
    assert separated.statistic == ref.statistic == math.inf
    assert separated.pvalue == ref.pvalue == 0.0
