"""Error bars for the numbers the chapters compare: proportions and paired differences.

A page that says "the robust model is right more often" on a few hundred images must show how
far the numbers could move with another draw of images. Two intervals cover the book:

* :func:`wilson` -- the Wilson score interval of a proportion k/n (an accuracy, a success
  rate), which unlike the normal approximation stays inside [0, 1] and behaves for k near 0
  or n (Wilson, 1927; Brown, Cai and DasGupta, 2001);
* :func:`mean_interval` -- Student's t interval of a mean, used on *paired* differences
  (the same targets measured under two models), which removes the variation between targets.

A correlation across a few trained models gets its permutation p-value
(:func:`spearman_test`), exact for up to seven models.

Two values are then ordered only where their intervals do not overlap (:func:`order`);
:func:`compare_proportions` does this for two proportions, such as the robust accuracies of
two models, by their Wilson intervals. Each page words the outcome ("above", "stronger",
"measurably closer") itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal, Sequence

import numpy as np
from scipy import stats as _stats

from . import validate
from .declare import Count, Real, Reals, Spec, checked

Confidence = Annotated[float, Real()]  # in (0, 1), checked by _level with its own wording
Proportion = Annotated[float, Real(0, 1)]


def _level(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return confidence


@checked
def wilson(k: Annotated[int, Count(0)], n: Annotated[int, Count(1)],
           confidence: Confidence = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) in [0, 1] for ``k`` successes out of ``n`` trials.

    ``k`` and ``n`` are counts, 0 <= k <= n, n >= 1; for an accuracy ``acc`` measured on
    ``n`` images pass ``round(acc * n)``.
    """
    if k > n:
        raise ValueError(f"k must be a count in [0, n={n}], got {k!r}")
    z = float(_stats.norm.ppf(0.5 + _level(confidence) / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)  # Python floats, for glue and JSON


@checked
def mean_interval(values: Sequence[float], confidence: Confidence = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` (a 1-D sequence or tensor of at least two
    finite numbers) and Student's t interval around it."""
    v = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2:
        raise ValueError(f"values must be a 1-D sequence of at least two numbers, got shape {v.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values must be finite numbers (found NaN or inf)")
    m = float(v.mean())
    half = float(_stats.t.ppf(0.5 + _level(confidence) / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - half, m + half


def _interval(v, name: str, number: bool = True) -> tuple[float, float]:
    """An interval (low, high) with low <= high, or (with ``number``) a number as the
    interval (v, v)."""
    what = "an interval (low, high) or a number" if number else "an interval (low, high)"
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be {what}, got {v!r:.80}")
        lo, hi = (validate.real(e, f"{name}[{i}]", allow_inf=True) for i, e in enumerate(v))
        if lo > hi:
            raise ValueError(f"{name} must be an interval (low, high) with low <= high, got {v!r:.80}")
        return lo, hi
    if not number:
        raise validate.ArgumentTypeError(f"{name} must be {what} of two numbers, got {validate._show(v)}")
    v = validate.real(v, name, allow_inf=True)
    return v, v


class _Interval(Spec):
    """An interval (low, high): a tuple or list of two real numbers (infinite ends allowed),
    low <= high; with ``number`` also a number, as the interval (v, v). Returned as a tuple
    of two floats."""
    def __init__(self, number: bool = False):
        self.number = number

    def check(self, v, name, args, reads, specs):
        return _interval(v, name, self.number)

    def example(self):
        return (0.25, 0.5)


# An interval (low, high), and an interval or a number (the interval (v, v)).
Interval = Annotated[tuple[float, float], _Interval()]
IntervalOrNumber = Annotated[tuple[float, float] | float, _Interval(number=True)]


@checked
def overlap(a: Interval, b: Interval) -> bool:
    """Whether two intervals (low, high) overlap: then the data do not order the two values."""
    return a[0] <= b[1] and b[0] <= a[1]


ORDERS = ("higher", "lower", "tied")


@checked
def order(a: IntervalOrNumber, b: IntervalOrNumber) -> str:
    """How an interval ``a`` = (low, high) lies against ``b`` (an interval, or a number such
    as 0 for an interval of a difference): "higher" when all of ``a`` lies above ``b``,
    "lower" when all of it lies below, "tied" when they :func:`overlap` (touching counts)."""
    if overlap(a, b):
        return "tied"
    return "higher" if a[0] > b[1] else "lower"


@dataclass(frozen=True)
class Comparison:
    """Two proportions compared by their intervals: ``order`` is "higher", "lower" or "tied"
    (the first against the second, see :func:`order`); ``a`` and ``b`` are their intervals
    (low, high), Python floats in [0, 1]."""

    order: str
    a: tuple[float, float]
    b: tuple[float, float]


@checked
def compare_proportions(a: Proportion, b: Proportion, n: Annotated[int, Count(1)],
                        n_b: Annotated[int, Count(1)] | None = None,
                        confidence: Confidence = 0.95) -> Comparison:
    """Compare proportions ``a`` and ``b`` in [0, 1] (accuracies, success rates) measured on
    ``n`` and ``n_b`` trials (``n_b`` defaults to ``n``) by their Wilson intervals.

    Each proportion is turned back into a count, ``round(a * n)``. The order is "higher" or
    "lower" only where the two intervals do not overlap, a test stricter than a test of the
    difference at the same confidence: a verdict in the prose that it grants holds with a
    margin. Returns a :class:`Comparison`.
    """
    n_b = n if n_b is None else n_b
    ci_a, ci_b = wilson(round(a * n), n, confidence), wilson(round(b * n_b), n_b, confidence)
    return Comparison(order(ci_a, ci_b), ci_a, ci_b)


@checked
def spearman_test(x: Annotated[Sequence[float], Reals(min_len=3)],
                  y: Annotated[Sequence[float], Reals(min_len=3)],
                  alternative: Literal["two-sided", "less", "greater"] = "two-sided",
                  n_resamples: Annotated[int, Count(1)] = 9999,
                  seed: Annotated[int, Count(0)] = 0) -> tuple[float, float]:
    """(ρ, p): Spearman's rank correlation of ``x`` and ``y`` (1-D, the same length >= 3)
    and its permutation p-value (scipy.stats.permutation_test over the pairings of x and y).

    With a handful of points (trained models) the asymptotic p-value of ``spearmanr`` is
    meaningless; for up to 7 points every pairing is enumerated (exact test), beyond that
    ``n_resamples`` random pairings from ``seed``. ``alternative``: "two-sided", "less"
    (ρ < 0) or "greater". With n points the smallest one-sided p is 1/n! (1/6 for three
    points): three models cannot establish a correlation at the 5 % level.
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"y must hold one number per x, got {len(b)} for {len(a)}")
    if np.ptp(a) == 0 or np.ptp(b) == 0:  # a constant: no ranking, no evidence
        return float("nan"), 1.0
    rho = lambda u: _stats.spearmanr(u, b)[0]  # noqa: E731
    res = _stats.permutation_test((a,), rho, permutation_type="pairings", alternative=alternative,
                                  n_resamples=n_resamples, rng=np.random.default_rng(seed))
    return float(res.statistic), float(res.pvalue)


VERDICTS = {"agrees": "agrees with the paper", "disagrees": "does not agree with the paper",
            "inconclusive": "is inconclusive at this sample size"}


@checked
def paper_verdict(found: Literal["higher", "lower", "tied"], paper: Literal["higher", "lower"]) -> str:
    """The verdict on a paper's claim that one value is ``paper`` ("higher" or "lower") than
    another, from the order ``found`` ("higher", "lower" or "tied", e.g. the ``order`` of
    :func:`compare_proportions` or :func:`order`): "agrees with the paper" when the intervals
    order the two as the paper does, "does not agree ..." when they order them the other way,
    "is inconclusive ..." when they overlap."""
    key = "inconclusive" if found == "tied" else "agrees" if found == paper else "disagrees"
    return VERDICTS[key]
