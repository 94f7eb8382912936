"""Perceptual regularization: a decoder D on a classifier's latent, trained jointly with it.

The paper (*Perceptual Regularization: Visualizing and Learning Generalizable
Representations*) splits a classifier into a feature map F: X -> Z and a classifier
C: Z -> Y, so H = C∘F, and stacks a decoder D: Z -> X on the latent, so P = D∘F (the
model's *perception*) maps an image to what the latent remembers of it. This module holds

* the paper's three architectures (appendix B: MNIST, SVHN, CelebA) as :class:`PerceptualNet`;
* the objective CE(H(x), y) + λ ||x - P(x)||^2 (:class:`PerceptualRegularization`).

The section-5 baselines live beside it: multi-task training in :mod:`reprtut.methods.multitask`;
frozen-feature transfer is a spec that starts from a source model and freezes its F
(:func:`reprtut.recipes.transfer_spec`). The measurements of the book's chapter 3 are in
:mod:`reprtut.perceptual_analysis`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from ..data import INFO
from ..models import Classifier, Normalize, register as register_arch
from .. import validate
from .base import Objective, accuracy_metric, register

# ------------------------------------------------------------------------------ architectures

Layer = tuple[int, int, int]  # (output channels, stride, padding) of a 4x4 (de)convolution


class PerceptualNet(Classifier):
    """H = C∘F and P = D∘F (paper, section 2 and figure 1).

    Follows :class:`reprtut.models.Classifier`: ``features`` is the feature map F, images
    x (B, C, H, W) in [0, 1] -> latent z = R(x) (B, d), normalisation included; ``head`` is
    the classifier C, z -> logits (B, K), an MLP whose last layer is linear; ``decoder`` is D,
    z -> reconstruction (B, C, H, W) in (0, 1). ``model(x)`` is H(x), so attacks and
    evaluation treat it like any classifier. ``F``, ``C`` and ``D`` name the same modules.
    """

    def __init__(self, features: nn.Module, head: nn.Module, decoder: nn.Module, latent: int):
        super().__init__(features, head)
        self.decoder = decoder
        self.latent = latent

    F = property(lambda self: self.features)
    C = property(lambda self: self.head)
    D = property(lambda self: self.decoder)

    @property
    def dim(self) -> int:
        """Size d of the latent z = F(x)."""
        return self.latent

    def H(self, x: torch.Tensor) -> torch.Tensor:
        """Logits C(F(x)), (B, K)."""
        return self(x)

    def P(self, x: torch.Tensor) -> torch.Tensor:
        """The perception D(F(x)): (B, C, H, W) in [0, 1] -> (B, C, H, W) in (0, 1)."""
        return self.decoder(self.features(x))


def feature_map(info, layers: list[Layer], latent: int) -> nn.Sequential:
    """F: Normalize, then 4x4 convolutions with ReLU; the last one maps to a 1x1 map of
    ``latent`` channels, flattened to z (B, latent)."""
    mods: list[nn.Module] = [Normalize(info.mean, info.std)]
    c_in = info.shape[0]
    for c_out, stride, pad in layers:
        mods += [nn.Conv2d(c_in, c_out, 4, stride, pad), nn.ReLU()]
        c_in = c_out
    if c_in != latent:
        raise ValueError(f"the last convolution must have {latent} channels, not {c_in}")
    return nn.Sequential(*mods, nn.Flatten())  # (B, latent)


def decoder(latent: int, layers: list[Layer], mean: tuple[float, ...]) -> nn.Sequential:
    """D: z (B, latent) as a 1x1 map, then 4x4 transposed convolutions with ReLU, then a last
    4x4 one (stride 2, padding 1: it doubles the side) to one channel per entry of ``mean``,
    and a sigmoid.

    Appendix B lists a ReLU before the sigmoid as well; that would confine P(x) to
    [0.5, 1), where no black pixel can be drawn, so the last transposed convolution feeds the
    sigmoid directly. Its bias starts at the logit of each channel's mean pixel value, so P
    starts at the average brightness: started at 0.5, the first updates all push the mostly
    dark images' pixels down together, the sigmoid saturates and its gradient vanishes, and
    the decoder stays black for good (half of our MNIST runs did so).
    """
    mods: list[nn.Module] = [nn.Unflatten(1, (latent, 1, 1))]
    c_in = latent
    for c, stride, pad in layers:
        mods += [nn.ConvTranspose2d(c_in, c, 4, stride, pad), nn.ReLU()]
        c_in = c
    last = nn.ConvTranspose2d(c_in, len(mean), 4, 2, 1)
    with torch.no_grad():
        last.bias.copy_(torch.logit(torch.tensor(mean)))
    return nn.Sequential(*mods, last, nn.Sigmoid())


def mlp_head(latent: int, hidden: int, classes: int) -> nn.Sequential:
    """C: fully connected latent -> hidden, ReLU, linear hidden -> classes."""
    return nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def _scaled(layers: list[Layer], width: float) -> list[Layer]:
    return [(max(1, round(c * width)), s, p) for c, s, p in layers]


def _check_shape(info, hw: tuple[int, int], arch: str) -> None:
    if info.shape[1:] != hw:
        raise ValueError(f"{arch} takes {hw[0]}x{hw[1]} images; dataset {info.name!r} has "
                         f"{info.shape[1]}x{info.shape[2]}")


@register_arch("perceptual_mnist")
def perceptual_mnist(dataset: str = "mnist") -> PerceptualNet:
    """Appendix B.2 (tables d-f): 1x28x28 -> z in R^32 -> 28x28; C: 32 -> 64 -> K.

    F: conv 16 s2 p1 (14x14), 16 s2 p1 (7x7), 32 s1 p0 (4x4), 32 s1 p0 (1x1).
    D: deconv 32 s1 p0 (4x4), 32 s1 p0 (7x7), 16 s2 p1 (14x14), C s2 p1 (28x28), sigmoid.
    About 73k parameters.
    """
    info = INFO[dataset]
    _check_shape(info, (28, 28), "perceptual_mnist")
    F = feature_map(info, [(16, 2, 1), (16, 2, 1), (32, 1, 0), (32, 1, 0)], 32)
    D = decoder(32, [(32, 1, 0), (32, 1, 0), (16, 2, 1)], info.mean)
    return PerceptualNet(F, mlp_head(32, 64, len(info.classes)), D, 32)


@register_arch("perceptual_svhn")
def perceptual_svhn(dataset: str = "svhn") -> PerceptualNet:
    """Appendix B.3 (tables g-i): Cx32x32 -> z in R^64 -> Cx32x32; C: 64 -> 128 -> K.

    F: conv 16 s2 p1 (16x16), 32 s2 p1 (8x8), 64 s2 p1 (4x4), 64 s1 p0 (1x1).
    D: deconv 64 s1 p0 (4x4), 32 s2 p1 (8x8), 16 s2 p1 (16x16), C s2 p1 (32x32), sigmoid
    (the table's first deconvolution reads "128ch -> 64"; the latent has 64 channels).
    Also the architecture of the flanked-MNIST stand-in (C = 1). About 0.22M parameters.
    """
    info = INFO[dataset]
    _check_shape(info, (32, 32), "perceptual_svhn")
    F = feature_map(info, [(16, 2, 1), (32, 2, 1), (64, 2, 1), (64, 1, 0)], 64)
    D = decoder(64, [(64, 1, 0), (32, 2, 1), (16, 2, 1)], info.mean)
    return PerceptualNet(F, mlp_head(64, 128, len(info.classes)), D, 64)


@register_arch("perceptual_celeba")
def perceptual_celeba(dataset: str = "celeba_gender", width: float = 1.0) -> PerceptualNet:
    """Appendix B.1 (tables a-c), DCGAN-like: 3x64x64 -> z in R^128 -> 3x64x64; C: 128 -> 256 -> 2.

    F: conv 128, 256, 512, 1024 (all s2 p1: 32, 16, 8, 4), 128 s1 p0 (1x1).
    D: deconv 1024 s1 p0 (4x4), 512, 256, 128, 3 (all s2 p1: 8, 16, 32, 64), sigmoid.
    ``width`` scales the hidden channels (1.0 is the paper's 26M parameters; 0.125, 0.9M, is a
    CPU-sized version); the latent stays 128.
    """
    info = INFO[dataset]
    _check_shape(info, (64, 64), "perceptual_celeba")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    hidden = _scaled([(128, 2, 1), (256, 2, 1), (512, 2, 1), (1024, 2, 1)], width)
    F = feature_map(info, hidden + [(128, 1, 0)], 128)
    up = _scaled([(1024, 1, 0), (512, 2, 1), (256, 2, 1), (128, 2, 1)], width)
    D = decoder(128, up, info.mean)
    return PerceptualNet(F, mlp_head(128, 256, len(info.classes)), D, 128)


def _check_perceptual(model: nn.Module) -> None:
    if not isinstance(model, PerceptualNet):
        raise ValueError(f"this method needs a PerceptualNet (features F, head C, decoder D), "
                         f"got {type(model).__name__}; use a 'perceptual_*' architecture")


# ------------------------------------------------------------------------------ objectives


def reconstruction_error(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """||x - x_hat||^2 per image, summed over pixels and channels: (B, ...) -> (B,), in fp32."""
    return (x.float() - x_hat.float()).pow(2).flatten(1).sum(1)


def balanced_lambda(x: torch.Tensor, classes: int) -> float:
    """The λ at which the two terms of the objective start out comparable (section 4.2).

    ln(K) is the cross-entropy of a classifier that knows nothing; E||x - mean image||^2 is
    the reconstruction error of a decoder that knows only the mean image. Their ratio is the
    λ where both terms weigh the same; the paper finds the "delicate" regime near it.
    x: (N, C, H, W) in [0, 1], a sample of training images; classes: K >= 2.
    """
    classes = validate.count(classes, "classes", min=2)
    validate.images(x, "x")
    if x.dim() != 4 or len(x) < 2:
        raise ValueError(f"x must be a batch of at least 2 images (N, C, H, W), "
                         f"got {tuple(x.shape)}")
    return math.log(classes) / reconstruction_error(x, x.mean(0, keepdim=True)).mean().item()


@register("perceptual")
class PerceptualRegularization(Objective):
    """min_{P, H} E[ CE(H(x), y) + λ ||x - P(x)||^2 ]  (paper, eq. "Perceptual regularization").

    The squared error is summed over the pixels of each image (x in [0, 1]) and averaged over
    the batch. ``lam`` = λ >= 0 (λ = 0 trains H alone, the decoder gets no gradient).
    Metrics: loss, ce, rec (the mean ||x - P(x)||^2), acc; evaluation adds ``test_rec``.
    """

    def __init__(self, model: nn.Module, lam: float):
        super().__init__(model)
        _check_perceptual(model)
        lam = validate.real(lam, "lam (λ)", low=0.0)
        self.lam = float(lam)

    def loss(self, x, y):
        z = self.model.F(x)                               # (B, d)
        logits = self.model.C(z)                          # (B, K)
        rec = reconstruction_error(x, self.model.D(z)).mean()
        ce = nnf.cross_entropy(logits, y)
        loss = ce + self.lam * rec
        return loss, {"loss": loss.detach(), "ce": ce.detach(), "rec": rec.detach(),
                      "acc": accuracy_metric(logits, y)}

    @torch.no_grad()
    def evaluate(self, x, y, batch_size: int = 1000):
        metrics = super().evaluate(x, y, batch_size)
        rec = torch.zeros((), device=x.device)
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            rec += reconstruction_error(xb, self.model.P(xb)).sum()
        return {**metrics, "test_rec": rec / len(x)}
