"""Datasets derived from others, for the perceptual-regularization chapter (chapter 3).

* ``flanked_mnist_<task>``: the offline stand-in for SVHN (section 4 of the paper). Each
  32x32 image holds three real MNIST digits side by side: the centre digit, whole, is SVHN's
  label; its two neighbours are cut by the image border, like the distractor digits at the
  edges of an SVHN crop. Tasks ``left``, ``centre`` and ``right`` name the digit that is the
  label; ``flanked_mnist_all`` has all three labels, (N, 3), for multi-task training.
* ``celeba_<task>``: the balanced CelebA subset of the paper's appendix B.1 (half the images
  wear eyeglasses) with one attribute as label, ``eyeglasses``, ``smile`` or ``gender``
  (1 = male); ``celeba_all`` has all three, (N, 3). Built from ``data.load("celeba")``.

Every image of a derived dataset is built from real images; nothing is drawn at random
except which digits stand next to each other (a fixed seed per split).

:func:`attention_dataset` and :func:`transfer_family` say which data chapter 3 uses: the
real dataset where it can be had, the stand-in otherwise. A page asks once and passes the
answer to the recipes, which read nothing.
"""

from __future__ import annotations

import functools
import os

import torch
import torch.nn.functional as nnf

from . import data as data_mod
from . import profiles
from .data import DATA_ENV, INFO, Dataset, DatasetInfo, DIGITS, load, register_derived

# ---------------------------------------------------------------------------- flanked MNIST

FLANKED_TASKS = ("left", "centre", "right")
SIZE = 32     # canvas side, SVHN's image size
DIGIT = 20    # side of each digit after resizing MNIST's 28x28 (area interpolation)
SHIFT = 14    # horizontal distance between neighbouring digits, in pixels
TOP = (SIZE - DIGIT) // 2  # the centre digit's box spans rows and columns TOP .. TOP+DIGIT
# Columns where the centre digit lives and where only the distractors do. MNIST digits fill
# the middle ~70% of their box, so the centre digit's ink lies in columns 9-23, the
# neighbours' in columns 0-9 and 23-32 (they touch the centre digit at most).
CENTRE_COLS = slice(TOP + 3, TOP + DIGIT - 3)   # 9:23
SIDE_COLS = (slice(0, TOP + 3), slice(TOP + DIGIT - 3, SIZE))  # 0:9 and 23:32
_SEEDS = {"train": 0, "test": 1}


def compose(digits: torch.Tensor) -> torch.Tensor:
    """Three digits side by side: (N, 3, 28, 28) uint8 (left, centre, right) -> (N, 1, 32, 32) uint8.

    Each digit is resized to DIGIT x DIGIT; the centre one sits in the middle of the canvas,
    the others SHIFT pixels to each side, cut by the border. Overlaps keep the brighter pixel.
    """
    if digits.dim() != 4 or digits.shape[1:] != (3, 28, 28):
        raise ValueError(f"digits must be (N, 3, 28, 28) MNIST images, got {tuple(digits.shape)}")
    n = len(digits)
    small = nnf.interpolate(digits.float(), size=(DIGIT, DIGIT), mode="area")
    small = small.round_().clamp_(0, 255).to(torch.uint8)  # (N, 3, DIGIT, DIGIT)
    wide = torch.zeros(n, SIZE, SIZE + 2 * SHIFT, dtype=torch.uint8)  # room for the cut-off parts
    for k in range(3):  # k = 0, 1, 2: left, centre, right
        box = wide[:, TOP:TOP + DIGIT, TOP + k * SHIFT:TOP + k * SHIFT + DIGIT]
        box.copy_(torch.maximum(box, small[:, k]))
    return wide[:, None, :, SHIFT:SHIFT + SIZE].contiguous()  # (N, 1, SIZE, SIZE)


@functools.lru_cache(maxsize=4)
def _flanked(split: str, mirror: str | None, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 1, 32, 32) uint8 and labels (N, 3) (left, centre, right) for a split.

    Image i has MNIST image i of the split in the centre and two random images of the same
    split beside it, so the centre labels keep MNIST's class balance.
    """
    mnist = load("mnist", split, download=download)
    g = torch.Generator().manual_seed(_SEEDS[split])
    n = len(mnist)
    idx = torch.stack([torch.randint(n, (n,), generator=g), torch.arange(n),
                       torch.randint(n, (n,), generator=g)], 1)  # (N, 3)
    digits = mnist.x[idx.flatten(), 0].view(n, 3, 28, 28)
    return compose(digits), mnist.y[idx]


def _flanked_info(task: str) -> DatasetInfo:
    # Stats of the composed training images (the same for every task: same images).
    return DatasetInfo(f"flanked_mnist_{task}", DIGITS, (1, SIZE, SIZE), (0.1271,), (0.2742,))


def _register_flanked(task: str) -> None:
    column = None if task == "all" else FLANKED_TASKS.index(task)

    @register_derived(_flanked_info(task))
    def build(split: str, download: bool) -> Dataset:
        x, y = _flanked(split, os.environ.get(DATA_ENV) or None, download)
        mnist_source = load("mnist", split, download=download).source
        return Dataset(x, y if column is None else y[:, column], INFO[f"flanked_mnist_{task}"],
                       f"derived:flanked_mnist({mnist_source})")


for _task in (*FLANKED_TASKS, "all"):
    _register_flanked(_task)

# ---------------------------------------------------------------------------- balanced CelebA

# Columns of CelebA's 40 attributes (list_attr_celeba.txt order) used by the paper.
CELEBA_TASKS = {"eyeglasses": 15, "smile": 31, "gender": 20}  # gender: 1 = Male
# Appendix B.1: 20,000 training and 6,386 test images, half of them with eyeglasses.
CELEBA_PER_CLASS = {"train": 10_000, "test": 3_193}


def balanced_indices(eyeglasses: torch.Tensor, per_class: int) -> torch.Tensor:
    """Indices of the first ``per_class`` images with and without eyeglasses (fewer if the
    split has fewer positives: then as many negatives as positives), in dataset order."""
    pos = eyeglasses.nonzero().flatten()
    neg = (eyeglasses == 0).nonzero().flatten()
    k = min(per_class, len(pos), len(neg))
    return torch.cat([pos[:k], neg[:k]]).sort().values


def _register_celeba(task: str) -> None:
    columns = list(CELEBA_TASKS.values()) if task == "all" else CELEBA_TASKS[task]
    base = INFO["celeba"]
    info = DatasetInfo(f"celeba_{task}", ("0", "1"), base.shape, base.mean, base.std)

    @register_derived(info)
    def build(split: str, download: bool) -> Dataset:
        celeba = load("celeba", split, download=download)  # x (N, 3, 64, 64), y (N, 40)
        idx = balanced_indices(celeba.y[:, CELEBA_TASKS["eyeglasses"]], CELEBA_PER_CLASS[split])
        return Dataset(celeba.x[idx], celeba.y[idx][:, columns], info,
                       f"derived:celeba_balanced({celeba.source})")


for _task in (*CELEBA_TASKS, "all"):
    _register_celeba(_task)


# -------------------------------------------------------------- real data or the stand-in

def _real_or(real: str, standin: str) -> str:
    # The quick profile uses real data only if it is already on disk; the full and paper
    # profiles download it.
    return real if data_mod.available(real, download=profiles.name() != "quick") else standin


def attention_dataset() -> str:
    """Section 4's data: ``svhn`` (label = centre digit) if available, else ``flanked_mnist_centre``."""
    return _real_or("svhn", "flanked_mnist_centre")


def transfer_family() -> tuple[str, tuple[str, ...]]:
    """Section 5's tasks as (dataset prefix, task names): CelebA's eyeglasses, smile and gender
    if available, else the stand-in's left, centre and right digits."""
    if _real_or("celeba", "") == "celeba":
        return "celeba", tuple(CELEBA_TASKS)
    return "flanked_mnist", FLANKED_TASKS
