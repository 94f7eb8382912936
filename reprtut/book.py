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


def claim(checks: dict, name: str, holds, detail="") -> bool:
    """Check a claim that a page's prose makes, in the way the active profile calls for.

    In the quick profile (the one whose seeds the page's wording was checked at) a claim that
    fails raises AssertionError with ``detail``: the test of the page fails. In the other
    profiles a larger run may overturn it, so it is recorded instead: ``checks[name]`` is
    "holds" or "does not hold" (with ``detail``), for the page to show in its table of checks,
    and the page is built. Returns whether the claim held.
    """
    from .profiles import name as profile_name

    if not isinstance(checks, dict):
        raise TypeError(f"checks must be a dict, got {type(checks).__name__}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    holds = bool(holds)
    if not holds and profile_name() == "quick":
        raise AssertionError(f"{name}: {detail}")
    detail = str(detail)
    short = detail if len(detail) <= 200 else detail[:197] + "..."
    checks[name] = "holds" if holds else f"does not hold ({short})" if detail else "does not hold"
    return holds
