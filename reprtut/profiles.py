"""Profiles: one switch for the scale of every experiment in the book.

The environment variable ``REPRTUT_PROFILE`` selects one of

* ``quick`` -- tests, CI and CPUs: each chapter runs in about a minute on two cores,
  on data subsets and with few epochs;
* ``full``  -- GPUs and the published book (the default when CUDA is present);
* ``paper`` -- the papers' own settings where they are feasible on one GPU.

Chapters and recipes never read ad-hoc flags: they ask the active profile with
:func:`pick`, so the same code scales from a laptop to a GPU.
"""

from __future__ import annotations

import os

import torch

ENV = "REPRTUT_PROFILE"
NAMES = ("quick", "full", "paper")


def name() -> str:
    """The active profile: ``$REPRTUT_PROFILE``, else ``full`` with CUDA and ``quick`` without."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "quick"
    if value not in NAMES:
        raise ValueError(f"{ENV}={value!r} is not a profile; choose one of {', '.join(NAMES)}")
    return value


def pick(quick, full, paper=None):
    """The value for the active profile; ``paper`` falls back to ``full`` when not given.

    >>> epochs = pick(quick=2, full=20, paper=100)
    """
    active = name()
    if active == "quick":
        return quick
    if active == "paper" and paper is not None:
        return paper
    return full


def describe() -> str:
    """One line for the top of a chapter: which profile runs, on which device."""
    from .device import default_device

    device = default_device()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    return f"profile: {name()} | device: {device.type}{gpu} | torch {torch.__version__}"
