"""Adversarial training (Madry et al., 2018): minimise the loss at the worst perturbation."""

from __future__ import annotations

import torch.nn.functional as F

from ..attacks import Threat
from .base import Objective, accuracy_metric, register


@register("pgd")
class PGDTraining(Objective):
    """min_theta E[ max_{||delta|| <= eps} CE(f_theta(x + delta), y) ]  (Madry et al., eq. 2.1).

    The inner maximisation is approximated by PGD with ``steps`` steps of ``step_size`` from a
    random start in the eps-ball of ``norm`` ("linf" or "l2"); the outer minimisation is the
    optimizer's step on the adversarial batch. ``eps`` is in pixel units of [0, 1] images
    (e.g. 0.3 for MNIST l_inf, 8/255 for CIFAR-10 l_inf, 0.5 for CIFAR-10 l_2).
    ``loss`` is the objective the attack ascends: "xent" (cross-entropy, the default) or
    "margin" (the C&W margin, :func:`reprtut.attacks.margin_loss_sum`); the outer loss is
    cross-entropy either way. The budget is held and checked as ``self.threat``
    (:class:`reprtut.attacks.Threat`; step_size None means 2.5 eps / steps).
    The update uses the adversarial images only, never a mix with clean ones (as Madry et al.
    and Kim et al., appendix B.1, train).
    Metrics: loss and accuracy on the adversarial batch ("adv_acc").
    """

    def __init__(self, model, eps: float, norm: str = "linf", steps: int = 10,
                 step_size: float | None = None, loss: str = "xent"):
        super().__init__(model)
        # Checked once here: the training loop calls the attack without checks (no host sync).
        self.threat = Threat(eps, norm, steps, step_size, loss)
        if self.threat.norm not in ("linf", "l2"):
            raise ValueError(f"norm must be 'linf' or 'l2' for PGD training, got {norm!r}")

    def loss(self, x, y):
        x_adv = self.threat.perturb(self.model, x, y)
        logits = self.model(x_adv)
        loss = F.cross_entropy(logits, y)
        return loss, {"loss": loss.detach(), "adv_acc": accuracy_metric(logits, y)}
