"""Robust representations (Engstrom et al., 2019): R(x) and the tools that optimise it.

The representation R(x) of a :class:`~reprtut.models.Classifier` is its penultimate layer,
``model.features(x)`` of shape (B, d); the logits are ``W R(x) + b`` with W =
``model.head.weight`` of shape (K, d), so the paper's W_ic is ``W[c, i]``. Every tool below is
projected gradient descent or ascent on a simple function of R in an l2 ball around a
starting image x0 and inside the [0, 1] box, run by the book's one PGD loop,
:func:`reprtut.attacks.pgd_steps`, with a loss on R in place of the cross-entropy. No image
prior is added: what the images show is what R encodes ("model faithfulness").

============  ==============  ===========================================================
tool          paper           problem solved, ||delta||_2 <= eps, x0 + delta in [0, 1]
============  ==============  ===========================================================
invert        eq. 5, sec 4.2  min ||R(x0 + delta) - r_target||_2
maximize      eq. 4, sec 4.1  max R(x0 + delta)_i
interpolate   eq. 6, sec 5.1  invert (1 - a) R(x1) + a R(x2), seeded with (1 - a) x1 + a x2
add_feature   eq. 7, sec 5.2  maximize from a natural image in a small ball, step by step
accentuate    eq. 8, sec 5.3  maximize the sum of the top-k coordinates of R(x)_i W_ic
============  ==============  ===========================================================

:func:`budget` gives each tool's (eps, steps, step_size) for the active profile: appendix A's
values for 224x224 images, scaled to 32x32 (an l2 length grows with the square root of the
pixel count, so by 32 / 224). The seeds, targets and image measures the chapter uses with
them live in :mod:`reprtut.images` (and are reachable here too).
"""

from __future__ import annotations

import math
from typing import Annotated, Literal, Sequence

import torch

from . import validate
from .attacks import input_gradient, pgd_steps
from .attacks.core import Steps, StepSize
from .attacks.norms import default_step_size
from .declare import Count, Images, Real, Reals, Tensor, checked
from .nn import Classifier, Labels, Model, frozen
from .images import (SEED_STD, coarse_share, kaleidoscope, noise, pad_to,  # noqa: F401
                     pixel_distance, signed_image, ssim)  # chapter 4 reaches them here too
from .profiles import pick

# l2 lengths of the paper's 224x224x3 images -> 32x32x3: sqrt(32*32*3) / sqrt(224*224*3).
SCALE = 32 / 224

Tool = Literal["maximize", "invert", "interpolate", "add_feature", "accentuate"]
# x0, x, x1: images (B, C, H, W) in [0, 1] with the model's channels; x2: of x1's shape.
Seeds = Annotated[torch.Tensor, Images(model="model")]
Pair = Annotated[torch.Tensor, Images(model="model", of="x1")]
Radius = Annotated[float, Real(0, low_open=True, allow_inf=True)]  # l2 eps > 0; inf: no ball
Alphas = Annotated[Sequence[float], Reals(0, 1)]


@checked
def budget(tool: Tool) -> dict:
    """(eps, steps, step_size) of ``tool`` for the active profile, as keyword arguments.

    tool: ``"maximize"`` (appendix A.4: eps 1000, 200 steps of 1), ``"invert"`` and
    ``"interpolate"`` (A.5: eps 1000, 10,000 steps of 1), ``"add_feature"`` and
    ``"accentuate"`` (A.6: eps 40, 60 steps of 1). Lengths are scaled by :data:`SCALE`; the
    paper's eps of 1000 exceeds the diameter of the image box (sqrt(3072) = 55 here), so it
    is ``inf``: no ball. The quick profile takes fewer, longer steps.
    """
    inf = math.inf
    table = {
        "maximize": pick(quick=(inf, 60, 0.25), full=(inf, 200, SCALE)),
        "invert": pick(quick=(inf, 150, 0.25), full=(inf, 2000, SCALE), paper=(inf, 10_000, SCALE)),
        "add_feature": pick(quick=(40 * SCALE, 40, 1.5 * SCALE), full=(40 * SCALE, 60, SCALE)),
    }
    table["interpolate"] = table["invert"]
    table["accentuate"] = table["add_feature"]
    eps, steps, step_size = table[tool]
    return {"eps": eps, "steps": steps, "step_size": step_size}


# ------------------------------------------------------------------------------ checks

def _coordinates(i, n: int, d: int, device) -> torch.Tensor:
    """Coordinates i (an int, or n ints) as an int64 tensor (n, 1), each checked in [0, d)."""
    try:
        i = torch.as_tensor(i, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise validate.ArgumentTypeError(f"i must be an int or {n} ints (one per image), got "
                                         f"{validate._show(i)}") from err
    if i.is_floating_point() or i.dtype == torch.bool or i.dim() > 1 or i.numel() not in (1, n):
        raise ValueError(f"i must be an int or {n} ints (one per image), got {i.dtype} {tuple(i.shape)}")
    if i.numel() and (i.min() < 0 or i.max() >= d):
        raise ValueError(f"i: coordinates must lie in [0, {d}) for a {d}-dimensional R, "
                         f"got values in [{i.min().item()}, {i.max().item()}]")
    return i.long().reshape(-1, 1).expand(n, 1)


# ------------------------------------------------------------------------------ R(x)

@checked
@torch.no_grad()
def representation(model: Classifier, x: Seeds, batch_size: Annotated[int, Count(1)] = 1000) -> torch.Tensor:
    """R(x): the penultimate layer of ``model`` for images x (N, C, H, W) in [0, 1].

    Returns float32 (N, d) on x's device, computed ``batch_size`` images at a time in eval
    mode (batch-norm running statistics, so R of an image does not depend on its batch).
    """
    with frozen(model):
        return torch.cat([model.features(x[j:j + batch_size]).float()
                          for j in range(0, len(x), batch_size)])


def distance_loss(r: torch.Tensor, r_target: torch.Tensor) -> torch.Tensor:
    """sum_b ||r_b - r_target_b||_2, eq. 5's objective summed over the batch (B, d) -> ()."""
    return (r.float() - r_target).norm(dim=1).sum()


def coordinate_loss(r: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """sum_b sum_j r[b, idx[b, j]]: the coordinates to maximise (eq. 4, 7), (B, d) -> ()."""
    return r.float().gather(1, idx).sum()


def _optimise(model, x0, target, loss_fn, *, eps, steps, step_size, ascend, keep=()):
    """PGD in the l2 ball of eps around x0 on ``loss_fn(R(x), target)``, from delta = 0, in
    fp32: the iterate is the result (an inversion of R(x0) is x0 itself).

    Arguments already checked. Returns the last iterate and ``{k: iterate before step k}``
    for k in ``keep``.
    """
    snapshots: dict[int, torch.Tensor] = {}

    def on_step(k, x_k, _):
        if k in keep:
            snapshots[k] = x_k.detach().clone()

    x = pgd_steps(model.features, x0, target, eps=eps, norm="l2", steps=steps,
                  step_size=step_size, random_start=False, targeted=not ascend,
                  loss_fn=loss_fn, on_step=on_step if keep else None, bf16_steps=False)
    return x, snapshots


# ------------------------------------------------------------------------------ the tools

@checked
def invert(model: Classifier, x0: Seeds,
           r_target: Annotated[torch.Tensor, Tensor(2, floating=True, of="x0")], *, eps: Radius,
           steps: Steps, step_size: StepSize) -> torch.Tensor:
    """Representation inversion (Engstrom et al., eq. 5): an image near x0 whose R matches r_target.

    Solves min_delta ||R(x0 + delta) - r_target||_2 over ||delta||_2 <= eps and
    x0 + delta in [0, 1] with ``steps`` normalised gradient steps of l2 length ``step_size``
    from delta = 0. With eps = inf (appendix A.5) it inverts R from any seed x0 (noise,
    another image); with a small eps it is section 2's test of a representation: can an
    image within eps of x0 take another image's representation?

    x0: float (B, C, H, W) in [0, 1]; r_target: (B, d), e.g. ``representation(model, x_t)``.
    Returns float (B, C, H, W) in [0, 1] with ||x - x0||_2 <= eps, on x0's device.
    Defaults per profile: ``budget("invert")``.
    """
    if r_target.shape[1] != model.dim:
        raise ValueError(f"r_target must have shape ({len(x0)}, {model.dim}) (one representation "
                         f"per seed image), got {tuple(r_target.shape)}")
    x, _ = _optimise(model, x0, r_target.detach().float(), distance_loss, eps=eps, steps=steps,
                     step_size=step_size, ascend=False)
    return x


@checked
def match(model: Classifier, x1: Seeds, x2: Pair, *, eps: Annotated[float, Real(0, low_open=True)],
          steps: Steps, step_size: StepSize | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Section 2's test of a representation (Engstrom et al.): can an image within eps of x1
    take the representation of another image x2?

    x1' = :func:`invert` (model, x1, R(x2)) inside the l2 ball of radius ``eps`` around x1,
    with ``steps`` steps of length ``step_size`` (default 2.5 eps / steps), and the remaining
    distance rho = ||R(x1') - R(x2)||_2 / ||R(x1) - R(x2)||_2 per pair: 0 when x1' has become
    x2 for the model, 1 when nothing moved. x1, x2: float (B, C, H, W) in [0, 1]. Returns
    (x1' (B, C, H, W), rho (B,)), on x1's device.
    """
    if step_size is None:
        step_size = default_step_size(eps, steps)
    r1, r2 = representation(model, x1), representation(model, x2)
    x1p = invert(model, x1, r2, eps=eps, steps=steps, step_size=step_size)
    return x1p, (representation(model, x1p) - r2).norm(dim=1) / (r1 - r2).norm(dim=1)


@checked
def maximize(model: Classifier, x0: Seeds, i, *, eps: Radius, steps: Steps,
             step_size: StepSize) -> torch.Tensor:
    """Feature visualisation (Engstrom et al., eq. 4): max_delta R(x0 + delta)_i.

    ``steps`` normalised gradient-ascent steps of l2 length ``step_size`` from x0, inside
    the l2 ball of eps (appendix A.4: no ball) and the [0, 1] box.

    x0: float (B, C, H, W) in [0, 1]; i: one coordinate for all images, or (B,) ints, in
    [0, d). Returns float (B, C, H, W) in [0, 1]. Defaults per profile: ``budget("maximize")``.
    """
    idx = _coordinates(i, len(x0), model.dim, x0.device)
    x, _ = _optimise(model, x0, idx, coordinate_loss, eps=eps, steps=steps,
                     step_size=step_size, ascend=True)
    return x


@checked
def add_feature(model: Classifier, x0: Seeds, i, *, eps: Radius, steps: Steps,
                step_size: StepSize, rows: Annotated[int, Count(1)] = 1) -> torch.Tensor:
    """Feature addition (Engstrom et al., eq. 7, fig. 8 and 20): maximise R_i from natural images.

    The same ascent as :func:`maximize`, in a ball small enough (appendix A.6: eps 40 on
    224x224 images) that the image keeps its content and gains feature i. ``rows`` > 1
    returns the progression: the iterates after steps / rows, 2 steps / rows, ..., steps
    steps (``steps`` must be a multiple of ``rows``), as in the paper's figure 20.

    x0: float (B, C, H, W) in [0, 1]; i: an int or (B,) ints in [0, d).
    Returns float (rows, B, C, H, W) in [0, 1]. Defaults per profile: ``budget("add_feature")``.
    """
    if steps % rows:
        raise ValueError(f"rows must be a positive integer that divides steps, got rows={rows!r}, "
                         f"steps={steps!r}")
    idx = _coordinates(i, len(x0), model.dim, x0.device)
    every = steps // rows
    keep = tuple(every * r for r in range(1, rows))
    x, snapshots = _optimise(model, x0, idx, coordinate_loss, eps=eps, steps=steps,
                             step_size=step_size, ascend=True, keep=keep)
    return torch.stack([snapshots[k] for k in keep] + [x])


@checked
def top_features(model: Classifier, x: Seeds, k: Annotated[int, Count(1)],
                 c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k coordinates of R(x) that push hardest towards class c (Engstrom et al., eq. 8).

    top-k over i of R(x)_i * W_ic, with W the head's weight and c the predicted class unless
    given. x: (B, C, H, W) in [0, 1]; c: (B,) int64 or None; 1 <= k <= d.
    Returns (indices, scores), each (B, k), scores in decreasing order.
    """
    k = validate.count(k, "k", min=1, max=model.dim)  # at most d, which the declaration cannot read
    r = representation(model, x)                                    # (B, d)
    if c is None:
        with torch.no_grad():
            c = model.head(r).argmax(1)
    else:
        validate.labels(c, len(x), model.head.out_features, "c (the class)")
    w = model.head.weight.detach().float()[c]                       # (B, d): W_ic for each image
    scores, idx = (r * w).topk(k, dim=1)
    return idx, scores


@checked
def accentuate(model: Classifier, x: Seeds, k: Annotated[int, Count(1)], *, eps: Radius,
               steps: Steps, step_size: StepSize,
               c: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature-level sensitivity (Engstrom et al., sec. 5.3, fig. 9): magnify the top-k features.

    Finds the top-k coordinates of eq. 8 (:func:`top_features`) and maximises their sum by
    the feature addition of eq. 7 in the l2 ball of eps around x. Shapes as in
    :func:`top_features`; returns (x_accentuated (B, C, H, W) in [0, 1], indices (B, k)).
    Defaults per profile: ``budget("accentuate")``.
    """
    idx, _ = top_features(model, x, k, c)
    x_acc, _ = _optimise(model, x, idx, coordinate_loss, eps=eps, steps=steps,
                         step_size=step_size, ascend=True)
    return x_acc, idx


@checked
def blend(x1: Annotated[torch.Tensor, Images()], x2: Annotated[torch.Tensor, Images(of="x1")],
          alphas: Alphas) -> torch.Tensor:
    """Pixel-space interpolation (1 - a) x1 + a x2 for each a of ``alphas``.

    x1, x2: (B, C, H, W); alphas: A values in [0, 1]. Returns (B, A, C, H, W).
    """
    a = torch.as_tensor(alphas, dtype=x1.dtype, device=x1.device)
    a = a.view(1, -1, *([1] * (x1.dim() - 1)))                      # (1, A, 1, 1, 1)
    return (1 - a) * x1.unsqueeze(1) + a * x2.unsqueeze(1)


@checked
def interpolate(model: Classifier, x1: Seeds, x2: Pair, alphas: Alphas, *, eps: Radius,
                steps: Steps, step_size: StepSize) -> torch.Tensor:
    """Interpolation in representation space (Engstrom et al., eq. 6, fig. 17 and 18).

    For each a of ``alphas``, inverts r_a = (1 - a) R(x1) + a R(x2) with eq. 5
    (:func:`invert`), seeded with the pixel blend (1 - a) x1 + a x2 (:func:`blend`).
    x1, x2: (B, C, H, W) in [0, 1]; alphas: A values in [0, 1].
    Returns (B, A, C, H, W) in [0, 1]. Defaults per profile: ``budget("interpolate")``.
    """
    seeds = blend(x1, x2, alphas)                                   # (B, A, C, H, W)
    b, n = seeds.shape[:2]
    r1, r2 = representation(model, x1), representation(model, x2)  # (B, d)
    a = torch.as_tensor(alphas, dtype=r1.dtype, device=r1.device).view(1, -1, 1)
    r_a = (1 - a) * r1.unsqueeze(1) + a * r2.unsqueeze(1)           # (B, A, d)
    x = invert(model, seeds.flatten(0, 1), r_a.flatten(0, 1), eps=eps, steps=steps,
               step_size=step_size)
    return x.view(b, n, *x.shape[1:])


@checked
def extremes(r: Annotated[torch.Tensor, Tensor(2)], i: Annotated[int, Count(0)],
             k: Annotated[int, Count(1)]) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the k rows of r (N, d) with the largest and the k with the smallest r[:, i]
    (fig. 4's most and least activating images), each (k,), most extreme first."""
    if not i < r.shape[1] or not k <= r.shape[0]:
        raise ValueError(f"need r (N, d), 0 <= i < d and 1 <= k <= N; got r {tuple(r.shape)}, "
                         f"i={i!r}, k={k!r}")
    return r[:, i].topk(k).indices, (-r[:, i]).topk(k).indices


@checked
def saliency(model: Model, x: Seeds, y: Labels) -> torch.Tensor:
    """Loss-gradient saliency ∇_x CE(f(x), y) of a classifier, with the model frozen (sec. 5.3;
    Tsipras et al., 2019): the map chapter 1 reads and g_G of :func:`reprtut.attribution.attribute`.

    x: (B, C, H, W) in [0, 1]; y: (B,) labels. The cross-entropy is summed over the batch, so
    each image's gradient is its own. Returns (B, C, H, W) on x's device; the model's mode
    and parameters' requires_grad are restored.
    """
    with frozen(model):
        grad, _ = input_gradient(model, x, y)
    return grad
