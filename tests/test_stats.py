"""Error bars (reprtut.stats) against textbook values and scipy, and their argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats as sps

import reprtut as rt


@pytest.mark.parametrize("k, n, want", [
    (0, 10, (0.0, 0.2775)),        # Brown, Cai and DasGupta (2001): the Wilson interval at 0/10
    (5, 10, (0.2366, 0.7634)),
    (10, 10, (0.7225, 1.0)),
    (81, 263, (0.2553, 0.3662)),
])
def test_wilson_matches_textbook_values(k, n, want):
    lo, hi = rt.stats.wilson(k, n)
    assert lo == pytest.approx(want[0], abs=1e-4) and hi == pytest.approx(want[1], abs=1e-4)


def test_intervals_are_python_floats():
    # The pages quote them with glue, whose format specs cannot read "np.float64(0.5)".
    assert all(type(v) is float for v in rt.stats.wilson(3, 10))
    assert all(type(v) is float for v in rt.stats.mean_interval(np.array([0.1, 0.4, 0.3])))


def test_glue_quotes_numpy_and_torch_scalars_as_python_numbers(monkeypatch):
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=True: seen.update({name: value}))
    rt.book.glue("a", np.float64(0.25))
    rt.book.glue("b", torch.tensor(0.5))
    rt.book.glue("c", np.int64(3))
    rt.book.glue("d", "text")
    assert seen == {"a": 0.25, "b": 0.5, "c": 3, "d": "text"}
    assert [type(seen[k]) for k in "abcd"] == [float, float, int, str]


def test_wilson_narrows_with_n_and_contains_the_proportion():
    widths = []
    for n in (10, 100, 1000):
        lo, hi = rt.stats.wilson(3 * n // 10, n)
        assert lo < 0.3 < hi
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    lo90, hi90 = rt.stats.wilson(30, 100, confidence=0.9)
    lo95, hi95 = rt.stats.wilson(30, 100)
    assert lo95 < lo90 and hi90 < hi95


def test_mean_interval_agrees_with_scipy():
    v = torch.tensor([0.3, -0.1, 0.5, 0.2, 0.9, 0.05])
    m, lo, hi = rt.stats.mean_interval(v)
    want = sps.t.interval(0.95, len(v) - 1, loc=v.double().mean().item(), scale=sps.sem(v.numpy()))
    assert m == pytest.approx(v.double().mean().item())
    assert (lo, hi) == pytest.approx(want)
    assert rt.stats.mean_interval([1.0, 1.0, 1.0]) == (1.0, 1.0, 1.0)


def test_overlap():
    assert rt.stats.overlap((0.1, 0.3), (0.25, 0.5)) and rt.stats.overlap((0.2, 0.3), (0.3, 0.4))
    assert not rt.stats.overlap((0.1, 0.2), (0.21, 0.5))


@pytest.mark.parametrize("call, words", [
    (lambda: rt.stats.wilson(11, 10), "k must be a count in [0, n=10]"),
    (lambda: rt.stats.wilson(-1, 10), "k must be an integer >= 0"),
    (lambda: rt.stats.wilson(0.5, 10), "k must be an integer"),
    (lambda: rt.stats.wilson(1, 0), "n must be an integer >= 1"),
    (lambda: rt.stats.wilson(1, 10, confidence=1.0), "confidence must lie strictly between 0 and 1"),
    (lambda: rt.stats.mean_interval([1.0]), "at least two numbers"),
    (lambda: rt.stats.mean_interval(np.ones((2, 2))), "1-D"),
    (lambda: rt.stats.mean_interval([1.0, float("nan")]), "finite"),
])
def test_bad_arguments_are_named(call, words):
    with pytest.raises(ValueError, match=None) as err:
        call()
    assert words in str(err.value), str(err.value)


# ------------------------------------------------------------------ ordering two values

def test_order_reads_intervals_and_numbers():
    assert rt.stats.order((0.3, 0.5), (0.1, 0.2)) == "higher"
    assert rt.stats.order((0.1, 0.2), (0.3, 0.5)) == "lower"
    assert rt.stats.order((0.1, 0.3), (0.2, 0.5)) == "tied"
    assert rt.stats.order((0.2, 0.3), (0.3, 0.4)) == "tied"  # touching intervals overlap
    # an interval of a difference against 0
    assert rt.stats.order((0.01, 0.2), 0.0) == "higher"
    assert rt.stats.order((-0.2, -0.01), 0.0) == "lower"
    assert rt.stats.order((-0.1, 0.1), 0.0) == "tied"


def test_compare_proportions_orders_clearly_different_accuracies():
    c = rt.stats.compare_proportions(0.9, 0.5, 100)
    assert c.order == "higher", c
    assert c.a == rt.stats.wilson(90, 100) and c.b == rt.stats.wilson(50, 100)
    assert rt.stats.compare_proportions(0.5, 0.9, 100).order == "lower"
    # A 2-point difference on 100 images is within the noise; on 100,000 it is not.
    assert rt.stats.compare_proportions(0.52, 0.5, 100).order == "tied"
    assert rt.stats.compare_proportions(0.52, 0.5, 100_000).order == "higher"
    # Different sample sizes: a is measured on 20 images only.
    c = rt.stats.compare_proportions(0.7, 0.5, 20, n_b=1000)
    assert c.order == "tied" and c.a == rt.stats.wilson(14, 20) and c.b == rt.stats.wilson(500, 1000)
    assert all(type(v) is float for v in (*c.a, *c.b))


def test_compare_proportions_is_not_fooled_by_a_wrong_order():
    """A comparison that always said 'tied', or swapped its arguments, fails here."""
    far = [(0.95, 0.4, 50), (0.8, 0.2, 30), (0.99, 0.5, 200)]
    assert all(rt.stats.compare_proportions(a, b, n).order == "higher" for a, b, n in far)
    assert all(rt.stats.compare_proportions(b, a, n).order == "lower" for a, b, n in far)


@pytest.mark.parametrize("call, words", [
    (lambda: rt.stats.compare_proportions(1.5, 0.5, 10), "a must be"),
    (lambda: rt.stats.compare_proportions(0.5, -0.1, 10), "b must be"),
    (lambda: rt.stats.compare_proportions(0.5, 0.5, 0), "n must be an integer >= 1"),
    (lambda: rt.stats.compare_proportions(0.5, 0.5, 10, n_b=0), "n_b must be an integer >= 1"),
    (lambda: rt.stats.compare_proportions(0.5, 0.5, 10, confidence=1.5), "confidence must lie"),
    (lambda: rt.stats.order((0.3, 0.1), 0.0), "a must be an interval (low, high) with low <= high"),
    (lambda: rt.stats.order((0.1, 0.2, 0.3), 0.0), "a must be an interval"),
    (lambda: rt.stats.order((0.1, 0.2), float("nan")), "b must be"),
])
def test_bad_comparisons_are_named(call, words):
    with pytest.raises(ValueError) as err:
        call()
    assert words in str(err.value), str(err.value)


@pytest.mark.parametrize("call, words", [
    (lambda: rt.stats.compare_proportions("0.5", 0.5, 10), "a must be a real number"),
    (lambda: rt.stats.compare_proportions(0.5, 0.5, 2.5), "n must be an integer"),
    (lambda: rt.stats.order("low", 0.0), "a must be a real number"),
])
def test_comparisons_of_the_wrong_type_are_named(call, words):
    with pytest.raises(TypeError) as err:
        call()
    assert words in str(err.value), str(err.value)
