"""Attacks the book uses but does not teach, from torchattacks and foolbox, behind the book's
signature.

torchattacks (Kim, 2020) pins ``requests~=2.25.1``; install it with
``pip install --no-deps torchattacks`` (its real needs, torch and scipy, come with reprtut).
The Boundary attack comes from foolbox (Rauber et al., 2017). All three wrappers take
(model, x, y, *, eps, norm, ...), images in [0, 1], run on the model's device with the model
in eval mode and frozen parameters, and return x_adv in the eps-ball and the box.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn as nn

from ..declare import Choice, Count, Real, checked
from . import norms
from ..nn import Images, Labels, Model, frozen, num_classes
from .core import Eps, StepSize, Steps

_TA_NORMS = {"linf": "Linf", "l2": "L2"}


class _Supported(Choice):
    """A norm of those an attack of a library supports (the message says so)."""
    def check(self, v, name, args, reads, specs):
        if isinstance(v, str) and v not in self.options:
            raise ValueError(f"{name} must be {' or '.join(repr(o) for o in self.options)} (the "
                             f"norms this attack supports), got {v!r}")
        return super().check(v, name, args, reads, specs)


LibraryNorm = Annotated[str, _Supported("linf", "l2")]
Seed = Annotated[int, Count(0)]


def _torchattacks():
    try:
        import torchattacks
    except ImportError as err:  # say how to install it, since its pins break a plain install
        raise ImportError("AutoAttack and Square come from torchattacks: "
                          "pip install --no-deps torchattacks") from err
    return torchattacks


def _untargeted(targeted: bool, name: str) -> None:
    if targeted:
        raise ValueError(f"{name} is run untargeted here; targeted=True is not supported")


def _run(attack, model, x, y, eps, norm) -> torch.Tensor:
    with frozen(model):
        x_adv = attack(x.detach(), y).to(x.device)
    # The library clips as we do; projecting again costs nothing and makes the contract exact.
    return (x + norms.project(x_adv - x, eps, norm)).clamp(0, 1).detach()


@checked
def autoattack(model: Model, x: Images, y: Labels, *, eps: Eps, norm: LibraryNorm = "linf",
               steps: Steps | None = None, step_size: StepSize | None = None,
               random_start: bool = True, targeted: bool = False,
               n_classes: Annotated[int, Count(2)] | None = None, seed: Seed = 0) -> torch.Tensor:
    """AutoAttack, standard version (Croce & Hein, 2020): APGD-CE, APGD-T (9 targets), FAB-T
    and Square (5,000 queries), each run on the examples the previous ones did not fool.

    Parameter-free by design, so steps, step_size and random_start are ignored (kept for the
    common signature). x: (B, C, H, W) in [0, 1]; y: (B,); eps in the units of ``norm``
    ("linf" or "l2"). n_classes defaults to the model's number of outputs. Returns x_adv.
    """
    _untargeted(targeted, "autoattack")
    k = num_classes(model, x)
    n_classes = n_classes or k
    if n_classes != k:
        raise ValueError(f"n_classes={n_classes} differs from the model's {k} outputs")
    if eps == 0:
        return x.detach().clone()
    attack = _torchattacks().AutoAttack(model, norm=_TA_NORMS[norm], eps=eps, version="standard",
                                        n_classes=n_classes, seed=seed)
    return _run(attack, model, x, y, eps, norm)


@checked
def square(model: Model, x: Images, y: Labels, *, eps: Eps, norm: LibraryNorm = "linf",
           steps: Steps = 5000, step_size: StepSize | None = None, random_start: bool = True,
           targeted: bool = False, p_init: Annotated[float, Real(0, 1, low_open=True)] = 0.8,
           seed: Seed = 0) -> torch.Tensor:
    """Square attack (Andriushchenko et al., 2020): a decision-free, score-based black-box
    attack that changes random squares of the image and keeps a change when the margin loss
    drops. Uses the model's outputs only, never its gradients, so gradient masking cannot
    fool it.

    steps: the query budget per example (default 5,000, as in AutoAttack); p_init: the
    initial fraction of pixels changed. step_size and random_start are ignored. x: (B, C, H, W)
    in [0, 1]; y: (B,); eps in the units of ``norm`` ("linf" or "l2"). Returns x_adv.
    """
    _untargeted(targeted, "square")
    if eps == 0:
        return x.detach().clone()
    attack = _torchattacks().Square(model, norm=_TA_NORMS[norm], eps=eps, n_queries=steps,
                                    p_init=p_init, seed=seed)
    return _run(attack, model, x, y, eps, norm)


def _foolbox():
    try:
        import foolbox
    except ImportError as err:
        raise ImportError("the Boundary attack comes from foolbox: pip install foolbox") from err
    return foolbox


@torch.no_grad()
def _starting_points(model: nn.Module, x: torch.Tensor, y: torch.Tensor, draws: int,
                     generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """An adversarial start near the decision boundary for each example, from labels only.

    Candidates: ``draws`` uniform-noise images and every image of the batch the model labels
    differently from y_i. The closest misclassified candidate c_i is blended with x_i,
    (1 - t) x_i + t c_i, and t is halved towards the boundary by a 12-step binary search.
    Returns (starts (B, C, H, W), found (B,) bool); where found is False, starts is x.
    """
    pred = model(x).argmax(1)
    noise = torch.rand((draws, *x.shape), generator=generator, device="cpu").to(x.device)
    noise_wrong = torch.stack([model(n).argmax(1) != y for n in noise])             # (draws, B)
    # candidate distance matrix: noise draws, then batch images labelled other than y_i
    flat = x.flatten(1)
    d_noise = (noise.flatten(2) - flat).norm(dim=2).masked_fill(~noise_wrong, math.inf)
    d_batch = torch.cdist(flat, flat).masked_fill(pred[None, :] == y[:, None], math.inf)  # (B, B)
    d = torch.cat([d_noise.T, d_batch], 1)                                 # (B, draws + B)
    best = d.argmin(1)
    found = torch.isfinite(d.gather(1, best[:, None]))[:, 0]
    cand = torch.where((best < draws)[:, None, None, None],
                       noise[best.clamp(max=draws - 1), torch.arange(len(x), device=x.device)],
                       x[(best - draws).clamp(min=0)])
    lo, hi = torch.zeros(len(x), device=x.device), torch.ones(len(x), device=x.device)
    for _ in range(12):  # hi stays adversarial, lo stays correct
        mid = (lo + hi) / 2
        blend = x + mid[:, None, None, None] * (cand - x)
        adv = model(blend).argmax(1) != y
        hi, lo = torch.where(adv, mid, hi), torch.where(adv, lo, mid)
    starts = x + hi[:, None, None, None] * (cand - x)
    return torch.where(found[:, None, None, None], starts, x), found


@checked
def boundary(model: Model, x: Images, y: Labels, *, eps: Eps,
             norm: Annotated[str, _Supported("l2")] = "l2", steps: Steps = 5000,
             step_size: StepSize | None = None, random_start: bool = True, targeted: bool = False,
             spherical_step: Annotated[float, Real(0, low_open=True)] = 0.01,
             source_step: Annotated[float, Real(0, 1, low_open=True)] = 0.01,
             draws: Annotated[int, Count(1)] = 20, seed: Seed = 0) -> torch.Tensor:
    """Boundary attack (Brendel et al., 2018), from foolbox: a decision-based attack that sees
    only the model's predicted labels, never its scores or gradients.

    It starts from a misclassified image x̃₀ near the decision boundary (here the closest of
    ``draws`` uniform-noise images and the batch's other-class images, pulled towards x by a
    binary search) and walks along the boundary towards x: each step draws a Gaussian
    direction, projects it onto the sphere ‖x̃ − x‖₂ = ‖x̃ₖ − x‖₂ (relative size
    ``spherical_step``), moves a fraction ``source_step`` of the distance towards x, and keeps
    the candidate x̃ₖ₊₁ if the model still misclassifies it. foolbox adapts both step sizes so
    that about half of the proposals stay adversarial, once 100 checks are recorded; its
    default checks every 10th step, so that nothing adapts before step 1,000, and here every
    step is checked, so the sizes adapt from step 100 on. The result is projected onto the
    ℓ2 ball of radius eps and the box.

    x: (B, C, H, W) in [0, 1]; y: (B,); eps: the ℓ2 radius (norm must be "l2"); steps: the
    number of walk steps (the paper: 5,000); seed: the random draws. step_size and
    random_start are ignored (kept for the common signature). Examples the model already
    misclassifies, or for which no misclassified start is found, are returned unchanged.
    Returns x_adv, (B, C, H, W).
    """
    if targeted:
        raise ValueError("boundary is run untargeted here; targeted=True is not supported")
    if eps == 0:
        return x.detach().clone()
    fb = _foolbox()
    x = x.detach()
    x_adv = x.clone()
    devices = [x.device] if x.device.type == "cuda" else []
    with frozen(model), torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)  # foolbox draws its directions from torch's generator
        g = torch.Generator().manual_seed(seed)
        correct = model(x).argmax(1) == y
        starts, found = _starting_points(model, x, y, draws, g)
        run = correct & found  # indexed on the host once, before the walk, not inside it
        if run.any():
            idx = run.nonzero()[:, 0]
            fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=x.device)
            attack = fb.attacks.BoundaryAttack(steps=steps, spherical_step=spherical_step,
                                               source_step=source_step, update_stats_every_k=1)
            found_adv = attack.run(fmodel, x[idx], fb.criteria.Misclassification(y[idx]),
                                   starting_points=starts[idx])
            x_adv[idx] = found_adv.to(x.device, x.dtype)
    return (x + norms.project(x_adv - x, eps, norm)).clamp(0, 1).detach()
