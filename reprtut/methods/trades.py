"""TRADES (Zhang et al., 2019): trade clean accuracy against a smooth decision function."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import validate
from ..attacks import Threat
from .base import Objective, accuracy_metric, register


def kl_sum(logits: torch.Tensor, p_clean: torch.Tensor) -> torch.Tensor:
    """sum_b KL(p_clean_b || softmax(logits_b)) in fp32; logits (B, K), p_clean (B, K)
    probabilities. The loss the TRADES attack ascends (passed to the PGD loop as its loss,
    with p_clean in place of the labels)."""
    return F.kl_div(F.log_softmax(logits.float(), 1), p_clean, reduction="sum")


@register("trades")
class TRADES(Objective):
    """min_theta E[ CE(f(x), y) + beta * max_{||x' - x||_inf <= eps} KL(f(x) || f(x')) ]
    (Zhang et al., 2019, eq. 5).

    The inner maximisation is PGD-l_inf on the KL divergence from the clean prediction (not on
    the label's cross-entropy, so it needs no label), started at x plus Gaussian noise of std
    0.001 as in the authors' code; ``steps`` steps of ``step_size`` (default 2.5 eps / steps),
    held as ``self.threat`` (:class:`reprtut.attacks.Threat`, l_inf). beta = 6 is the paper's
    choice for MNIST and CIFAR-10 (1/lambda in its notation). eps in pixel units of [0, 1]
    images. Metrics: ``loss``, ``acc`` (clean), ``kl``.
    """

    def __init__(self, model, eps: float, beta: float = 6.0, steps: int = 10,
                 step_size: float | None = None):
        super().__init__(model)
        self.threat = Threat(eps, "linf", steps, step_size)
        self.beta = validate.real(beta, "beta", low=0.0)

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        """x' = argmax KL(f(x) || f(x')) by PGD-l_inf from x + N(0, 0.001^2) (no checks, no sync)."""
        with torch.no_grad():
            was = self.model.training
            self.model.eval()
            p_clean = F.softmax(self.model(x).float(), 1)                   # (B, K)
            self.model.train(was)
        start = (x + 0.001 * torch.randn_like(x)).clamp(0, 1)
        x_adv = self.threat.perturb(self.model, start, p_clean, loss_fn=kl_sum, random_start=False)
        # The ball is centred at x, not at the noisy start: project once more.
        eps = self.threat.eps
        return (x + (x_adv - x).clamp(-eps, eps)).clamp(0, 1)

    def loss(self, x, y):
        x_adv = self.perturb(x)
        logits, logits_adv = self.model(torch.cat([x, x_adv])).chunk(2)    # (B, K) each
        kl = kl_sum(logits_adv, F.softmax(logits.float(), 1)) / len(x)
        loss = F.cross_entropy(logits, y) + self.beta * kl
        return loss, {"loss": loss.detach(), "acc": accuracy_metric(logits, y), "kl": kl.detach()}
