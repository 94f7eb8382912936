"""Accuracy, robust accuracy and the accuracy-vs-eps curve, batched on the model's device;
the normalized AUC of that curve (for fixed-budget and minimum-perturbation attacks alike),
minimum-perturbation statistics, white-box vs black-box transfer, instantaneous vs cumulative
accuracy over an attack's iterations, and where a loss gradient puts its energy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Callable, Sequence

import torch
import torch.nn as nn

from . import declare, validate
from .attacks.core import Eps, Norm, Steps, StepSize, cross_entropy_sum
from .attacks.gradient import pgd_steps
from .attacks.minimal import cw_l2, ddn, deepfool
from .attacks.norms import norm_of
from .declare import Count, Function, Real, Reals, Tensor, checked
from .nn import Images, Labels, Model, frozen, input_channels

Attack = Callable[..., torch.Tensor]
AttackFn = Annotated[Attack, Function("a function attack(model, x, y, *, eps, ...) such as "
                                      "reprtut.attacks.pgd")]
BatchSize = Annotated[int, Count(1)]

# Attacks that look for each example's smallest fooling perturbation (eps=None: unbounded);
# :func:`sweep` runs them once and reads the whole accuracy-vs-eps curve off the result.
MINIMUM_PERTURBATION = (deepfool, cw_l2, ddn)


@checked
@torch.no_grad()
def predict(model: Model, x: Images, batch_size: BatchSize = 1000) -> torch.Tensor:
    """Logits (N, K) of images x (N, C, H, W) in [0, 1], in eval mode."""
    with frozen(model):
        return torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])


@checked
def accuracy(model: Model, x: Images, y: Labels, batch_size: BatchSize = 1000) -> float:
    """Fraction of x classified as y; x (N, C, H, W) in [0, 1], y (N,) int64 in [0, K)."""
    return (predict(model, x, batch_size).argmax(1) == y).float().mean().item()


@checked
def perturb(model: Model, x: Images, y: Labels, attack: AttackFn, *,
            batch_size: BatchSize = 500, **kwargs) -> torch.Tensor:
    """Adversarial examples for all of x, ``batch_size`` at a time; kwargs go to ``attack``
    (a checked attack checks them at its first batch, without reading x again)."""
    return torch.cat([attack(model, x[i:i + batch_size], y[i:i + batch_size], **kwargs)
                      for i in range(0, len(x), batch_size)])


@checked
def robust_accuracy(model: Model, x: Images, y: Labels, attack: AttackFn, *,
                    batch_size: BatchSize = 500, **kwargs) -> float:
    """Accuracy on ``attack(model, x, y, **kwargs)``, e.g. ``robust_accuracy(m, x, y, pgd, eps=0.3)``."""
    return accuracy(model, perturb(model, x, y, attack, batch_size=batch_size, **kwargs), y)


@checked
def accuracy_vs_eps(model: Model, x: Images, y: Labels, attack: AttackFn,
                    eps_values: Annotated[Sequence[float], Reals(0)], **kwargs) -> list[float]:
    """Robust accuracy at each eps of ``eps_values`` (eps = 0 gives the clean accuracy)."""
    return [robust_accuracy(model, x, y, attack, eps=e, **kwargs) for e in eps_values]


def _reals(values, name: str, *, low: float | None = None, allow_inf: bool = False,
           allow_empty: bool = False) -> list[float]:
    """A non-empty sequence of real numbers as a list of floats, each checked."""
    if torch.is_tensor(values):
        values = values.flatten().tolist()
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise validate.ArgumentTypeError(f"{name} must be a sequence of numbers, got {values!r:.80}")
    out = [validate.real(v, f"{name}[{i}]", low=low, allow_inf=allow_inf) for i, v in enumerate(values)]
    if not out and not allow_empty:
        raise ValueError(f"{name} must hold at least one number, got an empty sequence")
    return out


# --------------------------------------------------------------- the area under the ε curve

@checked
def normalized_auc(eps_values: Annotated[Sequence[float], Reals(min_len=2, increasing=True)],
                   accuracies: Annotated[Sequence[float], Reals(0, 1, min_len=2)]) -> float:
    """Area under the accuracy-vs-eps curve divided by the eps range (AFD paper, table 2).

    Trapezoid rule over the swept eps values; the division makes a model that is always
    right score 1 and one that is always wrong score 0, whatever the units of eps. eps_values
    must be increasing (at least two of them) and accuracies in [0, 1], one per eps.
    """
    e = torch.tensor(eps_values, dtype=torch.float64)
    a = torch.tensor(accuracies, dtype=torch.float64)
    if e.shape != a.shape:
        raise ValueError(f"accuracies must hold one accuracy per eps, got {len(a)} for "
                         f"{len(e)} eps_values")
    return float(torch.trapezoid(a, e) / (e[-1] - e[0]))


@checked
def sweep(model: Model, x: Images, y: Labels,
          attacks: dict[str, tuple[Attack, Sequence[float], dict]]) -> dict[str, dict]:
    """Robust accuracy over an eps sweep for each attack, and its normalized AUC (AFD paper,
    table 2).

    attacks: name -> (attack, eps_values, kwargs), run in the dict's order. Returns name ->
    {"eps": [...], "accuracy": [...], "auc": float}. A fixed-budget attack runs once per eps.
    A minimum-perturbation attack (one of :data:`MINIMUM_PERTURBATION`: DeepFool, C&W, DDN)
    runs once, unbounded, through :func:`min_perturbation`: its accuracy at eps is the share of
    examples whose smallest fooling ||delta||_2 exceeds eps (:meth:`MinPerturbation.accuracy_at`),
    and its record also holds that per-example result under "min_perturbation".
    """
    if not isinstance(attacks, dict) or not attacks:
        raise validate.ArgumentTypeError(f"attacks must be a non-empty dict name -> (attack, "
                                         f"eps_values, kwargs), got {attacks!r:.80}")
    for name, entry in attacks.items():
        if not isinstance(entry, (tuple, list)) or len(entry) != 3 or not isinstance(entry[2], dict):
            raise validate.ArgumentTypeError(f"attacks[{name!r}] must be a tuple (attack, eps_values, "
                                             f"kwargs), got {entry!r:.80}")
        AttackFn.__metadata__[0].check(entry[0], f"attacks[{name!r}] attack", {}, None, {})
        _reals(entry[1], f"attacks[{name!r}] eps_values", low=0.0)
    out = {}
    for name, (attack, eps_values, kwargs) in attacks.items():
        if attack in MINIMUM_PERTURBATION:
            result = min_perturbation(model, x, y, attack, **kwargs)
            acc = result.accuracy_at(eps_values)
            extra = {"min_perturbation": result}
        else:
            acc = accuracy_vs_eps(model, x, y, attack, eps_values, **kwargs)
            extra = {}
        out[name] = {"eps": list(map(float, eps_values)), "accuracy": acc,
                     "auc": normalized_auc(eps_values, acc), **extra}
    return out


# ------------------------------------------------------------- minimum-perturbation statistics

@dataclass
class MinPerturbation:
    """Per-example results of a minimum-perturbation attack, all (N,) tensors on the CPU.

    norm: ||delta||_2 of the smallest fooling perturbation found; 0 for examples the model
    gets wrong already, inf where the attack failed. rho: ||delta||_2 / ||x||_2 (Sanyal et
    al., appendix D.2; the paper averages it over fooled examples). fooled: the prediction on
    x_adv differs from y.
    """

    norm: torch.Tensor
    rho: torch.Tensor
    fooled: torch.Tensor

    def accuracy_at(self, eps_values: Sequence[float]) -> list[float]:
        """Robust accuracy at each eps: the fraction of examples whose minimum perturbation is
        larger than eps (the accuracy of an attack restricted to the eps-ball)."""
        return [(self.norm > e).float().mean().item()
                for e in _reals(eps_values, "eps_values", low=0.0, allow_inf=True)]

    def summary(self) -> dict[str, float]:
        """Success rate, and median and mean of ||delta||_2 and rho over the fooled examples
        that the model classified correctly (norm > 0)."""
        moved = self.fooled & (self.norm > 0)
        n = self.norm[moved]
        r = self.rho[moved]
        nan = float("nan")
        return {"success_rate": self.fooled.float().mean().item(),
                "median_norm": n.median().item() if len(n) else nan,
                "mean_norm": n.mean().item() if len(n) else nan,
                "median_rho": r.median().item() if len(r) else nan,
                "mean_rho": r.mean().item() if len(r) else nan}


@checked
def min_perturbation(model: Model, x: Images, y: Labels, attack: AttackFn, *,
                     batch_size: BatchSize = 500, **kwargs) -> MinPerturbation:
    """Run a minimum-perturbation attack (``eps=None``) on x (N, C, H, W) in [0, 1] with labels
    y (N,) and return the per-example ||delta||_2, rho and success as a :class:`MinPerturbation`."""
    kwargs.setdefault("eps", None)
    x_adv = perturb(model, x, y, attack, batch_size=batch_size, **kwargs)
    fooled = predict(model, x_adv, batch_size).argmax(1) != y
    size = norm_of(x_adv - x, "l2")
    size = torch.where(fooled, size, torch.full_like(size, math.inf))
    size = torch.where(predict(model, x, batch_size).argmax(1) != y, torch.zeros_like(size), size)
    rho = size / norm_of(x, "l2").clamp_min(1e-12)
    return MinPerturbation(size.cpu(), rho.cpu(), fooled.cpu())


# --------------------------------------------------------------------- white box, black box

@checked
def transfer(target: Model, surrogate: Model, x: Annotated[torch.Tensor, declare.Images(model="target")],
             y: Annotated[torch.Tensor, declare.Labels("x", model="target")], attack: AttackFn, *,
             batch_size: BatchSize = 500, **kwargs) -> dict[str, float]:
    """White-box vs black-box (transfer) robust accuracy of ``target``.

    white_box: attack computed on the target itself; black_box: attack computed on the
    ``surrogate`` and the adversarial images shown to the target (Papernot et al., 2017; the
    AFD paper's BB columns, the low-rank paper's dashed curves). Also returns the clean
    accuracy. A black-box attack much stronger than the white-box one is a sign of gradient
    masking (see :mod:`reprtut.masking`).
    """
    validate.channels(x, input_channels(surrogate), "x")
    x_white = perturb(target, x, y, attack, batch_size=batch_size, **kwargs)
    x_black = perturb(surrogate, x, y, attack, batch_size=batch_size, **kwargs)
    return {"clean": accuracy(target, x, y), "white_box": accuracy(target, x_white, y),
            "black_box": accuracy(target, x_black, y)}


# ------------------------------------------------------ accuracy over the attack's iterations

@checked
def accuracy_over_iterations(model: Model, x: Images, y: Labels, *, eps: Eps, steps: Steps,
                             step_size: StepSize, norm: Norm = "linf", loss_fn=cross_entropy_sum,
                             batch_size: BatchSize = 500) -> tuple[list[float], list[float]]:
    """Instantaneous and cumulative accuracy of an iterative attack after k = 0..steps steps
    (Sanyal et al., appendix D.3), from one run of the PGD loop started at x.

    With y_a(x; k) the label after k steps: a_I(k) = mean[y_a(x; k) == y_a(x; 0)] and
    a_C(k) = mean[y_a(x; j) == y_a(x; 0) for every j <= k]. a_C never increases; a_I can, when
    an example that was fooled at some step is classified as before again later.
    loss_fn: ``cross_entropy_sum`` for Iter-FGSM, ``attacks.least_likely_loss`` for
    Iter-LL-FGSM. Returns two lists of steps + 1 floats.
    """
    preds = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        iterates: list[torch.Tensor] = []
        x_last = pgd_steps(model, xb, yb, eps=eps, norm=norm, steps=steps, step_size=step_size,
                           random_start=False, loss_fn=loss_fn,
                           on_step=lambda k, x_k, logits: iterates.append(x_k.detach()))
        # Each iterate's label is a verdict, read in fp32 (the search's logits may be bf16).
        seen = [predict(model, x_k).argmax(1) for x_k in [*iterates, x_last]]
        preds.append(torch.stack(seen, 1))                                # (b, steps + 1)
    same = torch.cat(preds) == torch.cat(preds)[:, :1]                    # (N, steps + 1)
    instantaneous = same.float().mean(0)
    cumulative = same.int().cummin(1).values.float().mean(0)
    return instantaneous.tolist(), cumulative.tolist()


# ----------------------------------------------------------- where the loss gradient points

@checked
def stroke_energy_share(grad: Annotated[torch.Tensor, Tensor(4, floating=True, like="x")],
                        x: Annotated[torch.Tensor, declare.Images()],
                        threshold: Annotated[float, Real(0, 1, high_open=True)] = 0.1) -> float:
    """The share of a gradient's energy sum(grad²) that falls on the strokes of a digit, the
    pixels where x > ``threshold``, averaged over the batch (chapter 1, "What the loss
    gradient sees"; Tsipras et al., 2019).

    grad and x: (B, C, H, W) of one shape, x in [0, 1] (the images whose gradients these
    are). A gradient spread evenly over the image scores the strokes' share of the pixels; one
    on the strokes only scores 1. An image whose gradient is exactly 0 has no share (NaN).
    """
    validate.same_device("grad", grad, x)
    g2 = grad.pow(2)                                                          # (B, C, H, W)
    on_strokes = (g2 * (x > threshold)).flatten(1).sum(1)                     # (B,)
    return (on_strokes / g2.flatten(1).sum(1)).mean().item()
