"""The VAE-GAN of Kim, Seo & Jeon (2019), appendix A.3: its networks and its training objective.

* :class:`VAEGAN` — encoder ``enc``, decoder ``dec`` and discriminator ``disc`` (Larsen et
  al., 2016); registered as the architecture ``"vaegan"`` so that the model cache builds it.
* :class:`VAEGANTraining` — the ``"vaegan"`` objective: three optimizers (encoder, decoder,
  discriminator) stepped by the one training loop, with the paper's l1 reconstruction in
  place of Larsen et al.'s discriminator-feature loss.

Images are in [0, 1] everywhere, as in the rest of the book; the networks see them mapped to
[-1, 1] (the paper's range), and the decoder's sigmoid is the paper's tanh moved to [0, 1].
What the trained VAE-GAN is for, the manifold projection π(x) and the distance d_π(x), is
:mod:`reprtut.manifold`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .. import validate
from ..data import INFO
from ..models import register as register_arch
from .base import Metrics, Objective, register


def _down(c_in: int, c_out: int, bn: bool = True) -> list[nn.Module]:
    # 4x4 convolution of stride 2: halves the side (28 -> 14 -> 7 -> 3).
    return [nn.Conv2d(c_in, c_out, 4, 2, 1), *([nn.BatchNorm2d(c_out)] if bn else []), nn.ReLU()]


def _up(c_in: int, c_out: int) -> list[nn.Module]:
    # 4x4 transposed convolution of stride 2: doubles the side (7 -> 14 -> 28).
    return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]


def _mnist_networks(c: int, zdim: int, w: int, hidden: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Encoder, decoder and discriminator for 28x28 images: Larsen et al.'s decoder and
    discriminator (appendix A.3, MNIST / FMNIST), widths scaled by ``w`` (the paper: 64)."""
    enc = nn.Sequential(
        *_down(c, w), *_down(w, 2 * w), *_down(2 * w, 4 * w),            # (B, 4w, 3, 3)
        nn.Flatten(), nn.Linear(4 * w * 9, 2 * zdim), nn.BatchNorm1d(2 * zdim))
    dec = nn.Sequential(
        nn.Linear(zdim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, 4 * w * 49), nn.BatchNorm1d(4 * w * 49), nn.ReLU(),
        nn.Unflatten(1, (4 * w, 7, 7)),
        *_up(4 * w, w),                                                   # (B, w, 14, 14)
        nn.ConvTranspose2d(w, c, 4, 2, 1), nn.Sigmoid())                  # (B, C, 28, 28)
    disc = nn.Sequential(
        *_down(c, w // 2, bn=False), *_down(w // 2, 2 * w), *_down(2 * w, 4 * w),
        nn.Flatten(), nn.Linear(4 * w * 9, hidden // 2), nn.BatchNorm1d(hidden // 2),
        nn.ReLU(), nn.Linear(hidden // 2, 1))
    return enc, dec, disc


def _sn_conv(c_in: int, c_out: int, k: int, s: int) -> list[nn.Module]:
    # Miyato et al.'s discriminator block: a spectrally normalised convolution, leaky ReLU 0.1.
    return [spectral_norm(nn.Conv2d(c_in, c_out, k, s, 1)), nn.LeakyReLU(0.1)]


def _cifar_networks(c: int, zdim: int, w: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    """Encoder, decoder and discriminator for 32x32 images (appendix A.3, CIFAR-10): the common
    encoder; Miyato et al.'s decoder (dense to a 4x4 map of 8w channels, three stride-2
    transposed convolutions, a 3x3 convolution to the image) and spectrally normalised
    discriminator (seven convolutions, 3x3 stride 1 and 4x4 stride 2 in turn). The paper's
    w is 64 (the dense layer has 8192 = 4 * 4 * 512 units)."""
    enc = nn.Sequential(
        *_down(c, w), *_down(w, 2 * w), *_down(2 * w, 4 * w),            # (B, 4w, 4, 4)
        nn.Flatten(), nn.Linear(4 * w * 16, 2 * zdim), nn.BatchNorm1d(2 * zdim))
    dec = nn.Sequential(
        nn.Linear(zdim, 8 * w * 16), nn.Unflatten(1, (8 * w, 4, 4)),
        *_up(8 * w, 4 * w), *_up(4 * w, 2 * w), *_up(2 * w, w),           # (B, w, 32, 32)
        nn.Conv2d(w, c, 3, 1, 1), nn.Sigmoid())                           # (B, C, 32, 32)
    disc = nn.Sequential(
        *_sn_conv(c, w, 3, 1), *_sn_conv(w, w, 4, 2),                     # (B, w, 16, 16)
        *_sn_conv(w, 2 * w, 3, 1), *_sn_conv(2 * w, 2 * w, 4, 2),         # (B, 2w, 8, 8)
        *_sn_conv(2 * w, 4 * w, 3, 1), *_sn_conv(4 * w, 4 * w, 4, 2),     # (B, 4w, 4, 4)
        *_sn_conv(4 * w, 8 * w, 3, 1),
        nn.Flatten(), spectral_norm(nn.Linear(8 * w * 16, 1)))
    return enc, dec, disc


class VAEGAN(nn.Module):
    """Encoder, decoder and discriminator of appendix A.3, for 28x28 (MNIST) or 32x32
    (CIFAR-10) images.

    enc: x (B, C, H, W) in [0, 1] -> (mu, logvar), each (B, zdim); three 4x4 stride-2
    convolutions (width, 2 width, 4 width channels) with batch norm, then a dense layer to
    2 zdim with batch norm (the paper's widths are 64, 128, 256: ``width=64``).
    dec: z (B, zdim) -> image (B, C, H, W) in (0, 1). disc: image -> logit (B,) of "real".
    28x28: Larsen et al.'s decoder (dense ``hidden`` and dense to a 7x7 map, two stride-2
    transposed convolutions) and discriminator; 32x32: Miyato et al.'s (``hidden`` unused).
    ``forward(x)`` is the projection π(x) = dec(mu(x)).
    """

    def __init__(self, channels: int = 1, zdim: int = 10, width: int = 64, hidden: int = 1024,
                 size: int = 28):
        super().__init__()
        self.zdim, self.channels, self.size = zdim, channels, size
        if size == 28:
            self.enc, self.dec, self.disc = _mnist_networks(channels, zdim, width, hidden)
        elif size == 32:
            self.enc, self.dec, self.disc = _cifar_networks(channels, zdim, width)
        else:
            raise ValueError(f"size must be 28 or 32, got {size!r}")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z | x), each (B, zdim); x (B, C, H, W) in [0, 1]."""
        h = self.enc(2 * x - 1)
        return h[:, :self.zdim], h[:, self.zdim:]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in (0, 1) from latents (B, zdim)."""
        return self.dec(z)

    def critic(self, x: torch.Tensor) -> torch.Tensor:
        """The discriminator's logit (B,) that x is a real image."""
        return self.disc(2 * x - 1).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)[0])


@register_arch("vaegan")
def vaegan(dataset: str = "mnist", zdim: int = 10, width: int = 64, hidden: int = 1024) -> VAEGAN:
    """The VAE-GAN of appendix A.3 for ``dataset``: 28x28 images (MNIST; zdim 10 in the
    paper) or 32x32 images (CIFAR-10; zdim 128)."""
    if not isinstance(dataset, str) or dataset not in INFO:
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of {', '.join(INFO)}")
    c, h, w = INFO[dataset].shape
    if (h, w) not in ((28, 28), (32, 32)):
        raise ValueError(f"the VAE-GAN takes 28x28 or 32x32 images, dataset {dataset!r} has {h}x{w}")
    return VAEGAN(c, validate.count(zdim, "zdim", min=1), validate.count(width, "width", min=2),
                  validate.count(hidden, "hidden", min=2), size=h)


@register("vaegan")
class VAEGANTraining(Objective):
    """VAE-GAN training (Larsen et al., 2016) with an l1 reconstruction (Kim et al., A.3).

    Per batch, three updates, each with its own optimizer:

    * discriminator: BCE(disc(x), 1) + BCE(disc(x~), 0) + BCE(disc(x_p), 0), with
      x~ = dec(z), z ~ q(z | x), and x_p = dec(z_p), z_p ~ N(0, I);
    * encoder: ||x - x~||_1 (per image, summed over pixels) + ``beta`` KL(q(z | x) || N(0, I));
    * decoder: ``gamma`` ||x - x~||_1 + ``adv`` (BCE(disc(x~), 1) + BCE(disc(x_p), 1)),
      the latents detached so the adversarial term trains the decoder only.

    ``lr`` and ``betas`` default to the paper's Adam settings for MNIST (5e-4, (0.5, 0.999));
    for CIFAR-10 it uses 2e-4, (0, 0.9) and ``n_critic`` = 5 discriminator updates per
    encoder and decoder update (here on the same batch, with fresh samples x_p each time).
    Metrics: ``recon`` (mean l1 per pixel), ``kl``, ``d_loss``. Evaluation: ``recon`` and
    the mean d_π of the held-out images.
    """

    def __init__(self, model: nn.Module, beta: float = 1.0, gamma: float = 1.0, adv: float = 1.0,
                 lr: float = 5e-4, betas: tuple[float, float] = (0.5, 0.999), n_critic: int = 1):
        super().__init__(model)
        if not isinstance(model, VAEGAN):
            raise validate.ArgumentTypeError(f"model must be a reprtut.methods.vaegan.VAEGAN, got "
                                             f"{type(model).__name__}")
        self.beta = validate.real(beta, "beta", low=0.0)
        self.gamma = validate.real(gamma, "gamma", low=0.0)
        self.adv = validate.real(adv, "adv", low=0.0)
        self.lr = validate.real(lr, "lr", low=0.0, low_open=True)
        self.betas = tuple(validate.real(b, "betas", low=0.0, high=1.0, high_open=True) for b in betas)
        self.n_critic = validate.count(n_critic, "n_critic", min=1)

    def param_groups(self):
        over = {"lr": self.lr, "optimizer": "adam", "betas": self.betas}
        m = self.model
        return {"encoder": (list(m.enc.parameters()), over),
                "decoder": (list(m.dec.parameters()), over),
                "discriminator": (list(m.disc.parameters()), over)}

    def loss(self, x, y):
        """The three terms in one scalar, encoder + decoder + discriminator loss, for checks
        that a loss reaches every network; training calls :meth:`step`, which updates each
        network on its own term."""
        m = self.model
        bce = F.binary_cross_entropy_with_logits
        mu, logvar = m.encode(x)
        x_rec = m.decode(mu + torch.randn_like(mu) * (0.5 * logvar).exp())
        x_p = m.decode(torch.randn_like(mu))
        recon = (x_rec - x).abs().flatten(1).sum(1).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        ones, zeros = torch.ones(len(x), device=x.device), torch.zeros(len(x), device=x.device)
        fool = bce(m.critic(x_rec), ones) + bce(m.critic(x_p), ones)
        d_loss = bce(m.critic(x), ones) + bce(m.critic(x_rec.detach()), zeros) + \
            bce(m.critic(x_p.detach()), zeros)
        total = (1 + self.gamma) * recon + self.beta * kl + self.adv * fool + d_loss
        return total, {"recon": recon.detach() / x[0].numel(), "kl": kl.detach(), "d_loss": d_loss.detach()}

    def step(self, x, y, update) -> Metrics:
        m = self.model
        real = torch.ones(len(x), device=x.device)
        fake = torch.zeros(len(x), device=x.device)
        bce = F.binary_cross_entropy_with_logits
        z_p = torch.randn(len(x), m.zdim, device=x.device)
        # Encoder: reconstruction + KL through the reparameterised sample.
        mu, logvar = m.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = (m.decode(z) - x).abs().flatten(1).sum(1).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        update("encoder", recon + self.beta * kl)
        # Decoder: reconstruction + fooling the discriminator, latents fixed.
        z = z.detach()
        x_rec, x_p = m.decode(z), m.decode(z_p)
        l1 = (x_rec - x).abs().flatten(1).sum(1).mean()
        fool = bce(m.critic(x_rec), real) + bce(m.critic(x_p), real)
        update("decoder", self.gamma * l1 + self.adv * fool)
        # Discriminator: real images against reconstructions and samples.
        x_rec, x_p = x_rec.detach(), x_p.detach()
        for i in range(self.n_critic):
            if i:
                with torch.no_grad():
                    x_p = m.decode(torch.randn_like(z_p))
            d_loss = bce(m.critic(x), real) + bce(m.critic(x_rec), fake) + bce(m.critic(x_p), fake)
            update("discriminator", d_loss)
        return {"recon": l1.detach() / x[0].numel(), "kl": kl.detach(), "d_loss": d_loss.detach()}

    @torch.no_grad()
    def evaluate(self, x, y, batch_size: int = 1000) -> Metrics:
        l1 = torch.zeros((), device=x.device)
        dist = torch.zeros((), device=x.device)
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size]
            p = self.model(xb)
            l1 += (p - xb).abs().mean(dim=(1, 2, 3)).sum()
            dist += (p - xb).flatten(1).norm(dim=1).sum()
        return {"recon": l1 / len(x), "d_pi": dist / len(x)}
