"""Independence of two categorical columns, completed from their contingency counts.

The scan keeps the exact table of counts for each requested column pair (up to the
configured number of categories). Pearson's chi-square test, the likelihood-ratio G-test,
Cramér's V and the mutual information are all functions of that table.

Rows or columns of the table that are entirely zero (a level seen only in rows where the
other column was null, for instance) carry no information; they are removed before the
tests and reported, so that expected counts are never zero.

References
----------
.. [1] K. Pearson, "On the criterion that a given system of deviations from the probable
       in the case of a correlated system of variables is such that it can be reasonably
       supposed to have arisen from random sampling", Philosophical Magazine 50(302), 1900,
       pp. 157-175; R. A. Fisher, "On the interpretation of chi-square from contingency
       tables, and the calculation of P", JRSS 85(1), 1922, pp. 87-94 (the degrees of
       freedom).
.. [2] H. Cramér, *Mathematical Methods of Statistics*, Princeton University Press, 1946,
       p. 282.
.. [3] W. G. Cochran, "Some methods for strengthening the common chi-square tests",
       Biometrics 10(4), 1954, pp. 417-451 (the expected-count rule).
.. [4] S. S. Wilks, "The large-sample distribution of the likelihood ratio for testing
       composite hypotheses", Ann. Math. Statist. 9(1), 1938, pp. 60-62; R. R. Sokal and
       F. J. Rohlf, *Biometry*, 1969 (the G-test).
.. [5] C. E. Shannon, "A mathematical theory of communication", Bell System Technical
       Journal 27, 1948, pp. 379-423, 623-656; A. Strehl and J. Ghosh, "Cluster ensembles",
       JMLR 3, 2002, pp. 583-617 (normalised mutual information).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special, stats

from spark_explore.errors import InvalidArgumentError
from spark_explore.stats.results import EXACT, TestResult, not_applicable

__all__ = ["chi_square_independence", "g_test", "mutual_information"]

_REF_CHI2 = "Pearson (1900), Phil. Mag. 50:157-175; Fisher (1922), JRSS 85:87-94"
_REF_G = "Wilks (1938), Ann. Math. Statist. 9:60-62; Sokal & Rohlf (1969), Biometry"
_REF_MI = "Shannon (1948), BSTJ 27; Strehl & Ghosh (2002), JMLR 3:583-617"


def chi_square_independence(table: np.ndarray) -> TestResult:
    """Pearson's chi-square test of independence and Cramér's V.

    Parameters
    ----------
    table
        ``(r, c)`` matrix of non-negative counts.

    Returns
    -------
    TestResult
        ``statistic`` chi-square with ``(r - 1)(c - 1)`` df (after removing all-zero rows
        and columns), ``effect_size`` Cramér's V. ``details`` holds ``expected`` (list of
        rows), ``share_expected_below_5``, ``min_expected`` and ``dropped_rows`` /
        ``dropped_columns`` (indices of all-zero lines removed). Equal to
        ``scipy.stats.chi2_contingency(table, correction=False)`` and
        ``scipy.stats.contingency.association(table, method="cramer")``.

    Notes
    -----
    H0: row and column classifications are independent, for a multinomial sample of N
    independent rows. ``E_ij = r_i c_j / N``; ``X^2 = sum (O - E)^2 / E`` is
    asymptotically chi-square with ``(r - 1)(c - 1)`` df [1]_. No continuity (Yates)
    correction is applied, also not to 2 x 2 tables. The approximation needs large
    expected counts: following Cochran [3]_, a warning is added when more than 20 % of
    the cells have ``E < 5`` or any has ``E < 1``.

    Cramér's V ``= sqrt(X^2 / (N (min(r, c) - 1)))`` [2]_ is the plain,
    bias-uncorrected estimate; it is biased upwards in small tables with many cells.

    Examples
    --------
    >>> import numpy as np
    >>> res = chi_square_independence(np.array([[12, 5], [3, 10]]))
    >>> round(res.statistic, 4), res.df, round(res.effect_size, 4)
    (6.6516, 1.0, 0.4709)
    """
    obs, dropped = _clean(table)
    if isinstance(obs, str):
        return not_applicable("Pearson chi-square independence", obs, reference=_REF_CHI2)
    total, expected, dof = _expected(obs)
    chi2 = float(((obs - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, dof))
    v = math.sqrt(chi2 / (total * (min(obs.shape) - 1)))
    details: dict[str, Any] = {
        "expected": expected.tolist(),
        **dropped,
        **_expected_caveat(expected),
    }
    return TestResult(
        chi2,
        p,
        "Pearson chi-square independence",
        n=int(total),
        df=float(dof),
        effect_size=v,
        effect_size_name="Cramér's V (bias-uncorrected)",
        method=EXACT,
        reference=_REF_CHI2,
        warnings=_warnings(expected, dropped),
        details=details,
    )


def g_test(table: np.ndarray) -> TestResult:
    """Likelihood-ratio (G) test of independence.

    Parameters
    ----------
    table
        ``(r, c)`` matrix of non-negative counts.

    Returns
    -------
    TestResult
        ``G = 2 sum O ln(O / E)`` with ``(r - 1)(c - 1)`` df; ``effect_size`` is the
        mutual information in nats, ``G / 2N``. Equal to
        ``scipy.stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")``.

    Notes
    -----
    Same null hypothesis and expected-count caveat as
    :func:`chi_square_independence`; G is the likelihood-ratio statistic of the
    independence model against the saturated multinomial, asymptotically chi-square by
    Wilks' theorem [4]_. Cells with ``O = 0`` contribute 0.
    """
    obs, dropped = _clean(table)
    if isinstance(obs, str):
        return not_applicable("G-test of independence", obs, reference=_REF_G)
    total, expected, dof = _expected(obs)
    g = 2.0 * float(special.xlogy(obs, obs / expected).sum())
    return TestResult(
        g,
        float(stats.chi2.sf(g, dof)),
        "G-test of independence",
        n=int(total),
        df=float(dof),
        effect_size=g / (2.0 * total),
        effect_size_name="mutual information (nats)",
        method=EXACT,
        reference=_REF_G,
        warnings=_warnings(expected, dropped),
        details={**dropped, **_expected_caveat(expected)},
    )


def mutual_information(table: np.ndarray) -> TestResult:
    """Mutual information of the two classifications, in nats and bits, and normalised.

    Parameters
    ----------
    table
        ``(r, c)`` matrix of non-negative counts.

    Returns
    -------
    TestResult
        ``statistic`` is the plug-in mutual information ``I(R; C)`` in nats and ``pvalue``
        that of the G-test (``G = 2 N I``), the test of ``I = 0``. ``effect_size`` is the
        normalised MI ``I / ((H_R + H_C) / 2)`` (arithmetic mean, as
        ``sklearn.metrics.normalized_mutual_info_score`` by default). ``details`` holds
        ``nats``, ``bits``, ``entropy_rows``, ``entropy_columns`` (nats) and the
        normalisations ``nmi_arithmetic``, ``nmi_geometric``, ``nmi_min``, ``nmi_max``.

    Notes
    -----
    ``I = sum_ij p_ij ln(p_ij / (p_i. p_.j))`` with ``p = O / N`` [5]_, the plug-in
    (maximum-likelihood) estimate, biased upwards by about ``(r - 1)(c - 1) / 2N`` nats
    under independence. Normalisations divide by a mean of the marginal entropies; each
    lies in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> res = mutual_information(np.array([[12, 5], [3, 10]]))
    >>> round(res.statistic, 4), round(res.details["bits"], 4)
    (0.1158, 0.167)
    """
    obs, dropped = _clean(table)
    if isinstance(obs, str):
        return not_applicable("mutual information", obs, reference=_REF_MI)
    total, expected, dof = _expected(obs)
    p = obs / total
    mi = max(0.0, float(special.xlogy(p, obs / expected).sum()))
    h_r = float(stats.entropy(obs.sum(axis=1)))
    h_c = float(stats.entropy(obs.sum(axis=0)))
    g = 2.0 * total * mi
    norms = {
        "nmi_arithmetic": (h_r + h_c) / 2.0,
        "nmi_geometric": math.sqrt(h_r * h_c),
        "nmi_min": min(h_r, h_c),
        "nmi_max": max(h_r, h_c),
    }
    details: dict[str, Any] = {
        "nats": mi,
        "bits": mi / math.log(2.0),
        "entropy_rows": h_r,
        "entropy_columns": h_c,
        **dropped,
    }
    details.update({k: min(1.0, mi / d) for k, d in norms.items()})
    return TestResult(
        mi,
        float(stats.chi2.sf(g, dof)),
        "mutual information",
        n=int(total),
        df=float(dof),
        effect_size=details["nmi_arithmetic"],
        effect_size_name="normalised mutual information (arithmetic)",
        method=EXACT,
        reference=_REF_MI,
        warnings=_warnings(expected, dropped),
        details=details,
    )


def _clean(table: np.ndarray) -> tuple[np.ndarray | str, dict[str, list[int]]]:
    """The table without all-zero rows and columns, or the reason it is unusable."""
    obs = np.asarray(table, dtype=np.float64)
    if obs.ndim != 2:
        raise InvalidArgumentError(
            f"`table` must be 2-D, got {obs.ndim} dimension(s)",
            code="INVALID_ARGUMENT",
            expected="2-D",
            got=obs.ndim,
        )
    if not np.isfinite(obs).all() or (obs < 0).any():
        raise InvalidArgumentError(
            "`table` must hold finite, non-negative counts", code="INVALID_ARGUMENT"
        )
    rows, cols = obs.sum(axis=1) > 0, obs.sum(axis=0) > 0
    dropped = {
        "dropped_rows": np.flatnonzero(~rows).tolist(),
        "dropped_columns": np.flatnonzero(~cols).tolist(),
    }
    if rows.sum() < 2 or cols.sum() < 2:
        return (
            f"the table has {int(rows.sum())} non-empty row(s) and {int(cols.sum())} "
            "non-empty column(s); at least 2 of each are needed"
        ), dropped
    return obs[np.ix_(rows, cols)], dropped


def _expected(obs: np.ndarray) -> tuple[float, np.ndarray, int]:
    total = float(obs.sum())
    expected = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / total
    return total, expected, (obs.shape[0] - 1) * (obs.shape[1] - 1)


def _expected_caveat(expected: np.ndarray) -> dict[str, float]:
    return {
        "share_expected_below_5": float((expected < 5).mean()),
        "min_expected": float(expected.min()),
    }


def _warnings(expected: np.ndarray, dropped: dict[str, list[int]]) -> tuple[str, ...]:
    out = []
    share = float((expected < 5).mean())
    if share > 0.2 or expected.min() < 1:
        out.append(
            f"{share:.0%} of cells have expected count < 5 (min "
            f"{expected.min():.3g}); the chi-square approximation may be poor "
            "(Cochran 1954: at most 20 % below 5 and none below 1)"
        )
    if dropped["dropped_rows"] or dropped["dropped_columns"]:
        out.append(
            f"all-zero rows {dropped['dropped_rows']} and columns "
            f"{dropped['dropped_columns']} were removed"
        )
    return tuple(out)
