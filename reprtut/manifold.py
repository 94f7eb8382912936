"""The image manifold, approximated by a VAE-GAN (Kim, Seo & Jeon, 2019, section 2.1 and
appendix A.3), and the distance of an image to it.

* :func:`project` π(x) = dec(enc(x)) and :func:`distance` d_π(x) = ||x - π(x)||_2;
* :func:`adversarial_distances`, section 2.1's d_π of adversarial examples, and
  :func:`fooled_perturbations`, the ||δ|| those examples used.

The VAE-GAN itself (:class:`VAEGAN`, its networks, and the objective that trains it,
:class:`~reprtut.methods.vaegan.VAEGANTraining`) is :mod:`reprtut.methods.vaegan`. Images are
in [0, 1].
"""

from __future__ import annotations

from typing import Annotated

import torch

from .attacks import pgd
from .declare import Count, Images, Instance, Real, checked
from .methods.vaegan import VAEGAN
from .nn import Images as ModelImages, Labels, Model, frozen

VAE = Annotated[VAEGAN, Instance(VAEGAN)]
BatchSize = Annotated[int, Count(1)]

__all__ = ["VAEGAN", "project", "distance", "adversarial_distances", "fooled_perturbations"]


@checked
@torch.no_grad()
def project(vae: VAE, x: Annotated[torch.Tensor, Images()], batch_size: BatchSize = 500) -> torch.Tensor:
    """π(x) = dec(enc(x)) (section 2.1), with the encoder's mean; x (B, C, H, W) in [0, 1]
    -> (B, C, H, W) in (0, 1) on x's device. The VAE-GAN is used in eval mode."""
    if tuple(x.shape[1:]) != (vae.channels, vae.size, vae.size):
        raise ValueError(f"x must be images of shape (B, {vae.channels}, {vae.size}, {vae.size}) "
                         f"for this VAE-GAN, got {tuple(x.shape)}")
    was = vae.training
    vae.eval()
    try:
        return torch.cat([vae(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        vae.train(was)


@checked
def distance(vae: VAE, x: Annotated[torch.Tensor, Images()], batch_size: BatchSize = 500) -> torch.Tensor:
    """d_π(x) = ||x - π(x)||_2 per image (section 2.1): x (B, C, H, W) in [0, 1] -> (B,) >= 0."""
    return (x - project(vae, x, batch_size)).flatten(1).norm(dim=1)


@checked
def adversarial_distances(model: Model, vae: VAE, x: ModelImages, y: Labels, *,
                          eps: Annotated[float, Real(0)] = 6.0, steps: Annotated[int, Count(1)] = 40,
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Section 2.1's measurement: d_π of l2 PGD adversarial examples that maximise the
    cross-entropy in the ball of ``eps`` (the paper's 12 on images in [-1, 1], 6 on the
    book's [0, 1]; ``steps`` steps of 2.5 eps / steps from x itself), attacks that left the
    prediction unchanged removed.

    x (B, C, H, W) in [0, 1], y (B,) -> (d_π (M,) of the M successful attacks, x_adv (B, ...));
    M = 0 (an empty d_π) when no attack succeeded.
    """
    x_adv = pgd(model, x, y, eps=eps, norm="l2", steps=steps, random_start=False)
    with torch.no_grad():
        fooled = model(x_adv).argmax(1) != y
    if not bool(fooled.any()):  # nothing to measure: an empty result, not an error
        return x.new_zeros(0), x_adv
    return distance(vae, x_adv[fooled]), x_adv


@checked
def fooled_perturbations(model: Model, x: ModelImages,
                         x_adv: Annotated[torch.Tensor, Images(model="model", of="x")],
                         y: Labels) -> torch.Tensor:
    """||x_adv - x||_2 of the attacks that changed the prediction, in the order of
    :func:`adversarial_distances`' d_π: x, x_adv (B, C, H, W) in [0, 1], y (B,) -> (M,).
    d_π grows with the perturbation's length, so models are compared at the ||δ|| their
    attacks actually used (d_π / ||δ||)."""
    with torch.no_grad(), frozen(model):
        fooled = model(x_adv).argmax(1) != y
    return (x_adv - x)[fooled].flatten(1).norm(dim=1)


@checked
def edge_ratio(vae: VAE, x: Annotated[torch.Tensor, Images()]) -> float:
    """How sharp the projections are: the mean absolute difference between neighbouring
    pixels of π(x) over that of x, x (B, C, H, W) in [0, 1] -> a float >= 0 (1: as sharp
    as the images; well below 1: blurred)."""
    p = project(vae, x)

    def edges(v):  # mean |horizontal| + |vertical| neighbour difference
        return (v.diff(dim=-1).abs().mean() + v.diff(dim=-2).abs().mean()).item()

    return edges(p) / max(edges(x), 1e-12)
