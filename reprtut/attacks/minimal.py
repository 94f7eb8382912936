"""Minimum-perturbation attacks in l_2: DeepFool, Carlini-Wagner (C&W-l2) and DDN.

Each looks for the smallest ||delta||_2 that changes the prediction, example by example: an
example stops moving once it is fooled (DeepFool), or the smallest fooling perturbation seen
so far is kept (C&W, DDN). With ``eps=None`` the perturbation is unbounded; with an eps the
result is projected onto the eps-ball, so that the call works like any other attack. Examples
that are never fooled come back unchanged, and so do examples that are misclassified already
(their minimum perturbation is 0).
"""

from __future__ import annotations

import math
from typing import Annotated

import torch

from . import norms
from ..declare import Count, Real, checked
from ..nn import Images, Labels, Model, frozen
from .core import Eps, Norm, Steps, StepSize, cross_entropy_sum, input_gradient, margin as logit_margin

# One host read every CHECK_EVERY DeepFool iterations ends the loop once every example is fooled;
# DeepFool needs a few iterations for most examples, so running all `steps` would waste most work.
CHECK_EVERY = 5


def _unsupported(norm, targeted, random_start, name) -> None:
    """Refuse what the common attack signature offers and a minimal l2 attack cannot do."""
    if norm != "l2":
        raise ValueError(f"{name} is an l2 attack; got norm={norm!r}")
    if targeted:
        raise ValueError(f"{name} is untargeted; targeted=True is not supported")
    if random_start:
        raise ValueError(f"{name} starts at x; random_start=True is not supported")


def _nothing_to_do(eps) -> bool:
    """eps = 0 admits no perturbation: the attack returns its input without running."""
    return eps is not None and eps == 0


def _finish(x: torch.Tensor, delta: torch.Tensor, eps: float | None) -> torch.Tensor:
    if eps is not None:
        delta = norms.project(delta, eps, "l2")
    return (x + delta).clamp(0, 1).detach()


def _fooled(logits: torch.Tensor, y: torch.Tensor, targeted: bool = False) -> torch.Tensor:
    return (logits.argmax(1) == y) if targeted else (logits.argmax(1) != y)


# --------------------------------------------------------------------------------- DeepFool

@checked
def deepfool(model: Model, x: Images, y: Labels, *, eps: Eps | None = None, norm: Norm = "l2",
             steps: Steps = 50, step_size: StepSize | None = None, random_start: bool = False,
             targeted: bool = False, overshoot: Annotated[float, Real(0)] = 0.02,
             candidates: Annotated[int, Count(2)] | None = None) -> torch.Tensor:
    """DeepFool (Moosavi-Dezfooli et al., 2016, algorithm 2): the minimal l_2 perturbation to
    the nearest decision boundary of the model linearised at the current point.

    At x_i, for every other class k: f'_k = f_k - f_y and w'_k = grad f'_k; the nearest
    boundary is l = argmin_k |f'_k| / ||w'_k||_2 and the step r_i = |f'_l| / ||w'_l||^2 w'_l
    (eq. 8). x_{i+1} = clip(x + (1 + overshoot) sum_i r_i). Each example stops at its first
    fooling iterate; at most ``steps`` iterations (50, as in the AFD paper's table A2).

    x: (B, C, H, W) in [0, 1]; y: (B,) true labels. candidates: only the classes with the
    highest clean logits are considered (None: all). step_size and random_start are not used
    (DeepFool's step is its own); targeted is not supported. Returns x_adv (see module doc).
    """
    _unsupported(norm, targeted, random_start, "deepfool")
    if _nothing_to_do(eps):
        return x.detach().clone()
    x = x.detach()
    with frozen(model):
        others = _other_classes(model(x), y, candidates)                  # (B, K-1)
        r_tot = torch.zeros_like(x)
        done = torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for i in range(steps + 1):
            x_adv = (x + (1 + overshoot) * r_tot).clamp(0, 1)
            f, w = _boundary_terms(model, x_adv, y, others, done)          # (B, K-1), (B, K-1, n)
            done = done | (f > 0).any(1)                                    # another class wins
            if i == steps or (i % CHECK_EVERY == CHECK_EVERY - 1 and bool(done.all())):
                break
            w_norm = w.norm(dim=2).clamp_min(1e-12)                         # (B, K-1)
            l = (f.abs() / w_norm).argmin(1)                                # nearest boundary
            f_l = f.gather(1, l[:, None])                                   # (B, 1)
            w_l = w[torch.arange(len(x), device=x.device), l]               # (B, n)
            r = ((f_l.abs() + 1e-4) / w_norm.gather(1, l[:, None]) ** 2 * w_l).view_as(x)
            r_tot = torch.where(norms._per_example(done, x), r_tot, r_tot + r)
        delta = torch.where(norms._per_example(done, x), x_adv - x, torch.zeros_like(x))
    return _finish(x, delta, eps)


def _other_classes(logits: torch.Tensor, y: torch.Tensor, candidates: int | None) -> torch.Tensor:
    """(B, K-1) or (B, candidates-1): the classes other than y, highest clean logit first."""
    order = logits.detach().argsort(1, descending=True)                   # (B, K)
    others = order[order != y[:, None]].view(len(y), -1)                   # drop y from each row
    return others if candidates is None else others[:, :max(1, candidates - 1)]


def _boundary_terms(model, x_adv, y, others, done):
    """f'_k = f_k - f_y (B, K') and w'_k = grad_x f'_k flattened (B, K', n) at x_adv.

    One forward pass and one backward pass per class k: examples are independent in eval
    mode, so the gradient of the batch sum is every example's own gradient.
    """
    x_adv = x_adv.detach().requires_grad_(True)
    logits = model(x_adv).float()
    f = logits.gather(1, others) - logits.gather(1, y[:, None])           # (B, K')
    grads = [torch.autograd.grad(f[:, k].sum(), x_adv, retain_graph=k < f.shape[1] - 1)[0].flatten(1)
             for k in range(f.shape[1])]
    return f.detach(), torch.stack(grads, 1)


# ------------------------------------------------------------------------------------ C&W-l2

@checked
def cw_l2(model: Model, x: Images, y: Labels, *, eps: Eps | None = None, norm: Norm = "l2",
          steps: Steps = 100, step_size: StepSize = 0.01, random_start: bool = False,
          targeted: bool = False, c: Annotated[float, Real(0, low_open=True)] = 1e-3,
          search_steps: Steps = 5, kappa: Annotated[float, Real(0)] = 0.0) -> torch.Tensor:
    """Carlini & Wagner's l_2 attack (2017, section V.A): minimise over w

        ||x'(w) - x||_2^2 + c * max(Z_y - max_{i != y} Z_i, -kappa),  x'(w) = (tanh(w) + 1) / 2

    with Adam (learning rate ``step_size``) for ``steps`` steps, for each of ``search_steps``
    values of c found by a per-example binary search from ``c`` (x10 until the attack succeeds,
    then bisection). Z are the logits; targeted: y is the target, and the margin is
    max_{i != y} Z_i - Z_y. The smallest fooling perturbation seen is returned.
    Paper settings: 9 search steps, 10,000 steps, lr 0.01; the AFD paper ran 100 steps.

    x: (B, C, H, W) in [0, 1]; y: (B,). random_start is not supported. Returns x_adv.
    """
    _unsupported(norm, False, random_start, "cw_l2")
    if _nothing_to_do(eps):
        return x.detach().clone()
    x = x.detach()
    B = len(x)
    const = torch.full((B,), float(c), device=x.device)
    lower, upper = torch.zeros_like(const), torch.full_like(const, math.inf)
    best_norm = torch.full_like(const, math.inf)
    best = x.clone()
    w0 = torch.atanh((2 * x - 1) * (1 - 1e-6))                             # x'(w0) = x
    with frozen(model):
        for _ in range(search_steps):
            w = w0.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=step_size)
            success = torch.zeros(B, dtype=torch.bool, device=x.device)
            for _ in range(steps):
                x_adv = (torch.tanh(w) + 1) / 2
                logits = model(x_adv).float()
                l2sq = (x_adv - x).flatten(1).pow(2).sum(1)                    # (B,)
                # Z_y - max_{i != y} Z_i (untargeted), its negative (targeted).
                margin = logit_margin(logits, y) if targeted else -logit_margin(logits, y)
                loss = (l2sq + const * margin.clamp_min(-kappa)).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                fooled = _fooled(logits.detach(), y, targeted) & (margin.detach() <= -kappa)
                better = fooled & (l2sq.detach() < best_norm)
                best_norm = torch.where(better, l2sq.detach(), best_norm)
                best = torch.where(norms._per_example(better, x), x_adv.detach(), best)
                success = success | fooled
            # Binary search on c, per example: smaller after a success, larger after a failure.
            upper = torch.where(success, torch.minimum(upper, const), upper)
            lower = torch.where(success, lower, torch.maximum(lower, const))
            const = torch.where(upper.isfinite(), (lower + upper) / 2, const * 10)
    return _finish(x, best - x, eps)


# --------------------------------------------------------------------------------------- DDN

@checked
def ddn(model: Model, x: Images, y: Labels, *, eps: Eps | None = None, norm: Norm = "l2",
        steps: Steps = 100, step_size: StepSize = 1.0, random_start: bool = False,
        targeted: bool = False, init_norm: Annotated[float, Real(0, low_open=True)] = 1.0,
        gamma: Annotated[float, Real(0, 1, low_open=True, high_open=True)] = 0.05) -> torch.Tensor:
    """Decoupled direction and norm (Rony et al., 2019, algorithm 1).

    Each step moves delta along the l_2-normalised loss gradient by alpha_k (cosine-annealed
    from ``step_size`` to 0.01 alpha), then rescales delta to norm eps_k, which shrinks by
    (1 - gamma) while x + delta is adversarial and grows by (1 + gamma) while it is not;
    eps_0 = ``init_norm``. The smallest fooling delta seen is returned (the paper also
    rounds to 256 grey levels, which is left out here). targeted: y is the target and the
    loss is descended. Paper and AFD settings: 100 steps, gamma 0.05, alpha 1.

    x: (B, C, H, W) in [0, 1]; y: (B,). random_start is not supported. Returns x_adv.
    """
    _unsupported(norm, False, random_start, "ddn")
    if _nothing_to_do(eps):
        return x.detach().clone()
    x = x.detach()
    sign = -1.0 if targeted else 1.0
    delta = torch.zeros_like(x)
    eps_k = torch.full((len(x),), float(init_norm), device=x.device)
    worst = norms.norm_of(torch.maximum(x, 1 - x), "l2")                  # farthest point of the box
    best_norm = torch.full_like(eps_k, math.inf)
    best = torch.zeros_like(x)
    with frozen(model):
        for k in range(steps):
            alpha = step_size * (0.01 + 0.99 * (1 + math.cos(math.pi * k / steps)) / 2)
            grad, logits = input_gradient(model, x + delta, y, cross_entropy_sum)
            fooled = _fooled(logits, y, targeted)
            size = norms.norm_of(delta, "l2")
            better = fooled & (size < best_norm)
            best_norm = torch.where(better, size, best_norm)
            best = torch.where(norms._per_example(better, x), delta, best)
            delta = delta + sign * alpha * norms.steepest(grad, "l2")
            eps_k = torch.minimum(eps_k * torch.where(fooled, 1 - gamma, 1 + gamma), worst)
            delta = delta * norms._per_example(eps_k / norms.norm_of(delta, "l2").clamp_min(1e-12), x)
            delta = (x + delta).clamp(0, 1) - x
    return _finish(x, best, eps)
