"""The threat model of PGD training: the budget of the inner maximisation, checked once.

``Threat(eps, norm, steps, step_size, loss)`` is what PGD adversarial training, TRADES, AFD
and its l2 feature-matching ablation perturb their batches with. Its checks run when it is
built (at an objective's construction), so :meth:`Threat.perturb` runs the PGD loop
:func:`~reprtut.attacks.pgd_steps` without checks and without a host sync, on the batches of
the training loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import validate
from .core import cross_entropy_sum, margin_loss_sum
from .gradient import pgd_steps
from .norms import NORMS, default_step_size

# The inner losses PGD can ascend: the cross-entropy (Madry et al., 2018) or the C&W logit
# margin (Carlini & Wagner, 2017; Kim et al., 2019, section 2.1, train against both).
LOSSES = {"xent": cross_entropy_sum, "margin": margin_loss_sum}


@dataclass(frozen=True)
class Threat:
    """A PGD budget: ``steps`` steps of ``step_size`` in the eps-ball of ``norm``.

    eps: radius >= 0 in pixel units of [0, 1] images (0.3 for MNIST l_inf, 8/255 for
        CIFAR-10 l_inf, 0.5 for CIFAR-10 l_2); eps = 0 leaves images unchanged.
    norm: "linf" (default), "l2" or "l1" (see :mod:`reprtut.attacks.norms`).
    steps: number of PGD iterations K >= 1 (default 10).
    step_size: step length alpha > 0 in the units of ``norm``; None (default) means
        2.5 eps / steps (Madry et al.), resolved in :attr:`alpha`.
    loss: what the attack ascends, "xent" (cross-entropy, the default) or "margin" (the C&W
        margin, :func:`reprtut.attacks.margin_loss_sum`).

    Fields are checked by :mod:`reprtut.validate` when the threat is built (a ``ValueError``
    or ``TypeError`` naming the field and its value) and stored as Python numbers, so a
    threat is hashable and ``dataclasses.asdict`` gives a JSON-serialisable dict.
    """

    eps: float
    norm: str = "linf"
    steps: int = 10
    step_size: float | None = None
    loss: str = "xent"

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: the checked values replace the given ones once
        set_(self, "eps", validate.real(self.eps, "eps", low=0.0))
        set_(self, "norm", validate.choice(self.norm, "norm", NORMS))
        set_(self, "steps", validate.count(self.steps, "steps", min=1))
        set_(self, "step_size", validate.real(self.step_size, "step_size", low=0.0,
                                              low_open=True, allow_none=True))
        set_(self, "loss", validate.choice(self.loss, "loss", LOSSES))

    def check_fits(self, shape: tuple[int, ...]) -> None:
        """Raise unless the budget fits images of ``shape`` (C, H, W) in [0, 1]: an l_p ball
        whose radius exceeds the box's l_p diameter (1 for l_inf, sqrt(C H W) for l_2, C H W
        for l_1) holds the whole box, which says eps is in other units (8, not 8/255)."""
        d = math.prod(shape)
        diameter = {"linf": 1.0, "l2": math.sqrt(d), "l1": float(d)}[self.norm]
        if self.eps > diameter:
            raise ValueError(f"eps={self.eps:g} exceeds the {self.norm} diameter {diameter:g} of "
                             f"[0, 1] images of shape {tuple(shape)}; eps is in pixel units of "
                             f"[0, 1] (e.g. 8/255, not 8)")

    @property
    def alpha(self) -> float:
        """The step length: ``step_size``, or 2.5 eps / steps when it is None."""
        return default_step_size(self.eps, self.steps) if self.step_size is None else self.step_size

    @property
    def loss_fn(self):
        """The summed loss the attack ascends, ``loss_fn(logits (B, K), y (B,)) -> 0-d``."""
        return LOSSES[self.loss]

    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss_fn=None,
                random_start: bool = True) -> torch.Tensor:
        """PGD in this threat's ball: x (B, C, H, W) in [0, 1], y (B,) (or what ``loss_fn``
        takes in its place) -> x_adv of x's shape and device, within eps of x and in [0, 1].

        ``loss_fn`` replaces the threat's loss (TRADES ascends a KL divergence);
        ``random_start`` starts from a uniform point of the ball (default) or from x. The
        inputs are not checked (the training loop's form: no host sync)."""
        return pgd_steps(model, x, y, eps=self.eps, norm=self.norm, steps=self.steps,
                         step_size=self.alpha, random_start=random_start,
                         loss_fn=self.loss_fn if loss_fn is None else loss_fn)
