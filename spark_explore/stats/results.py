"""TestResult: the outcome of one statistical test, as every protocol reports it.

A result leads with ``statistic`` and ``pvalue`` (so ``stat, p = result`` works) and says
how it was computed: from exact aggregates of the whole table, from the quantile sketch, or
from the uniform sample. It never carries only a decision; verdicts are made by the
protocols, which weigh effect sizes, because with millions of rows every p-value is tiny.
A test that cannot be carried out returns :func:`not_applicable` with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

EXACT = "exact-from-aggregates"
SKETCH = "sketch"
SAMPLE = "reservoir-sample"


@dataclass(frozen=True)
class TestResult:
    """One test's outcome.

    Parameters
    ----------
    statistic, pvalue
        The test statistic and its p-value (None when the test has none, or is not
        applicable).
    test
        Name of the test, e.g. ``"Bartlett"``.
    n
        Number of observations the test used.
    df
        Degrees of freedom, a number or a tuple for F-like statistics.
    effect_size, effect_size_name
        An effect size and what it is (e.g. ``"largest/smallest variance ratio"``).
    method
        :data:`EXACT`, :data:`SKETCH` or :data:`SAMPLE`.
    approximate
        True when the statistic itself is approximated (sketch or sample based).
    error_bound
        For sketch-based statistics, the bound on the approximation.
    reference
        The method's original reference.
    applicable
        False when the test could not be carried out; ``reason`` says why.
    warnings
        Caveats (small expected counts, sample size limits ...).
    details
        Further named values (group variances, cut-offs ...).
    """

    __test__ = False  # not a pytest test class

    statistic: float | None
    pvalue: float | None
    test: str
    n: int | None = None
    df: float | tuple[float, ...] | None = None
    effect_size: float | None = None
    effect_size_name: str | None = None
    method: str = EXACT
    approximate: bool = False
    error_bound: float | None = None
    reference: str = ""
    applicable: bool = True
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[float | None]:
        return iter((self.statistic, self.pvalue))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        if isinstance(self.df, tuple):
            data["df"] = list(self.df)
        return _finite(data)


def not_applicable(
    test: str, reason: str, *, n: int | None = None, method: str = EXACT, reference: str = ""
) -> TestResult:
    """A result for a test that cannot be carried out on these data."""
    return TestResult(
        None, None, test, n=n, method=method, applicable=False, reason=reason, reference=reference
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
