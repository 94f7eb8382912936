"""Adversarial training (Madry et al., 2018): minimise the loss at the worst perturbation."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..attacks import cross_entropy_sum, margin_loss_sum, pgd_steps
from .. import validate
from .base import Objective, accuracy_metric, register


# The inner objectives of PGD training: cross-entropy (Madry et al.) or the C&W margin
# (Kim et al., 2019, section 2.1 train against both).
INNER = {"xent": cross_entropy_sum, "cw": margin_loss_sum}


@register("pgd")
class PGDTraining(Objective):
    """min_theta E[ max_{||delta|| <= eps} CE(f_theta(x + delta), y) ]  (Madry et al., eq. 2.1).

    The inner maximisation is approximated by PGD with ``steps`` steps of ``step_size`` from a
    random start in the eps-ball of ``norm`` ("linf" or "l2"); the outer minimisation is the
    optimizer's step on the adversarial batch. ``eps`` is in pixel units of [0, 1] images
    (e.g. 0.3 for MNIST l_inf, 8/255 for CIFAR-10 l_inf, 0.5 for CIFAR-10 l_2).
    ``inner`` is the objective the attack ascends: "xent" (cross-entropy, the default) or "cw"
    (the C&W margin, :func:`reprtut.attacks.margin_loss_sum`); the outer loss is cross-entropy either way.
    The update uses the adversarial images only, never a mix with clean ones (as Madry et al.
    and Kim et al., appendix B.1, train).
    Metrics: loss and accuracy on the adversarial batch ("adv_acc").
    """

    def __init__(self, model, eps: float, norm: str = "linf", steps: int = 10,
                 step_size: float | None = None, inner: str = "xent"):
        super().__init__(model)
        # Checked once here: the training loop calls the attack without checks (no host sync).
        eps = validate.real(eps, "eps", low=0.0)
        if norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2' for PGD training, got {norm!r}")
        steps = validate.count(steps, "steps", min=1)
        step_size = validate.real(step_size, "step_size", low=0.0, low_open=True, allow_none=True)
        self.eps, self.norm, self.steps = eps, norm, steps
        self.step_size = step_size if step_size is not None else 2.5 * eps / steps
        self.inner = validate.choice(inner, "inner", INNER)

    def loss(self, x, y):
        x_adv = pgd_steps(self.model, x, y, eps=self.eps, norm=self.norm, steps=self.steps,
                    step_size=self.step_size, loss_fn=INNER[self.inner])
        logits = self.model(x_adv)
        loss = F.cross_entropy(logits, y)
        return loss, {"loss": loss.detach(), "adv_acc": accuracy_metric(logits, y)}
