"""Profiles: one switch for the scale of every experiment in the book.

The environment variable ``REPRTUT_PROFILE`` selects one of

* ``quick`` -- tests, CI and CPUs: data subsets, narrow networks and few epochs;
* ``colab`` -- the default when CUDA is present: the ``full`` profile's data and networks with
  fewer epochs and smaller grids where a page would otherwise run long, sized by the cost model
  (``python -m reprtut.bench plan --profile colab``) so that every page finishes within 15
  minutes on a T4 (the free Colab GPU) from an empty model cache;
* ``full``  -- the published book: whole datasets, the papers' networks, longer schedules;
* ``paper`` -- the papers' own settings where they are feasible on one GPU.

Chapters and recipes never read ad-hoc flags: they ask the active profile with
:func:`pick`, so the same code scales from a laptop to a GPU.
"""

from __future__ import annotations

import os

import torch

ENV = "REPRTUT_PROFILE"
NAMES = ("quick", "colab", "full", "paper")
# The profile a CUDA device gets when REPRTUT_PROFILE is unset.
GPU_DEFAULT = "colab"
SEED_ENV = "REPRTUT_SEED"


def name() -> str:
    """The active profile: ``$REPRTUT_PROFILE``, else ``colab`` with CUDA and ``quick`` without."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return GPU_DEFAULT if torch.cuda.is_available() else "quick"
    if value not in NAMES:
        raise ValueError(f"{ENV}={value!r} is not a profile; choose one of {', '.join(NAMES)}")
    return value


def pick(quick, full, paper=None, colab=None):
    """The value for the active profile; ``paper`` and ``colab`` fall back to ``full`` when not
    given (``colab`` is given only where a full-size value would take a page past its budget).

    >>> epochs = pick(quick=2, full=20, paper=100, colab=8)
    """
    active = name()
    if active == "quick":
        return quick
    if active == "paper" and paper is not None:
        return paper
    if active == "colab" and colab is not None:
        return colab
    return full


def seed() -> int:
    """The run's seed: ``$REPRTUT_SEED`` (default 0), a non-negative integer.

    Every cached model adds it to its recipe's seed (and to its cache key) and every page
    seeds its own random draws with it, so a chapter can be run again with seeds 0, 1, 2, ...
    to check that its claims do not hang on one draw.
    """
    value = os.environ.get(SEED_ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise ValueError(f"{SEED_ENV}={value!r} must be a non-negative integer, e.g. {SEED_ENV}=3")
    return int(value)


def describe() -> str:
    """One line for the top of a chapter: which profile runs, on which device, and in which
    precision models train and attacks take their steps there (e.g. ``training and attack
    steps in bf16 autocast``; :func:`reprtut.device.search_autocast`)."""
    from .device import amp_dtype, default_device

    device = default_device()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    seeded = f" | seed {seed()}" if seed() else ""
    precision = {torch.bfloat16: "training and attack steps in bf16 autocast",
                 torch.float16: "training in fp16 autocast"}.get(amp_dtype(device), "training in fp32")
    return f"profile: {name()}{seeded} | device: {device.type}{gpu} | {precision} | torch {torch.__version__}"
