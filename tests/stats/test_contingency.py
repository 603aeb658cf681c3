"""Contingency-table tests against scipy, on the real penguins data and edge cases.

References: scipy 1.17 ``stats.chi2_contingency(correction=False)`` (and
``lambda_="log-likelihood"``) and ``stats.contingency.association(method="cramer")``;
mutual information by the direct formula on the raw labels (scikit-learn is not
installed in this environment, so ``mutual_info_score`` is not used).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats
from scipy.stats.contingency import association, crosstab

from spark_explore.errors import InvalidArgumentError
from spark_explore.stats.contingency import chi_square_independence, g_test, mutual_information

RTOL = 1e-9


@pytest.fixture(scope="module", params=[("species", "island"), ("species", "sex")])
def penguin_pair(request, shared_data) -> tuple[list[str], list[str], np.ndarray]:
    a, b = request.param
    table = pq.read_table(shared_data / "real" / "penguins.parquet", columns=[a, b])
    table = table.drop_null()
    x, y = table[a].to_pylist(), table[b].to_pylist()
    return x, y, crosstab(x, y).count


def test_chi_square_equals_scipy_on_penguins(penguin_pair) -> None:
    _, _, counts = penguin_pair
    result = chi_square_independence(counts)
    ref = stats.chi2_contingency(counts, correction=False)
    assert result.statistic == pytest.approx(ref.statistic, rel=RTOL)
    assert result.pvalue == pytest.approx(ref.pvalue, rel=RTOL)
    assert result.df == ref.dof
    np.testing.assert_allclose(result.details["expected"], ref.expected_freq, rtol=RTOL)
    assert result.effect_size == pytest.approx(association(counts, method="cramer"), rel=RTOL)
    assert "bias-uncorrected" in result.effect_size_name
    assert result.n == counts.sum()


def test_g_test_equals_scipy_on_penguins(penguin_pair) -> None:
    _, _, counts = penguin_pair
    result = g_test(counts)
    ref = stats.chi2_contingency(counts, correction=False, lambda_="log-likelihood")
    assert result.statistic == pytest.approx(ref.statistic, rel=RTOL)
    assert result.pvalue == pytest.approx(ref.pvalue, rel=RTOL)
    assert result.df == ref.dof


def _mi_from_labels(x: list[str], y: list[str]) -> tuple[float, float, float]:
    """I(X; Y), H(X), H(Y) in nats straight from the labels."""
    n = len(x)
    pairs, cx, cy = Counter(zip(x, y, strict=True)), Counter(x), Counter(y)
    mi = sum(c / n * math.log(n * c / (cx[a] * cy[b])) for (a, b), c in pairs.items())
    hx = -sum(c / n * math.log(c / n) for c in cx.values())
    hy = -sum(c / n * math.log(c / n) for c in cy.values())
    return mi, hx, hy


def test_mutual_information_equals_direct_formula_on_labels(penguin_pair) -> None:
    x, y, counts = penguin_pair
    result = mutual_information(counts)
    mi, hx, hy = _mi_from_labels(x, y)
    assert result.statistic == pytest.approx(mi, rel=RTOL)
    assert result.details["bits"] == pytest.approx(mi / math.log(2), rel=RTOL)
    assert result.details["entropy_rows"] == pytest.approx(hx, rel=RTOL)
    assert result.details["entropy_columns"] == pytest.approx(hy, rel=RTOL)
    assert result.effect_size == pytest.approx(mi / ((hx + hy) / 2), rel=RTOL)
    assert result.details["nmi_geometric"] == pytest.approx(mi / math.sqrt(hx * hy), rel=RTOL)
    assert result.details["nmi_min"] == pytest.approx(mi / min(hx, hy), rel=RTOL)
    assert result.details["nmi_max"] == pytest.approx(mi / max(hx, hy), rel=RTOL)
    # the G-test is the test of I = 0: G = 2 N I
    assert result.pvalue == pytest.approx(g_test(counts).pvalue, rel=RTOL)
    assert g_test(counts).effect_size == pytest.approx(mi, rel=RTOL)


def test_species_island_is_dependent_species_sex_is_not(penguin_pair) -> None:
    x, y, counts = penguin_pair
    result = chi_square_independence(counts)
    if counts.shape == (3, 3):  # species x island: Chinstrap only on Dream, etc.
        assert result.pvalue < 1e-50 and result.effect_size > 0.6
    else:  # species x sex: balanced within species
        assert result.pvalue > 0.9 and result.effect_size < 0.02
    assert result.warnings == ()


def test_two_by_two_is_uncorrected() -> None:
    counts = np.array([[12, 5], [3, 10]])
    result = chi_square_independence(counts)
    ref = stats.chi2_contingency(counts, correction=False)
    assert result.statistic == pytest.approx(ref.statistic, rel=RTOL)
    assert result.statistic != pytest.approx(stats.chi2_contingency(counts).statistic)
    assert result.effect_size == pytest.approx(association(counts, method="cramer"), rel=RTOL)


@pytest.mark.parametrize("seed", range(5))
def test_random_tables_equal_scipy(seed) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 50, size=(rng.integers(2, 7), rng.integers(2, 7)))
    counts[:, 0] += 1
    counts[0, :] += 1
    for ours, lam in ((chi_square_independence, None), (g_test, "log-likelihood")):
        result = ours(counts)
        ref = stats.chi2_contingency(counts, correction=False, lambda_=lam)
        assert result.statistic == pytest.approx(ref.statistic, rel=RTOL)
        assert result.pvalue == pytest.approx(ref.pvalue, rel=RTOL)


def test_sparse_table_warns_about_expected_counts() -> None:
    counts = np.array([[20, 1, 0], [15, 2, 1], [30, 0, 2]])
    result = chi_square_independence(counts)
    expected = stats.chi2_contingency(counts, correction=False).expected_freq
    assert result.details["share_expected_below_5"] == pytest.approx((expected < 5).mean())
    assert result.details["min_expected"] == pytest.approx(expected.min())
    assert any("expected count < 5" in w for w in result.warnings)
    assert result.statistic == pytest.approx(
        stats.chi2_contingency(counts, correction=False).statistic, rel=RTOL
    )


def test_all_zero_lines_are_removed_and_reported() -> None:
    counts = np.array([[10, 0, 7, 3], [0, 0, 0, 0], [4, 0, 9, 12]])
    result = chi_square_independence(counts)
    reduced = counts[[0, 2]][:, [0, 2, 3]]
    ref = stats.chi2_contingency(reduced, correction=False)
    assert result.statistic == pytest.approx(ref.statistic, rel=RTOL)
    assert result.df == 2
    assert result.details["dropped_rows"] == [1] and result.details["dropped_columns"] == [1]
    assert any("removed" in w for w in result.warnings)
    assert g_test(counts).statistic == pytest.approx(
        stats.chi2_contingency(reduced, correction=False, lambda_="log-likelihood").statistic,
        rel=RTOL,
    )


def test_independent_table_has_zero_information() -> None:
    counts = np.outer([2, 3, 5], [4, 6]) * 10
    result = mutual_information(counts)
    assert result.statistic == pytest.approx(0.0, abs=1e-15)
    assert result.pvalue == pytest.approx(1.0)
    assert chi_square_independence(counts).statistic == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(
    "counts",
    [
        [[5, 7]],
        [[5], [7]],
        [[5, 0], [3, 0]],
        [[0, 0], [0, 9]],
        [[0, 0], [0, 0]],
    ],
)
def test_fewer_than_two_non_empty_rows_or_columns(counts) -> None:
    for test in (chi_square_independence, g_test, mutual_information):
        result = test(np.array(counts))
        assert not result.applicable and "at least 2" in result.reason
        assert result.statistic is None and result.pvalue is None


@pytest.mark.parametrize("counts", [[[1, -2], [3, 4]], [[1, np.nan], [3, 4]], [1, 2, 3]])
def test_bad_tables_raise(counts) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        chi_square_independence(np.array(counts, dtype=float))
    assert err.value.code == "INVALID_ARGUMENT"
