"""Helpers for the book's pages: numbers computed by a chapter, quoted in its prose."""

from __future__ import annotations

import numpy as np
import torch


def glue(name: str, value, display: bool = False) -> None:
    """Make ``value`` available to the page's prose as ``{glue:text}`name``` (MyST-NB).

    Outside a Jupyter Book build (Colab, a plain Jupyter session) MyST-NB may be absent;
    then nothing is recorded. Returns None, so a cell ending in a glue call shows nothing.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    # numpy and torch scalars print as "np.float64(0.5)" / "tensor(0.5)", which the prose's
    # format specs (":.1%") cannot read: quote them as the Python numbers they hold.
    if isinstance(value, np.generic) or (torch.is_tensor(value) and value.numel() == 1):
        value = value.item()
    _glue(name, value, display=display)


def table(rows, headers):
    """A Markdown table (rendered on the site and in Jupyter) from rows of cells."""
    from IPython.display import Markdown

    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return Markdown("\n".join(lines))
