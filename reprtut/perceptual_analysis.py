"""What chapter 3 measures on perceptually regularized models: perceptions P(x), side and
centre reconstruction errors, the judge's agreement with P(x_adv), transfer matrices
(``book/03_perceptual_regularization.md``, ``03a_perceptual_transfer.md``,
``03b_perceptual_attacks.md``).

The models are :class:`reprtut.methods.perceptual.PerceptualNet` classifiers from the model
cache; the transfer specs come from :func:`reprtut.recipes.transfer_spec`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .cache import get
from .evaluate import predict
from .methods.perceptual import PerceptualNet, _check_perceptual
from .nn import frozen

# Section 3 and appendix A: PGD in the l_inf ball, 100 iterations; eps = 0.2 on MNIST and
# 0.03 on CelebA (pixels in [0, 1]).
ATTACK_STEPS = 100
ATTACK_EPS = {"mnist": 0.2, "celeba": 0.03}


@torch.no_grad()
def perceive(model: PerceptualNet, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """P(x) = D(F(x)) for images x (N, C, H, W) in [0, 1], in eval mode, ``batch_size`` at a
    time; returns (N, C, H, W) in (0, 1) on the model's device."""
    _check_perceptual(model)
    with frozen(model):
        return torch.cat([model.P(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def region_errors(x: torch.Tensor, x_hat: torch.Tensor, centre: slice) -> tuple[float, float]:
    """Mean squared error per pixel inside the columns ``centre`` and outside them.

    x, x_hat: (N, C, H, W) in [0, 1]; centre: a slice of the W axis (for the flanked-MNIST
    stand-in, ``reprtut.derived.CENTRE_COLS``). Returns (centre error, side error).
    """
    if x.shape != x_hat.shape or x.dim() != 4:
        raise ValueError(f"x and x_hat must be image batches of one shape, got {tuple(x.shape)} "
                         f"and {tuple(x_hat.shape)}")
    keep = torch.zeros(x.shape[-1], dtype=torch.bool, device=x.device)
    keep[centre] = True
    if keep.all() or not keep.any():
        raise ValueError(f"centre {centre} must leave columns on both sides of a width "
                         f"{x.shape[-1]}")
    err = (x.float() - x_hat.float()).pow(2)
    return err[..., keep].mean().item(), err[..., ~keep].mean().item()


def attention_ratio(model: PerceptualNet, x: torch.Tensor, centre: slice) -> float:
    """Side / centre reconstruction error of P on x (section 4): above 1 when the latent
    keeps the centre better than the sides, i.e. when the model attends to the centre."""
    centre_err, side_err = region_errors(x, perceive(model, x), centre)
    return side_err / centre_err


@torch.no_grad()
def perception_agreement(model: PerceptualNet, judge: nn.Module,
                         x_adv: torch.Tensor) -> torch.Tensor:
    """Per image, whether an independent classifier ``judge`` reads P(x_adv) as the class
    that ``model`` predicts for x_adv (section 3): (N,) bool, on x_adv's device."""
    return predict(judge, perceive(model, x_adv)).argmax(1) == predict(model, x_adv).argmax(1)


def transfer_matrix(sources: dict, targets: dict, make) -> torch.Tensor:
    """Test accuracy of C_T on the frozen F of every source for every target (figures 6-7).

    sources: row name -> source ModelSpec; targets: column name -> target dataset;
    make(source_spec, target_dataset) -> ModelSpec of the transfer (``recipes.transfer``).
    Each entry is trained once through the model cache. Returns (S, T) accuracies in [0, 1].
    """
    return torch.tensor([[get(make(spec, target), progress=False).history["test_acc"][-1]
                          for target in targets.values()] for spec in sources.values()])
