"""Standard (natural) training: empirical risk minimisation with cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F

from .base import Objective, accuracy_metric, register


@register("standard")
class Standard(Objective):
    """min_theta E[ CE(f_theta(x), y) ] on clean images."""

    def loss(self, x, y):
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"loss": loss.detach(), "acc": accuracy_metric(logits, y)}
