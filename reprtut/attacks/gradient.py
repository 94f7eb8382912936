"""Gradient attacks with a fixed budget: FGSM and projected gradient descent (PGD).

:func:`pgd_steps` is the one loop behind every iterative gradient attack of the book: PGD in
l_inf, l_2 and l_1, the basic iterative method (Iter-FGSM), Iter-LL-FGSM and the momentum
iterative method (MIM) differ only in the norm, the loss, the momentum and the start.
"""

from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn as nn

from .. import validate
from ..declare import checked
from ..device import search_autocast
from . import norms
from ..nn import Images, Labels, Model, frozen
from .core import Eps, Norm, Steps, StepSize, cross_entropy_sum, input_gradient

# on_step(k, x_k, logits_k): called with iterate k (k = 0 .. steps-1) and its logits before step k.
StepHook = Callable[[int, torch.Tensor, torch.Tensor], None]


def check_budget(steps, step_size) -> tuple[int, float | None]:
    """Raise ``ValueError``/``TypeError`` unless steps is an integer >= 1 and step_size is None
    or a finite number > 0; return them as (int, float or None)."""
    steps = validate.count(steps, "steps", min=1)
    step_size = validate.real(step_size, "step_size", low=0.0, low_open=True, allow_none=True)
    return steps, step_size


@checked
def pgd(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf", steps: Steps = 10,
        step_size: StepSize | None = None, random_start: bool = True, targeted: bool = False,
        loss_fn=cross_entropy_sum) -> torch.Tensor:
    """Projected gradient descent (Madry et al., 2018, eq. 2.1) in the eps-ball of ``norm``.

    Repeats ``delta <- Proj_{B(eps) and box}(delta + step_size * steepest(grad))`` ``steps``
    times from a random point of the ball (or from 0). ``targeted`` makes y the target class:
    the loss is then decreased instead of increased. Returns the last iterate.

    x: float (B, C, H, W) in [0, 1]; y: int64 (B,); eps >= 0 in the units of ``norm``
    ("linf", "l2" or "l1"; l1 takes sparse steps, see :mod:`reprtut.attacks.norms`);
    step_size defaults to 2.5 * eps / steps (Madry et al.). Returns x_adv with the shape and
    device of x, inside the ball and in [0, 1]. The model is put in eval mode with frozen
    parameters and restored afterwards.
    """
    return pgd_steps(model, x, y, eps=eps, norm=norm, steps=steps, step_size=step_size,
                     random_start=random_start, targeted=targeted, loss_fn=loss_fn)


def pgd_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str,
              steps: int, step_size: float | None = None, random_start: bool = True,
              targeted: bool = False, loss_fn=cross_entropy_sum, decay: float = 0.0,
              early_stop: bool = False, on_step: StepHook | None = None,
              box: tuple[float, float] | None = (0.0, 1.0), bf16_steps: bool = True) -> torch.Tensor:
    """The PGD loop of :func:`pgd` without its argument checks, so without a host sync:
    the form that training objectives call on batches that come from the loader.

    decay: momentum mu of MIM (Dong et al., 2018, eq. 6), g <- mu g + grad / ||grad||_1,
        and the step follows g; 0 (the default) is plain PGD.
    early_stop: freeze each example at its first iterate that fools the model (argmax != y,
        or == y when targeted), as minimum-perturbation protocols do; the loop itself still
        runs ``steps`` times, so no host sync is needed to know when all are done.
    on_step: a hook called as ``on_step(k, x_k, logits_k)`` before step k (for trajectories);
        logits_k come from the search, in :func:`reprtut.device.search_autocast`'s precision.

    bf16_steps: take the steps in :func:`reprtut.device.search_autocast`'s precision (bf16
        where models train in bf16; the returned images are the verdicts' business, in
        fp32); False keeps fp32, for optimisations whose iterate is itself the result
        (:mod:`reprtut.representation`). With ``early_stop`` the steps are fp32 too: the
        loop then stops each example just past the boundary, which bf16 logits cannot place,
        so it is a minimum-perturbation attack and runs in fp32 like them.
    box: (lo, hi), the range every coordinate of x_adv is clamped to (images: [0, 1]); None
        for inputs without one (the two-dimensional points of :mod:`reprtut.toy`).
    """
    x = x.detach()
    if eps == 0:
        return x.clone()
    step_size = norms.default_step_size(eps, steps) if step_size is None else step_size
    direction = -1.0 if targeted else 1.0
    precision = search_autocast(x.device) if bf16_steps and not early_stop else contextlib.nullcontext()
    with frozen(model), precision:
        delta = norms.random_start(x, eps, norm) if random_start else torch.zeros_like(x)
        delta = _in_box(x, delta, box)
        g = torch.zeros_like(x)
        done = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
        for k in range(steps):
            x_adv = x + delta
            grad, logits = input_gradient(model, x_adv, y, loss_fn)
            if on_step is not None:
                on_step(k, x_adv, logits)
            if decay:
                g = decay * g + grad / norms._batch_norm(grad, 1).clamp_min(1e-12)
            else:
                g = grad
            step = direction * step_size * norms.steepest(g, norm, x_adv, box)
            # Ball first, then box: x is in the box, so clamping x + delta only shrinks each
            # coordinate of delta and cannot leave the ball again.
            new = _in_box(x, norms.project(delta + step, eps, norm), box)
            if early_stop:
                done = done | ((logits.argmax(1) == y) if targeted else (logits.argmax(1) != y))
                new = torch.where(norms._per_example(done, x), delta, new)
            delta = new
    return (x + delta).detach()


def _in_box(x: torch.Tensor, delta: torch.Tensor, box: tuple[float, float] | None) -> torch.Tensor:
    """delta shortened so that x + delta lies in the box (lo, hi); delta itself when box is None."""
    return delta if box is None else (x + delta).clamp(*box) - x


@checked
def fgsm(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf",
         targeted: bool = False, loss_fn=cross_entropy_sum) -> torch.Tensor:
    """Fast gradient (sign) method (Goodfellow et al., 2015): one full step of size eps.

    ``x_adv = clip_[0,1](x + eps * sign(grad_x loss))`` for ``linf``; for ``l2`` the step
    follows the normalised gradient. Same shapes, ranges and flags as :func:`pgd`.
    """
    return pgd(model, x, y, eps=eps, norm=norm, steps=1, step_size=eps or None,
               random_start=False, targeted=targeted, loss_fn=loss_fn)
