"""What chapter 3 measures on perceptually regularized models: perceptions P(x), side and
centre reconstruction errors, the judge's agreement with P(x_adv), transfer matrices
(``book/03_perceptual_regularization.md``, ``03a_perceptual_transfer.md``,
``03b_perceptual_attacks.md``).

The models are :class:`reprtut.methods.perceptual.PerceptualNet` classifiers from the model
cache; the transfer specs come from :func:`reprtut.recipes.transfer_spec`.
"""

from __future__ import annotations

from typing import Annotated, Callable

import torch

from .cache import get
from .declare import Count, Function, Images, Instance, Model, checked
from .evaluate import predict
from .methods.perceptual import PerceptualNet
from .nn import Model as Classifier, frozen, input_channels, num_classes
from .validate import ArgumentTypeError

class _Perceptual(Model):
    """A perceptually regularized classifier (features F, head C, decoder D)."""
    def check(self, v, name, args, reads, specs):
        if not isinstance(super().check(v, name, args, reads, specs), PerceptualNet):
            raise ArgumentTypeError(f"{name} must be a PerceptualNet (features F, head C, decoder D; "
                                    f"a 'perceptual_*' architecture), got {type(v).__name__}")
        return v


# Such a classifier, whose classes and channels the checks read, and its image batches.
Perceptual = Annotated[PerceptualNet, _Perceptual(classes=num_classes, channels=input_channels)]
Batch = Annotated[torch.Tensor, Images(model="model")]

# Section 3 and appendix A: PGD in the l_inf ball, 100 iterations; eps = 0.2 on MNIST and
# 0.03 on CelebA (pixels in [0, 1]).
ATTACK_STEPS = 100
ATTACK_EPS = {"mnist": 0.2, "celeba": 0.03}


@checked
@torch.no_grad()
def perceive(model: Perceptual, x: Batch, batch_size: Annotated[int, Count(1)] = 500) -> torch.Tensor:
    """P(x) = D(F(x)) for images x (N, C, H, W) in [0, 1], in eval mode, ``batch_size`` at a
    time; returns (N, C, H, W) in (0, 1) on the model's device."""
    with frozen(model):
        return torch.cat([model.P(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


@checked
def region_errors(x: Annotated[torch.Tensor, Images()], x_hat: Annotated[torch.Tensor, Images(of="x")],
                  centre: Annotated[slice, Instance(slice)]) -> tuple[float, float]:
    """Mean squared error per pixel inside the columns ``centre`` and outside them.

    x, x_hat: (N, C, H, W) in [0, 1]; centre: a slice of the W axis (for the flanked-MNIST
    stand-in, ``reprtut.derived.CENTRE_COLS``). Returns (centre error, side error).
    """
    keep = torch.zeros(x.shape[-1], dtype=torch.bool, device=x.device)
    keep[centre] = True
    if keep.all() or not keep.any():
        raise ValueError(f"centre {centre} must leave columns on both sides of a width "
                         f"{x.shape[-1]}")
    err = (x.float() - x_hat.float()).pow(2)
    return err[..., keep].mean().item(), err[..., ~keep].mean().item()


@checked
def attention_ratio(model: Perceptual, x: Batch, centre: Annotated[slice, Instance(slice)]) -> float:
    """Side / centre reconstruction error of P on x (section 4): above 1 when the latent
    keeps the centre better than the sides, i.e. when the model attends to the centre."""
    centre_err, side_err = region_errors(x, perceive(model, x), centre)
    return side_err / centre_err


@checked
@torch.no_grad()
def perception_agreement(model: Perceptual, judge: Classifier,
                         x_adv: Annotated[torch.Tensor, Images(model="model")]) -> torch.Tensor:
    """Per image, whether an independent classifier ``judge`` reads P(x_adv) as the class
    that ``model`` predicts for x_adv (section 3): (N,) bool, on x_adv's device."""
    return predict(judge, perceive(model, x_adv)).argmax(1) == predict(model, x_adv).argmax(1)


@checked
def transfer_matrix(sources: Annotated[dict, Instance(dict)], targets: Annotated[dict, Instance(dict)],
                    make: Annotated[Callable, Function("a function make(source_spec, target_dataset) "
                                                       "-> ModelSpec such as recipes.transfer")],
                    ) -> torch.Tensor:
    """Test accuracy of C_T on the frozen F of every source for every target (figures 6-7).

    sources: row name -> source ModelSpec; targets: column name -> target dataset;
    make(source_spec, target_dataset) -> ModelSpec of the transfer (``recipes.transfer``).
    Each entry is trained once through the model cache. Returns (S, T) accuracies in [0, 1].
    """
    return torch.tensor([[get(make(spec, target), progress=False).history["test_acc"][-1]
                          for target in targets.values()] for spec in sources.values()])
