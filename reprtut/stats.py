"""Error bars for the numbers the chapters compare: proportions and paired differences.

A page that says "the robust model is right more often" on a few hundred images must show how
far the numbers could move with another draw of images. Two intervals cover the book:

* :func:`wilson` -- the Wilson score interval of a proportion k/n (an accuracy, a success
  rate), which unlike the normal approximation stays inside [0, 1] and behaves for k near 0
  or n (Wilson, 1927; Brown, Cai and DasGupta, 2001);
* :func:`mean_interval` -- Student's t interval of a mean, used on *paired* differences
  (the same targets measured under two models), which removes the variation between targets.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from scipy import stats as _stats

from . import validate


def _level(confidence) -> float:
    confidence = validate.real(confidence, "confidence")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return confidence


def wilson(k, n, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) in [0, 1] for ``k`` successes out of ``n`` trials.

    ``k`` and ``n`` are counts, 0 <= k <= n, n >= 1; for an accuracy ``acc`` measured on
    ``n`` images pass ``round(acc * n)``.
    """
    n = validate.count(n, "n", min=1)
    k = validate.count(k, "k", min=0)
    if k > n:
        raise ValueError(f"k must be a count in [0, n={n}], got {k!r}")
    z = float(_stats.norm.ppf(0.5 + _level(confidence) / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)  # Python floats, for glue and JSON


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
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


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether two intervals (low, high) overlap: then the data do not order the two values."""
    return a[0] <= b[1] and b[0] <= a[1]
