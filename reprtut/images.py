"""The images of chapter 4 (robust representations) other than R's optimisations: seeds and
targets to optimise from and towards (grey noise, MNIST digits on a CIFAR-10 canvas,
kaleidoscopes; Engstrom et al., 2019, figs. 5, 6 and 15a), and measures between images
(pixel distance at a scale, the coarse share of a change, SSIM) with the display of signed
maps such as gradients. Images are (B, C, H, W) in [0, 1]; nothing here needs a model.
"""

from __future__ import annotations

from typing import Annotated, Sequence

import torch
import torch.nn.functional as F

from . import validate
from .declare import Count, Images, Real, Tensor, checked

# Standard deviation of the Gaussian noise around grey that seeds inversions and feature
# visualisations (the paper does not give it). Faint on purpose: a robust model is nearly
# blind to pixel noise, so its optimisation keeps whatever noise the seed starts with.
SEED_STD = 0.05


# ------------------------------------------------------------------------------ seeds and targets

@checked
def noise(n: Annotated[int, Count(1)], shape: Sequence[int] = (3, 32, 32), *,
          std: Annotated[float, Real(0)] = SEED_STD, generator: torch.Generator | None = None,
          device=None) -> torch.Tensor:
    """Gaussian seeds clip(0.5 + std * N(0, 1), 0, 1) of shape (n, *shape) (figs. 5, 6)."""
    shape = _shape(shape)
    z = torch.randn(n, *shape, generator=generator)
    return (0.5 + std * z).clamp(0, 1).to(device)


def _shape(shape) -> tuple[int, int, int]:
    if not hasattr(shape, "__len__") or len(shape) != 3:
        raise ValueError(f"shape must be (C, H, W), three positive integers, got {shape!r:.80}")
    return tuple(validate.count(s, f"shape[{j}]", min=1) for j, s in enumerate(shape))


@checked
def pad_to(x: Annotated[torch.Tensor, Images()], shape: Sequence[int] = (3, 32, 32)) -> torch.Tensor:
    """Out-of-distribution targets: images (B, c, h, w) centred on a black (C, H, W) canvas.

    Grey images (c = 1) are repeated over the C channels, e.g. MNIST digits (B, 1, 28, 28)
    -> (B, 3, 32, 32) for a CIFAR-10 model.
    """
    c, h, w = _shape(shape)
    if x.shape[1] not in (1, c) or x.shape[2] > h or x.shape[3] > w:
        raise ValueError(f"x must be (B, 1 or {c}, <= {h}, <= {w}), got {tuple(x.shape)}")
    top, left = (h - x.shape[2]) // 2, (w - x.shape[3]) // 2
    x = F.pad(x, (left, w - x.shape[3] - left, top, h - x.shape[2] - top))
    return x.expand(-1, c, -1, -1).contiguous()


@checked
def kaleidoscope(n: Annotated[int, Count(1)], size: Annotated[int, Count(2)] = 32,
                 cells: Annotated[int, Count(2)] = 4, *, generator: torch.Generator | None = None,
                 device=None) -> torch.Tensor:
    """Random kaleidoscope patterns (fig. 15a): out-of-distribution targets, (n, 3, size, size).

    Random colours on a ``cells`` x ``cells`` grid, smoothly upsampled to a quarter of the
    image, made symmetric about the diagonal and mirrored into the four quarters.
    """
    if size % 2:
        raise ValueError(f"size must be even, got {size}")
    q = torch.rand(n, 3, cells, cells, generator=generator)
    q = F.interpolate(q, size=size // 2, mode="bicubic", align_corners=True).clamp(0, 1)
    q = (q + q.transpose(2, 3)) / 2                                 # diagonal mirror
    top = torch.cat([q, q.flip(3)], dim=3)                          # (n, 3, size/2, size)
    return torch.cat([top, top.flip(2)], dim=2).to(device)


# ------------------------------------------------------------------------------ measures

@checked
def pixel_distance(x: Annotated[torch.Tensor, Tensor(4, floating=True)],
                   y: Annotated[torch.Tensor, Tensor(4, floating=True, like="x")],
                   pool: Annotated[int, Count(1)] = 1) -> torch.Tensor:
    """||x - y||_2 per image pair, (B, C, H, W) -> (B,), after averaging pool x pool blocks.

    pool = 1 is the plain pixel distance; pool = 4 compares 8x8 thumbnails of 32x32 images,
    their colours and layout without their texture.
    """
    if x.shape[2] % pool or x.shape[3] % pool:
        raise ValueError(f"pool: the height and width of x {tuple(x.shape)} must be divisible by "
                         f"pool={pool}")
    d = F.avg_pool2d(x - y, pool) if pool > 1 else x - y
    return d.flatten(1).norm(dim=1)


@checked
def coarse_share(d: Annotated[torch.Tensor, Tensor(4, floating=True)],
                 pool: Annotated[int, Count(1)] = 4) -> torch.Tensor:
    """Share of the energy of changes or gradients d (B, C, H, W) in their pool x pool block
    means, (B,) in [0, 1]: 1 for a change constant on each block, 0 for one that averages out
    in every block (a pixel-level checkerboard). Perceptually aligned changes are coarse."""
    blocks = pixel_distance(d, torch.zeros_like(d), pool) ** 2 * pool ** 2
    return blocks / d.flatten(1).pow(2).sum(1).clamp_min(1e-24)


@checked
def ssim(x: Annotated[torch.Tensor, Images(allow_double=True)],
         y: Annotated[torch.Tensor, Images(allow_double=True, of="x")], *,
         window: Annotated[int, Count(1)] = 7,
         sigma: Annotated[float, Real(0, low_open=True)] = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al., 2004) of image pairs, (B, C, H, W) in [0, 1] -> (B,).

    A Gaussian window (``window`` pixels, ``sigma``) over each channel, no padding, the
    constants (0.01)^2 and (0.03)^2 of the original paper; 1 means identical images. The
    7-pixel window (scikit-image's default) suits 32x32 images.
    """
    if min(x.shape[2:]) < window:
        raise ValueError(f"window: the images x {tuple(x.shape)} must be at least window={window} "
                         f"pixels a side")
    t = torch.arange(window, dtype=x.dtype, device=x.device) - (window - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    g = (g[:, None] * g[None, :] / g.sum() ** 2).expand(x.shape[1], 1, window, window)

    def blur(z):  # depthwise: each channel with the same window
        return F.conv2d(z, g, groups=x.shape[1])

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx ** 2, blur(y * y) - my ** 2, blur(x * y) - mx * my
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1)


@checked
def signed_image(g: Annotated[torch.Tensor, Tensor(4, floating=True)],
                 clip: Annotated[float, Real(0, low_open=True)] = 3.0) -> torch.Tensor:
    """Signed maps (B, C, H, W) shown as images in [0, 1]: 0.5 + g / (2 clip std(g)), clipped,
    per image (Tsipras et al.'s display of gradients: grey is 0)."""
    std = g.flatten(1).std(1).clamp_min(1e-12).view(-1, 1, 1, 1)
    return (0.5 + g / (2 * clip * std)).clamp(0, 1)
