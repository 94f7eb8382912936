"""The plotting helpers every chapter uses: image grids and curves."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_numpy_image(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) tensor in [0, 1] -> (H, W) or (H, W, 3) array for imshow."""
    x = x.detach().float().cpu().clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def show_images(x: torch.Tensor, titles: Sequence[str] | None = None, *, ncols: int = 8,
                size: float = 1.4, suptitle: str | None = None, cmap: str = "gray"):
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


def image_rows(rows: Mapping[str, torch.Tensor], titles: Mapping[str, Sequence[str]] | None = None,
               *, size: float = 1.4, cmap: str = "gray", signed: Sequence[str] = ()):
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


def plot_curves(x: Sequence[float], curves: Mapping[str, Sequence[float]], *, xlabel: str = "",
                ylabel: str = "", title: str | None = None, ax=None, styles: Mapping[str, str] | None = None):
    """Several named curves over the same x values on one axis; returns the axis."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for label, ys in curves.items():
        ax.plot(x, ys, (styles or {}).get(label, "o-"), label=label, markersize=4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_history(history: Mapping[str, Sequence[float]], keys: Sequence[str] | None = None, ax=None):
    """Training curves of a :class:`reprtut.train.History` against the epoch."""
    keys = keys or [k for k in history if k.endswith("acc")]
    return plot_curves(history["epoch"], {k: history[k] for k in keys}, xlabel="epoch",
                       ylabel="accuracy" if all(k.endswith("acc") for k in keys) else "", ax=ax)
