"""Helpers for the book's pages: numbers computed by a chapter, quoted in its prose."""

from __future__ import annotations

import re
from typing import Annotated, Sequence

import numpy as np
import torch

from . import validate
from .declare import Instance, checked

_NAME = re.compile(r"[^\s`{}]+")  # what {glue:text}`name` can name: no spaces, backticks or braces


def _quotable(value, name: str = "value"):
    """A value the prose can quote: a number (numpy and torch scalars as the Python numbers
    they hold), a string, or anything MyST-NB displays (a figure, a table); a tensor or array
    of several numbers, or None, is refused (the prose quotes one number at a time)."""
    if isinstance(value, np.generic) or (torch.is_tensor(value) and value.numel() == 1) or \
            (isinstance(value, np.ndarray) and value.size == 1):
        return value.item()
    if torch.is_tensor(value) or isinstance(value, np.ndarray) or value is None:
        raise validate.ArgumentTypeError(f"{name} must be one number, a string or a displayable "
                                         f"object, got {validate._show(value)}; pick the entry "
                                         f"the prose quotes (e.g. {name}[0] or {name}.mean())")
    return value


@checked
def glue(name: str, value, display: bool = False) -> None:
    """Make ``value`` available to the page's prose as ``{glue:text}`name``` (MyST-NB).

    name: the key the prose names, without spaces, backticks or braces; value: see
    :func:`_quotable`. Outside a Jupyter Book build (Colab, a plain Jupyter session) MyST-NB
    may be absent; then nothing is recorded (the arguments are still checked). Returns None,
    so a cell ending in a glue call shows nothing.
    """
    if not _NAME.fullmatch(name):
        raise ValueError(f"name must be a glue key without spaces, backticks or braces, got {name!r}")
    # numpy and torch scalars print as "np.float64(0.5)" / "tensor(0.5)", which the prose's
    # format specs (":.1%") cannot read: quote them as the Python numbers they hold.
    value = _quotable(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return
    _glue(name, value, display=display)


@checked
def table(rows, headers: Sequence[str]):
    """A Markdown table (rendered on the site and in Jupyter) from rows of cells, each row a
    sequence of len(headers) cells (numbers or strings)."""
    from IPython.display import Markdown

    if isinstance(headers, (str, bytes)) or not isinstance(headers, (list, tuple)) or not headers:
        raise validate.ArgumentTypeError(f"headers must be a non-empty list of column names, got "
                                         f"{validate._show(headers)}")
    if isinstance(rows, (str, bytes, dict)) or not hasattr(rows, "__iter__"):
        raise validate.ArgumentTypeError(f"rows must be a sequence of rows, got {validate._show(rows)}")
    rows = [list(row) if hasattr(row, "__iter__") and not isinstance(row, (str, bytes, dict)) else row
            for row in rows]
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(headers):
            raise ValueError(f"rows[{i}] must be a sequence of {len(headers)} cells (one per header), "
                             f"got {validate._show(row)}")
        row[:] = [_quotable(c, f"rows[{i}]") for c in row]
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return Markdown("\n".join(lines))


@checked
def claim(checks: Annotated[dict, Instance(dict)], name: str, holds, detail="") -> bool:
    """Check a claim that a page's prose makes, in the way the active profile calls for.

    In the quick profile (the one whose seeds the page's wording was checked at) a claim that
    fails raises AssertionError with ``detail``: the test of the page fails. In the other
    profiles a larger run may overturn it, so it is recorded instead: ``checks[name]`` is
    "holds" or "does not hold" (with ``detail``), for the page to show in its table of checks,
    and the page is built. Returns whether the claim held.
    """
    from .profiles import name as profile_name

    holds = bool(holds)
    if not holds and profile_name() == "quick":
        raise AssertionError(f"{name}: {detail}")
    detail = str(detail)
    short = detail if len(detail) <= 200 else detail[:197] + "..."
    checks[name] = "holds" if holds else f"does not hold ({short})" if detail else "does not hold"
    return holds
