"""What every attack shares: input checks, the losses and the loss gradient.

Attacks run the model inside :func:`reprtut.nn.frozen` (eval mode, no parameter gradients).
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from ..declare import Count, Real
from ..nn import input_channels, num_classes
from .norms import NORMS

# What the attacks' parameters accept (see reprtut.declare): a budget eps >= 0 in the units of
# the norm, a norm of NORMS, a number of steps >= 1 and a step size > 0.
Eps = Annotated[float, Real(0)]
Norm = Literal["linf", "l2", "l1"]
Steps = Annotated[int, Count(1)]
StepSize = Annotated[float, Real(0, low_open=True)]


_UNSET = object()


def check_inputs(x: torch.Tensor, y: torch.Tensor, eps=None, norm=_UNSET,
                 model: nn.Module | None = None, *, allow_none_eps: bool = False) -> float | None:
    """Raise ``ValueError``/``TypeError`` naming what is wrong with an attack's arguments;
    return eps as a Python float (numpy scalars and 0-d tensors are accepted).

    x: float (B, C, H, W), B >= 1, finite pixels in [0, 1] (float64 refused, see
    :mod:`reprtut.validate`); y: int64 (B,) in [0, K), K read from ``model`` when given;
    eps: finite and >= 0 (None allowed with ``allow_none_eps``); norm: a key of NORMS.
    Reads the batch's range back from the device once per attack call, never in its loop.
    """
    if model is not None:
        validate.module(model)
    validate.images(x, "x", check_range=False)
    validate.labels(y, x.shape[0], None, "y", check_range=False)
    validate.same_device("y", y, x)
    if model is not None:
        validate.channels(x, input_channels(model))
    k = num_classes(model, x) if model is not None else None
    validate.check_ranges(x, "x", y=y, num_classes=k)  # the one read back from the device
    if eps is not None or not allow_none_eps:
        eps = validate.real(eps, "eps", low=0.0)
    if norm is not _UNSET and norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; norm must be one of {', '.join(NORMS)}")
    return eps


def cross_entropy_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Summed (not averaged) cross-entropy in fp32, so each example's input gradient is its
    own and does not shrink with the batch size (which matters for fp16 gradients)."""
    return F.cross_entropy(logits.float(), y, reduction="sum")


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Carlini & Wagner's margin max_{i != y} Z_i - Z_y per example, in fp32: logits (B, K),
    y (B,) int64 -> (B,). Positive exactly when the example is misclassified."""
    z = logits.float()
    z_y = z.gather(1, y[:, None]).squeeze(1)                                  # (B,)
    z_other = z.scatter(1, y[:, None], float("-inf")).amax(1)                 # (B,)
    return z_other - z_y


def margin_loss_sum(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sum_b (max_{i != y_b} Z_bi - Z_b,y_b): the C&W surrogate objective (f_6 without the clamp
    at -kappa), summed like :func:`cross_entropy_sum`, to ascend. Unlike the cross-entropy it
    never saturates: the cross-entropy's gradient underflows to exactly 0 in fp32 once the
    logit margin exceeds about 100; the margin's never does. Returns a 0-d fp32 tensor."""
    return margin(logits, y).sum()


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn=cross_entropy_sum,
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(d loss / d x, logits) for a model already in its attack state; x (B, ...)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    (grad,) = torch.autograd.grad(loss_fn(logits, y), x)
    return grad, logits.detach()
