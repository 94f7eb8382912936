"""A checklist against gradient masking: signs that an evaluation, not a model, is weak.

A defence that hides or scrambles its gradients (obfuscated gradients, Athalye et al., 2018)
looks robust to gradient attacks without being robust. The AFD paper (section 4, "Non-
obfuscated gradients") and Carlini et al. (2019) list symptoms to rule out; each function
below tests one of them on a model and returns a :class:`Check`, and :func:`checklist` runs
them all; :func:`softmax_saturation` tests the symptom of a model that grew its logits. A
failed check does not prove masking; a passed list does not prove robustness.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import torch
import torch.nn as nn

from . import validate
from .attacks import autoattack, fgsm, margin_loss_sum, pgd, square
from .attacks.core import Eps, Norm, Steps
from .declare import Count, Real, checked
from .evaluate import AttackFn, accuracy, perturb, predict, robust_accuracy
from .nn import Images, Labels, Model, check_batch

# What the checks' own parameters accept (see reprtut.declare): a tolerance, a share of
# accuracy in [0, 1], and counts of restarts, queries and the like, >= 1.
Tol = Annotated[float, Real(0, 1)]
AtLeastOne = Annotated[int, Count(1)]


class SaturatedLogits(nn.Module):
    """A deliberately masked model, for showing the checklist at work: logits = scale * model(x).

    The argmax, hence every prediction, is the model's own; but the softmax saturates, and
    for every example classified with a logit margin above about 100 / scale the
    cross-entropy gradient underflows to exactly 0 in fp32, so gradient attacks stall
    (the effect behind defensive distillation's apparent robustness).
    """

    def __init__(self, model: nn.Module, scale: float = 1000.0):
        validate.module(model)
        scale = validate.real(scale, "scale", low=0.0, low_open=True)
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.model(x)


@dataclass
class Check:
    """One symptom tested: its name, whether the model passed, and the numbers behind it."""

    name: str
    passed: bool
    detail: str
    values: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"[{'pass' if self.passed else 'FAIL'}] {self.name}: {self.detail}"


@checked
def worst_case_accuracy(model: Model, x: Images, y: Labels, attack: AttackFn, *,
                        restarts: AtLeastOne = 1, **kwargs) -> float:
    """Accuracy when an example counts as robust only if ``restarts`` runs of ``attack`` (with
    fresh random starts) all fail on it. x (N, C, H, W) in [0, 1]; y (N,)."""
    correct = torch.ones(len(y), dtype=torch.bool, device=y.device)
    for _ in range(restarts):
        x_adv = perturb(model, x, y, attack, **kwargs)
        correct &= predict(model, x_adv).argmax(1) == y
    return correct.float().mean().item()


@checked
def iterative_beats_single_step(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf",
                                steps: Steps = 20, tol: Tol = 0.02) -> Check:
    """PGD-``steps`` must be at least as strong as FGSM at the same eps (AFD paper, ii): a
    multi-step attack that does worse than one step is following useless gradients."""
    a_fgsm = robust_accuracy(model, x, y, fgsm, eps=eps, norm=norm)
    a_pgd = robust_accuracy(model, x, y, pgd, eps=eps, norm=norm, steps=steps)
    return Check("iterative >= single-step", a_pgd <= a_fgsm + tol,
                 f"PGD-{steps} {a_pgd:.1%} vs FGSM {a_fgsm:.1%} at eps={eps:.3g}",
                 {"pgd": a_pgd, "fgsm": a_fgsm})


@checked
def accuracy_vanishes(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf",
                      steps: Steps = 50, tol: Tol = 0.05) -> Check:
    """With an eps large enough to erase the image (e.g. l_inf 0.5) an attack that works must
    drive accuracy to about 0 (AFD paper, i); a plateau above ``tol`` means the attack, not
    the model, gave up."""
    a = robust_accuracy(model, x, y, pgd, eps=eps, norm=norm, steps=steps)
    return Check("accuracy -> 0 as eps grows", a <= tol,
                 f"PGD-{steps} at eps={eps:.3g}: {a:.1%} (threshold {tol:.0%})", {"accuracy": a})


@checked
def black_box_weaker(model: Model, surrogate: Model, x: Images, y: Labels, *, eps: Eps,
                     norm: Norm = "linf", steps: Steps = 20, tol: Tol = 0.02) -> Check:
    """PGD computed on a ``surrogate`` model and transferred must not beat PGD computed on the
    model itself (AFD paper, iii; Sanyal et al., section 4): if it does, the model's own
    gradients point the attack the wrong way."""
    check_batch(surrogate, x, y)  # the surrogate's channels and classes fit the batch too
    white = robust_accuracy(model, x, y, pgd, eps=eps, norm=norm, steps=steps)
    x_bb = perturb(surrogate, x, y, pgd, eps=eps, norm=norm, steps=steps)
    black = accuracy(model, x_bb, y)
    return Check("black-box weaker than white-box", black >= white - tol,
                 f"transfer {black:.1%} vs white-box {white:.1%} at eps={eps:.3g}",
                 {"black_box": black, "white_box": white})


@checked
def more_effort_saturates(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf",
                          steps: Steps = 20, factor: AtLeastOne = 5, restarts: AtLeastOne = 3,
                          tol: Tol = 0.03) -> Check:
    """``factor`` times more steps and ``restarts`` random restarts must not lower the accuracy
    by more than ``tol``: when they do, the base evaluation had not converged and the
    reported robustness is an artefact of the budget."""
    base = robust_accuracy(model, x, y, pgd, eps=eps, norm=norm, steps=steps)
    more = worst_case_accuracy(model, x, y, pgd, restarts=restarts, eps=eps, norm=norm,
                               steps=steps * factor)
    return Check("more steps and restarts help little", base - more <= tol,
                 f"PGD-{steps} {base:.1%} vs PGD-{steps * factor} x {restarts} restarts {more:.1%}",
                 {"base": base, "more": more})


@checked
def gradient_free_not_stronger(model: Model, x: Images, y: Labels, *, eps: Eps, norm: Norm = "linf",
                               steps: Steps = 20, queries: AtLeastOne = 1000, tol: Tol = 0.02) -> Check:
    """The Square attack, which never uses gradients, must not beat PGD (Athalye et al., 2018;
    the AFD paper's Boundary-attack test): if it does, the gradients are masked."""
    a_pgd = robust_accuracy(model, x, y, pgd, eps=eps, norm=norm, steps=steps)
    a_sq = robust_accuracy(model, x, y, square, eps=eps, norm=norm, steps=queries)
    return Check("gradient-free weaker than gradient", a_sq >= a_pgd - tol,
                 f"Square ({queries} queries) {a_sq:.1%} vs PGD-{steps} {a_pgd:.1%}",
                 {"square": a_sq, "pgd": a_pgd})


@checked
def softmax_saturation(model: Model, x: Images, y: Labels, *, eps: Eps, steps: Steps,
                       norm: Norm = "linf", n: AtLeastOne | None = None,
                       autoattack_n: Annotated[int, Count(0)] = 0,
                       square_n: Annotated[int, Count(0)] = 0, queries: AtLeastOne = 1000,
                       tol: Tol = 0.05) -> Check:
    """PGD on the cross-entropy must not be much weaker than PGD on the logit margin.

    A model with large logits saturates its softmax: the cross-entropy's gradient, softmax
    minus one-hot, shrinks like exp(-margin) and underflows to 0 in fp32 past a logit margin
    of about 100, so PGD on the cross-entropy stalls, while the C&W margin max_{i != y} Z_i - Z_y
    (Carlini & Wagner, 2017) keeps its gradient (AFD chapters, "Is the robustness real?").

    values: "logit margin", the median gap between the two largest logits over all of x
    (N, C, H, W) in [0, 1] with labels y (N,); "PGD (CE)" and "PGD (margin)", robust accuracy
    at ``eps`` under PGD-``steps`` on each loss over the first ``n`` images (all by default);
    "AutoAttack" over the first ``autoattack_n`` images and "Square" (gradient-free, ``queries``
    queries per image) over the first ``square_n``, each only when its count is > 0. The
    attacks run in that order. Passes when PGD on the cross-entropy leaves at most ``tol``
    more accuracy than PGD on the margin.
    """
    # at most len(x) images each (a bound that is no parameter, so checked here)
    n = validate.count(n, "n", min=1, max=len(x), allow_none=True) or len(x)
    autoattack_n = validate.count(autoattack_n, "autoattack_n", min=0, max=len(x))
    square_n = validate.count(square_n, "square_n", min=0, max=len(x))
    z = predict(model, x).topk(2, 1).values                                  # (N, 2)
    values = {"logit margin": (z[:, 0] - z[:, 1]).median().item()}
    xs, ys = x[:n], y[:n]
    values["PGD (CE)"] = robust_accuracy(model, xs, ys, pgd, eps=eps, norm=norm, steps=steps)
    values["PGD (margin)"] = robust_accuracy(model, xs, ys, pgd, eps=eps, norm=norm, steps=steps,
                                             loss_fn=margin_loss_sum)
    if autoattack_n:
        values["AutoAttack"] = robust_accuracy(model, x[:autoattack_n], y[:autoattack_n],
                                               autoattack, eps=eps, norm=norm)
    if square_n:
        values["Square"] = robust_accuracy(model, x[:square_n], y[:square_n], square, eps=eps,
                                           norm=norm, steps=queries)
    a_ce, a_mg = values["PGD (CE)"], values["PGD (margin)"]
    return Check("cross-entropy not saturated", a_ce <= a_mg + tol,
                 f"PGD-{steps} on the cross-entropy {a_ce:.1%} vs on the margin {a_mg:.1%} at "
                 f"eps={eps:.3g}; median logit margin {values['logit margin']:.1f}", values)


@checked
def checklist(model: Model, x: Images, y: Labels, *, eps: Eps, large_eps: Eps,
              surrogate: Model | None = None, norm: Norm = "linf", steps: Steps = 20,
              queries: AtLeastOne = 1000) -> list[Check]:
    """All the checks above at ``eps`` (and ``large_eps`` for the vanishing-accuracy check);
    the black-box check runs when a ``surrogate`` is given. Returns a list of :class:`Check`."""
    checks = [iterative_beats_single_step(model, x, y, eps=eps, norm=norm, steps=steps),
              accuracy_vanishes(model, x, y, eps=large_eps, norm=norm, steps=2 * steps),
              more_effort_saturates(model, x, y, eps=eps, norm=norm, steps=steps),
              gradient_free_not_stronger(model, x, y, eps=eps, norm=norm, steps=steps, queries=queries)]
    if surrogate is not None:
        checks.insert(2, black_box_weaker(model, surrogate, x, y, eps=eps, norm=norm, steps=steps))
    return checks
