"""Helpers for the book's pages: numbers computed by a chapter, quoted in its prose."""

from __future__ import annotations


def glue(name: str, value, display: bool = False):
    """Make ``value`` available to the page's prose as ``{glue:text}`name``` (MyST-NB).

    Outside a Jupyter Book build (Colab, a plain Jupyter session) MyST-NB may be absent;
    then nothing is recorded and the value is simply returned.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=display)
    return value
