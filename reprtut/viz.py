"""The plotting helpers every chapter uses: image grids, curves, and sliders for the site."""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import uuid
from typing import Annotated, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
import torch

from . import stats
from .declare import Count, Function, Instance, Real, checked

# The declarations (reprtut.declare) check the figure's options: counts, sizes, the interval's
# confidence, flags. What is drawn (images, curves, tables: tensors, numpy arrays, lists, dicts
# or pandas objects) and the text of titles and labels (any string, "" included) are passed to
# matplotlib as they are, undeclared: ``Caption`` carries no Spec.
Caption = Annotated[str, "any text, passed to matplotlib as is"]
Size = Annotated[float, Real(0, low_open=True)]

# One look for every figure of the book, set once here: seaborn's ticks style (no grid over
# images), a palette that colour-blind readers can tell apart, and an opaque white background
# so that figures stay readable on the site's dark theme.
sns.set_theme(context="notebook", style="ticks", palette="colorblind", font_scale=0.85,
              rc={"figure.facecolor": "white", "savefig.facecolor": "white"})


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor in [0, 1] -> (H, W) or (H, W, 3) array for imshow."""
    x = x.detach().float().cpu().clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


@checked
def show_images(x: Annotated[torch.Tensor, "images, (N, C, H, W)"], titles: Sequence[str] | None = None, *,
                ncols: Annotated[int, Count(1)] = 8, size: Size = 1.4, suptitle: Caption | None = None,
                cmap: Caption = "gray"):
    """Images x (N, C, H, W) in [0, 1] in a grid, with an optional title under each."""
    n = len(x)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(to_numpy_image(x[i]), cmap=cmap, vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


@checked
def image_rows(rows: Annotated[Mapping[str, torch.Tensor], Instance(Mapping)],
               titles: Mapping[str, Sequence[str]] | None = None, *, size: Size = 1.4,
               cmap: Caption = "gray", signed: Sequence[str] = ()):
    """One row of images per entry of ``rows`` (label -> (N, C, H, W)), labelled on the left.

    Rows named in ``signed`` hold signed maps (perturbations, gradients): each image is shown
    on a symmetric blue-red scale around 0, summed over channels.
    """
    labels = list(rows)
    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(labels), n, figsize=(size * n, size * len(labels) * 1.15), squeeze=False)
    for r, label in enumerate(labels):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(rows[label]):
                continue
            img = rows[label][c]
            if label in signed:
                m = img.detach().float().cpu().sum(0)
                lim = m.abs().max().item() or 1.0
                ax.imshow(m.numpy(), cmap="seismic", vmin=-lim, vmax=lim)
            else:
                ax.imshow(to_numpy_image(img), cmap=cmap, vmin=0, vmax=1)
            if titles is not None and label in titles:
                ax.set_title(titles[label][c], fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=9)
    fig.tight_layout()
    return fig


@checked
def plot_curves(x: Sequence[float], curves: Mapping[str, Sequence[float]], *, xlabel: Caption = "",
                ylabel: Caption = "", title: Caption | None = None, ax=None,
                styles: Mapping[str, str] | None = None,
                n: Annotated[int, Count(1)] | None = None,
                confidence: Annotated[float, Real(0, 1, low_open=True, high_open=True)] = 0.95):
    """Several named curves over the same x values on one axis; returns the axis.

    With ``n``, each curve is a proportion measured on ``n`` examples (an accuracy in [0, 1])
    and is drawn with its Wilson interval at ``confidence`` as a band of the curve's colour.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, ys in curves.items():
        line, = ax.plot(x, ys, (styles or {}).get(label, "o-"), label=label, markersize=4)
        if n is not None:
            lo, hi = zip(*(stats.wilson(round(float(v) * n), n, confidence) for v in ys))
            ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


@checked
def heatmap(table: Mapping[str, Mapping[str, float]], *, fmt: Caption = ".2f", vmin: float | None = 0.0,
            vmax: float | None = 1.0, title: Caption | None = None, cmap: Caption = "viridis", ax=None):
    """A table (row -> column -> value, e.g. attack -> model -> accuracy) as an annotated heatmap.

    Rows and columns keep the mappings' order; a missing entry is left blank. Returns the axis.
    """
    rows = list(table)
    if not rows:
        raise ValueError("table must have at least one row")
    cols = list(dict.fromkeys(c for r in rows for c in table[r]))
    values = np.array([[table[r].get(c, np.nan) for c in cols] for r in rows], dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 1.1 * len(cols), 0.8 + 0.45 * len(rows)))
    sns.heatmap(values, annot=True, fmt=fmt, vmin=vmin, vmax=vmax, cmap=cmap, xticklabels=cols,
                yticklabels=rows, linewidths=0.5, cbar=False, ax=ax, annot_kws={"fontsize": 9})
    ax.tick_params(length=0)
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    if title:
        ax.set_title(title)
    return ax


@checked
def embedding_scatter(z, labels: Sequence[int], kinds: Sequence[str], *, classes: Sequence[str] | None = None,
                      title: Caption | None = None, legend: bool = True, ax=None):
    """A 2-d embedding (N, 2) of representations (t-SNE, PCA) as a scatter: the colour is the
    class (``labels``, N ints, named by ``classes``), the marker the kind of input (``kinds``,
    N strings such as "clean" and "perturbed"). Returns the axis; ``legend=False`` leaves the
    legend to another panel of the same figure."""
    z = np.asarray(z, dtype=float)
    labels = [int(v) for v in (labels.tolist() if hasattr(labels, "tolist") else labels)]
    if z.ndim != 2 or z.shape[1] != 2 or not len(z) == len(labels) == len(kinds):
        raise ValueError(f"z must be (N, 2) with one label and one kind per row, got z "
                         f"{z.shape}, {len(labels)} labels, {len(kinds)} kinds")
    names = [classes[v] if classes else str(v) for v in labels]
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    sns.scatterplot(x=z[:, 0], y=z[:, 1], hue=names, hue_order=list(dict.fromkeys(
                    classes or [str(v) for v in sorted(set(labels))])), style=list(kinds),
                    markers=["o", "X", "s", "^"][:len(set(kinds))], palette="tab10", s=18,
                    alpha=0.8, linewidth=0, legend=legend, ax=ax)
    ax.set(xticks=[], yticks=[], title=title or "")
    if legend:
        ax.legend(fontsize=7, bbox_to_anchor=(1.02, 1), loc="upper left", frameon=False)
    return ax


def plot_history(history: Mapping[str, Sequence[float]], keys: Sequence[str] | None = None, ax=None):
    """Training curves of a :class:`reprtut.train.History` against the epoch."""
    keys = keys or [k for k in history if k.endswith("acc")]
    return plot_curves(history["epoch"], {k: history[k] for k in keys}, xlabel="epoch",
                       ylabel="accuracy" if all(k.endswith("acc") for k in keys) else "", ax=ax)


def _png(fig, dpi: int, colors: int) -> str:
    """A figure as a base64 PNG with a palette of ``colors`` entries (a few kB for a grid)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    img = Image.open(buf).convert("RGB").quantize(colors=colors)
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


@checked
def static_slider(draw: Annotated[Callable[..., "plt.Figure"], Function("a function draw(*values) returning a figure")],
                  params: Annotated[Mapping[str, Sequence], Instance(Mapping)], *,
                  dpi: Annotated[int, Count(1)] = 72, colors: Annotated[int, Count(2, 256)] = 32):
    """A slider per parameter over figures drawn now, for a page read without a kernel.

    ``draw(*values)`` returns a matplotlib figure for one value of each parameter, in the
    order of ``params`` (display name -> the values, in slider order); it is called for every
    combination, and each figure becomes an embedded PNG (``dpi``, ``colors``-entry palette)
    that a few lines of JavaScript swap as the sliders move. An ipywidgets slider needs a live
    kernel to redraw; this one is a static page's version of it. Returns an IPython HTML object.
    """
    if not params or any(len(v) == 0 for v in params.values()):
        raise ValueError(f"params must name at least one parameter, each with values, got {params!r}")
    from IPython.display import HTML

    names, values = list(params), [list(v) for v in params.values()]
    frames = {"-".join(map(str, idx)): _png(draw(*(v[i] for v, i in zip(values, idx))), dpi, colors)
              for idx in itertools.product(*(range(len(v)) for v in values))}
    uid = "slider-" + uuid.uuid4().hex[:8]
    controls = "".join(
        f'<label style="display:block;margin:0.2em 0">{html.escape(n)} '
        f'<input type="range" min="0" max="{len(v) - 1}" value="0" step="1" '
        f'aria-label="{html.escape(n)}" style="vertical-align:middle;width:12em"> '
        f'<output>{html.escape(str(v[0]))}</output></label>' for n, v in zip(names, values))
    first = frames["-".join("0" * len(names))]
    return HTML(
        f'<div class="reprtut-slider" id="{uid}">{controls}'
        f'<img src="data:image/png;base64,{first}" alt="frame" style="max-width:100%;height:auto">'
        f'<script>(function () {{'
        f'const root = document.getElementById("{uid}"), frames = {json.dumps(frames)},'
        f' labels = {json.dumps([[str(x) for x in v] for v in values])};'
        f'const inputs = root.querySelectorAll("input"), img = root.querySelector("img");'
        f'inputs.forEach((input, k) => input.addEventListener("input", () => {{'
        f'input.nextElementSibling.textContent = labels[k][input.value];'
        f'img.src = "data:image/png;base64," + frames[Array.from(inputs, i => i.value).join("-")];'
        f'}}));}})();</script></div>')
