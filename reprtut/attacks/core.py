"""What every attack shares: input checks, a frozen-model context, the loss gradient."""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .norms import NORMS


def check_inputs(x: torch.Tensor, y: torch.Tensor, eps: float | None = None,
                 norm: str | None = None) -> None:
    """Raise ``ValueError`` saying what is wrong with an attack's arguments.

    x: float (B, ...) in [0, 1]; y: int64 (B,); eps: finite and >= 0; norm: a key of NORMS.
    The range check reads two numbers back from the device once per attack call.
    """
    if not torch.is_tensor(x) or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor of images in [0, 1], got {type(x).__name__} "
                         f"{getattr(x, 'dtype', '')}")
    if x.dim() < 2:
        raise ValueError(f"x must be a batch (B, ...), got shape {tuple(x.shape)}")
    if not torch.is_tensor(y) or y.shape != (x.shape[0],):
        shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
        raise ValueError(f"y must be a tensor of {x.shape[0]} labels (shape ({x.shape[0]},)) to "
                         f"match x of shape {tuple(x.shape)}, got {shape}")
    if y.dtype != torch.long:
        raise ValueError(f"y must hold int64 class indices, got {y.dtype}")
    lo, hi = torch.aminmax(x.detach())
    if lo < 0 or hi > 1:
        raise ValueError(f"pixels must lie in [0, 1] (normalisation belongs inside the model), "
                         f"got values in [{lo.item():.3g}, {hi.item():.3g}]")
    if eps is not None and (not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0):
        raise ValueError(f"eps must be a finite number >= 0, got {eps!r}")
    if norm is not None and norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; choose one of {', '.join(NORMS)}")


@contextlib.contextmanager
def frozen(model: nn.Module):
    """Eval mode and no parameter gradients inside the block; both restored on exit.

    Attacks differentiate with respect to the input only: freezing the parameters skips their
    gradients (about a third of the backward pass), and eval mode keeps batch-norm statistics
    and dropout out of the attack.
    """
    was_training = model.training
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        model.train(was_training)


def cross_entropy_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed (not averaged) cross-entropy in fp32, so each example's input gradient is its
    own and does not shrink with the batch size (which matters for fp16 gradients)."""
    return F.cross_entropy(logits.float(), y, reduction="sum")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn=cross_entropy_sum,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(d loss / d x, logits) for a model already in its attack state; x (B, ...)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    (grad,) = torch.autograd.grad(loss_fn(logits, y), x)
    return grad, logits.detach()
