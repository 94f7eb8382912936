"""Gradient attacks with a fixed budget: FGSM and projected gradient descent (PGD)."""

from __future__ import annotations

import torch
import torch.nn as nn

from . import norms
from .core import check_inputs, cross_entropy_sum, frozen, input_gradient


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
        steps: int = 10, step_size: float | None = None, random_start: bool = True,
        targeted: bool = False, loss_fn=cross_entropy_sum) -> torch.Tensor:
    """Projected gradient descent (Madry et al., 2018, eq. 2.1) in the eps-ball of ``norm``.

    Repeats ``delta <- Proj_{B(eps) and box}(delta + step_size * steepest(grad))`` ``steps``
    times from a random point of the ball (or from 0). ``targeted`` makes y the target class:
    the loss is then decreased instead of increased. Returns the last iterate.

    x: float (B, C, H, W) in [0, 1]; y: int64 (B,); eps >= 0 in the units of ``norm``;
    step_size defaults to 2.5 * eps / steps (Madry et al.). Returns x_adv with the shape and
    device of x, inside the ball and in [0, 1]. The model is put in eval mode with frozen
    parameters and restored afterwards.
    """
    check_inputs(x, y, eps, norm)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
    if step_size is not None and not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size!r}")
    return pgd_steps(model, x, y, eps=eps, norm=norm, steps=steps, step_size=step_size,
                     random_start=random_start, targeted=targeted, loss_fn=loss_fn)


def pgd_steps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str,
              steps: int, step_size: float | None = None, random_start: bool = True,
              targeted: bool = False, loss_fn=cross_entropy_sum) -> torch.Tensor:
    """The PGD loop of :func:`pgd` without its argument checks, so without a host sync:
    the form that training objectives call on batches that come from the loader."""
    x = x.detach()
    if eps == 0:
        return x.clone()
    step_size = 2.5 * eps / steps if step_size is None else step_size
    direction = -1.0 if targeted else 1.0
    with frozen(model):
        delta = norms.random_start(x, eps, norm) if random_start else torch.zeros_like(x)
        delta = (x + delta).clamp(0, 1) - x
        for _ in range(steps):
            grad, _ = input_gradient(model, x + delta, y, loss_fn)
            delta = delta + direction * step_size * norms.steepest(grad, norm)
            # Ball first, then box: x is in the box, so clamping x + delta only shrinks each
            # coordinate of delta and cannot leave the ball again.
            delta = (x + norms.project(delta, eps, norm)).clamp(0, 1) - x
    return (x + delta).detach()


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
         targeted: bool = False, loss_fn=cross_entropy_sum) -> torch.Tensor:
    """Fast gradient (sign) method (Goodfellow et al., 2015): one full step of size eps.

    ``x_adv = clip_[0,1](x + eps * sign(grad_x loss))`` for ``linf``; for ``l2`` the step
    follows the normalised gradient. Same shapes, ranges and flags as :func:`pgd`.
    """
    return pgd(model, x, y, eps=eps, norm=norm, steps=1, step_size=eps or None,
               random_start=False, targeted=targeted, loss_fn=loss_fn)
