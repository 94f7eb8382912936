"""Accuracy, robust accuracy and the accuracy-vs-eps curve, batched on the model's device."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn as nn

from .attacks.core import frozen

Attack = Callable[..., torch.Tensor]


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits (N, K) of images x (N, C, H, W) in [0, 1], in eval mode."""
    with frozen(model):
        return torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of x classified as y; x (N, C, H, W) in [0, 1], y (N,)."""
    return (predict(model, x, batch_size).argmax(1) == y).float().mean().item()


def perturb(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack, *,
            batch_size: int = 500, **kwargs) -> torch.Tensor:
    """Adversarial examples for all of x, ``batch_size`` at a time; kwargs go to ``attack``."""
    return torch.cat([attack(model, x[i:i + batch_size], y[i:i + batch_size], **kwargs)
                      for i in range(0, len(x), batch_size)])


def robust_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack, *,
                    batch_size: int = 500, **kwargs) -> float:
    """Accuracy on ``attack(model, x, y, **kwargs)``, e.g. ``robust_accuracy(m, x, y, pgd, eps=0.3)``."""
    return accuracy(model, perturb(model, x, y, attack, batch_size=batch_size, **kwargs), y)


def accuracy_vs_eps(model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack: Attack,
                    eps_values: Sequence[float], **kwargs) -> list[float]:
    """Robust accuracy at each eps of ``eps_values`` (eps = 0 gives the clean accuracy)."""
    return [robust_accuracy(model, x, y, attack, eps=float(e), **kwargs) for e in eps_values]
