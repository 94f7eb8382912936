"""Attacks the book uses but does not teach, from torchattacks, behind the book's signature.

torchattacks (Kim, 2020) pins ``requests~=2.25.1``; install it with
``pip install --no-deps torchattacks`` (its real needs, torch and scipy, come with reprtut).
Both wrappers take (model, x, y, *, eps, norm, ...), images in [0, 1], run on the model's
device with the model in eval mode and frozen parameters, and return x_adv in the eps-ball
and the box.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .. import validate
from . import norms
from .core import check_inputs, frozen

_TA_NORMS = {"linf": "Linf", "l2": "L2"}


def _torchattacks():
    try:
        import torchattacks
    except ImportError as err:  # say how to install it, since its pins break a plain install
        raise ImportError("AutoAttack and Square come from torchattacks: "
                          "pip install --no-deps torchattacks") from err
    return torchattacks


def _check(model, x, y, eps, norm, targeted, name) -> float:
    eps = check_inputs(x, y, eps, norm, model)
    if norm not in _TA_NORMS:
        raise ValueError(f"{name} supports norm 'linf' or 'l2', got {norm!r}")
    if validate.flag(targeted, "targeted"):
        raise ValueError(f"{name} is run untargeted here; targeted=True is not supported")
    return eps


def _run(attack, model, x, y, eps, norm) -> torch.Tensor:
    with frozen(model):
        x_adv = attack(x.detach(), y).to(x.device)
    # The library clips as we do; projecting again costs nothing and makes the contract exact.
    return (x + norms.project(x_adv - x, eps, norm)).clamp(0, 1).detach()


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float,
               norm: str = "linf", steps: int | None = None, step_size: float | None = None,
               random_start: bool = True, targeted: bool = False, n_classes: int | None = None,
               seed: int = 0) -> torch.Tensor:
    """AutoAttack, standard version (Croce & Hein, 2020): APGD-CE, APGD-T (9 targets), FAB-T
    and Square (5,000 queries), each run on the examples the previous ones did not fool.

    Parameter-free by design, so steps, step_size and random_start are ignored (kept for the
    common signature). x: (B, C, H, W) in [0, 1]; y: (B,); eps in the units of ``norm``
    ("linf" or "l2"). n_classes defaults to the model's number of outputs. Returns x_adv.
    """
    eps = _check(model, x, y, eps, norm, targeted, "autoattack")
    seed = validate.count(seed, "seed", min=0)
    k = validate.num_classes(model, x)
    n_classes = validate.count(n_classes, "n_classes", min=2, allow_none=True) or k
    if n_classes != k:
        raise ValueError(f"n_classes={n_classes} differs from the model's {k} outputs")
    if eps == 0:
        return x.detach().clone()
    attack = _torchattacks().AutoAttack(model, norm=_TA_NORMS[norm], eps=eps, version="standard",
                                        n_classes=n_classes, seed=seed)
    return _run(attack, model, x, y, eps, norm)


def square(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, norm: str = "linf",
           steps: int = 5000, step_size: float | None = None, random_start: bool = True,
           targeted: bool = False, p_init: float = 0.8, seed: int = 0) -> torch.Tensor:
    """Square attack (Andriushchenko et al., 2020): a decision-free, score-based black-box
    attack that changes random squares of the image and keeps a change when the margin loss
    drops. Uses the model's outputs only, never its gradients, so gradient masking cannot
    fool it.

    steps: the query budget per example (default 5,000, as in AutoAttack); p_init: the
    initial fraction of pixels changed. step_size and random_start are ignored. x: (B, C, H, W)
    in [0, 1]; y: (B,); eps in the units of ``norm`` ("linf" or "l2"). Returns x_adv.
    """
    eps = _check(model, x, y, eps, norm, targeted, "square")
    steps = validate.count(steps, "steps", min=1)
    p_init = validate.real(p_init, "p_init", low=0.0, high=1.0, low_open=True)
    seed = validate.count(seed, "seed", min=0)
    if eps == 0:
        return x.detach().clone()
    attack = _torchattacks().Square(model, norm=_TA_NORMS[norm], eps=eps, n_queries=steps,
                                    p_init=p_init, seed=seed)
    return _run(attack, model, x, y, eps, norm)
