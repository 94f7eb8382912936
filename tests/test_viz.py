"""The plotting helpers: a static slider holds one frame per combination of its parameters,
interval bands enclose their curve, a heatmap shows every entry of its table."""

from __future__ import annotations

import json
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from reprtut import stats, viz  # noqa: E402


def _draw(a, b=0):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.imshow([[a, b]], vmin=0, vmax=3, cmap="gray")
    return fig


def test_static_slider_holds_every_combination():
    open_before = set(plt.get_fignums())  # other tests in this process may have left some open
    html = viz.static_slider(_draw, {"a": [0, 1, 2], "b": [0, 3]}).data
    frames = json.loads(re.search(r"frames = (\{.*?\}),", html).group(1))
    assert sorted(frames) == [f"{i}-{j}" for i in range(3) for j in range(2)]
    assert len(set(frames.values())) == 6  # every frame differs from every other
    assert html.count('type="range"') == 2 and 'max="2"' in html and 'max="1"' in html
    # The drawn figures are closed, not shown again below the slider.
    assert set(plt.get_fignums()) == open_before


@pytest.mark.parametrize("args, kwargs, name", [((42, {"a": [0]}), {}, "draw"),
                                                 ((_draw, {}), {}, "params"),
                                                 ((_draw, {"a": []}), {}, "params"),
                                                 ((_draw, {"a": [0]}), {"colors": 1}, "colors")])
def test_static_slider_names_a_bad_argument(args, kwargs, name):
    with pytest.raises((TypeError, ValueError), match=name):
        viz.static_slider(*args, **kwargs)


def test_bands_are_wilson_intervals_around_the_curve():
    acc = [0.9, 0.5, 0.1]
    ax = viz.plot_curves([0, 1, 2], {"model": acc}, n=50)
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    lo, hi = zip(*(stats.wilson(round(a * 50), 50) for a in acc))
    assert band.min() == pytest.approx(min(lo)) and band.max() == pytest.approx(max(hi))
    with pytest.raises(ValueError, match="n must"):
        viz.plot_curves([0], {"m": [0.5]}, n=0)
    plt.close("all")


def test_heatmap_annotates_every_entry():
    ax = viz.heatmap({"FGSM": {"std": 0.3, "pgd": 0.8}, "PGD": {"std": 0.01, "pgd": 0.7}})
    assert sorted(t.get_text() for t in ax.texts) == ["0.01", "0.30", "0.70", "0.80"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["FGSM", "PGD"]
    plt.close("all")


def test_embedding_scatter_colours_classes_and_marks_kinds():
    z = [[0, 0], [1, 0], [0, 1], [1, 1]]
    ax = viz.embedding_scatter(z, [0, 1, 0, 1], ["clean", "clean", "perturbed", "perturbed"],
                               classes=["zero", "one"])
    points = ax.collections[0]
    colours = [tuple(c) for c in points.get_facecolors()]
    assert colours[0] == colours[2] != colours[1] == colours[3]  # one colour a class
    shapes = [p.vertices.round(3).tobytes() for p in points.get_paths()]
    assert shapes[0] == shapes[1] != shapes[2] == shapes[3]      # one marker a kind
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["zero", "one", "clean", "perturbed"]
    with pytest.raises(ValueError, match="one label and one kind per row"):
        viz.embedding_scatter(z, [0, 1, 0], ["clean"] * 4)
    plt.close("all")
