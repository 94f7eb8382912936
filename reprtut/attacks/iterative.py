"""Iterative sign-gradient attacks: Iter-FGSM, Iter-LL-FGSM (Kurakin et al.) and MIM.

All three are the PGD loop :func:`reprtut.attacks.pgd_steps` started at x (no random start):
Iter-FGSM is PGD without the random start, Iter-LL-FGSM replaces the loss by one that pulls
towards the least-likely class, and MIM adds momentum to the gradient.
"""

from __future__ import annotations

import math
from typing import Annotated

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..declare import Real, checked
from ..nn import Images, Labels, Model, frozen
from .core import Eps, Norm, Steps, StepSize
from .gradient import pgd_steps


def kurakin_steps(eps: float, step_size: float = 1 / 255) -> int:
    """Kurakin et al. (2017a) choose min(eps/alpha + 4, 1.25 eps/alpha) iterations (at least 1)."""
    ratio = eps / step_size
    return max(1, int(math.ceil(min(ratio + 4, 1.25 * ratio))))


def least_likely_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """-sum_i CE(logits_i, y_LL,i) with y_LL = argmin_y p(y | x^n), re-chosen at every iterate
    (Sanyal et al., appendix D, eq. 5); y is ignored. Ascending it descends CE towards y_LL."""
    target = logits.detach().argmin(1)
    return -F.cross_entropy(logits.float(), target, reduction="sum")


@checked
def iter_fgsm(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf",
              steps: Steps | None = None, step_size: StepSize = 1 / 255,
              random_start: bool = False, targeted: bool = False,
              early_stop: bool = False) -> torch.Tensor:
    """Iter-FGSM, the basic iterative method (Kurakin et al., 2017a; Sanyal et al., eq. 4):
    x^{n+1} = clip_{x, eps}(x^n + alpha sign(grad_x L(x^n, y))), from x^0 = x.

    x: (B, C, H, W) in [0, 1]; y: (B,) labels (targets when ``targeted``). alpha = step_size
    (default 1/255, "alpha = 1" on the 0-255 scale); steps defaults to
    :func:`kurakin_steps`. ``early_stop`` freezes each example once it is misclassified, the
    protocol of Sanyal et al.'s table 3 (appendix D.2); without it the attack runs all steps,
    as in their figure 2. Returns x_adv in the eps-ball and [0, 1].
    """
    steps = kurakin_steps(eps, step_size) if steps is None else steps
    return pgd_steps(model, x, y, eps=eps, norm=norm, steps=steps, step_size=step_size,
                     random_start=random_start, targeted=targeted, early_stop=early_stop)


@checked
def iter_ll_fgsm(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf",
                 steps: Steps | None = None, step_size: StepSize = 1 / 255,
                 random_start: bool = False, targeted: bool = False,
                 early_stop: bool = False, recompute_target: bool = True) -> torch.Tensor:
    """Iter-LL-FGSM (Kurakin et al., 2017b; Sanyal et al., eq. 5):
    x^{n+1} = clip_{x, eps}(x^n - alpha sign(grad_x L(x^n, y_LL^n))), y_LL^n = argmin p(y | x^n).

    The attack picks its own target, so ``targeted=True`` is refused; y is the true label,
    used only by ``early_stop`` (stop once the prediction differs from y). Sanyal et al.
    re-choose y_LL at every iterate (``recompute_target=True``, the default); Kurakin et al.
    fix it at x^0 (``False``: then this is targeted Iter-FGSM towards y_LL, and ``early_stop``
    waits for y_LL itself). Shapes, ranges and defaults as :func:`iter_fgsm`.
    """
    if targeted:
        raise ValueError("iter_ll_fgsm chooses its own (least-likely) target; targeted=True is not supported")
    steps = kurakin_steps(eps, step_size) if steps is None else steps
    if not recompute_target:
        with torch.no_grad(), frozen(model):
            y_ll = model(x).argmin(1)
        return pgd_steps(model, x, y_ll, eps=eps, norm=norm, steps=steps, step_size=step_size,
                         random_start=random_start, targeted=True, early_stop=early_stop)
    return pgd_steps(model, x, y, eps=eps, norm=norm, steps=steps, step_size=step_size,
                     random_start=random_start, loss_fn=least_likely_loss, early_stop=early_stop)


@checked
def mim(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf", steps: Steps = 10,
        step_size: StepSize | None = None, random_start: bool = False, targeted: bool = False,
        decay: Annotated[float, Real(0)] = 1.0) -> torch.Tensor:
    """Momentum iterative method (Dong et al., 2018, algorithm 1):
    g_{t+1} = mu g_t + grad / ||grad||_1,  x_{t+1} = Proj(x_t + alpha steepest(g_{t+1})).

    mu = ``decay`` (default 1.0, the paper's); alpha = step_size, default eps / steps as in the
    paper, so the iterates can reach the edge of the ball but not bounce along it. norm
    "linf" (sign steps, the paper's), "l2" or "l1". x: (B, C, H, W) in [0, 1]; y: (B,).
    Returns x_adv in the eps-ball and [0, 1].
    """
    step_size = eps / steps if step_size is None else step_size
    return pgd_steps(model, x, y, eps=eps, norm=norm, steps=steps, step_size=step_size or None,
                     random_start=random_start, targeted=targeted, decay=float(decay))
