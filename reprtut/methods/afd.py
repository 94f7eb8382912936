"""Adversarial feature desensitization (AFD; Bashivan et al., 2021) and its ℓ2 ablation.

The classifier is split as in the paper: the embedding E = ``model.features`` maps an image
to its representation h = E(x) (the activations before the last linear layer) and the
decoder Dc = ``model.head`` maps h to the logits. AFD adds an adversarial discriminator Da
that tells, given the label, whether h came from a clean or a perturbed image, and trains E
to fool it (a GAN whose "generator" is E; Algorithm 1). Three updates per batch, each with
its own optimizer and learning rate: ``"edc"`` (E and Dc on the clean cross-entropy),
``"da"`` (Da on the softplus loss of eq. 2) and ``"e"`` (E against Da).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .. import validate
from ..attacks import Threat
from ..nn import check_batch
from .base import Objective, accuracy_metric, register


class Discriminator(nn.Module):
    """Da(h, y): three spectrally normalised fully connected layers with LeakyReLU, then a
    projection layer that brings the label in by a dot product (Miyato & Koyama, 2018):

        phi = LReLU(L3(LReLU(L2(LReLU(L1(h))))))           # (B, hidden)
        Da(h, y) = w . phi + b + <embed(y), phi>           # (B,)

    h: (B, d) representations, y: (B,) int64 labels in [0, classes). A large Da means "clean",
    a small one "perturbed" (eq. 2). ``hidden`` is 64 on MNIST and 512 on CIFAR in the paper.
    Spectral normalisation (Miyato et al., 2018) on every layer, the embedding included,
    bounds Da's Lipschitz constant, so E gets gradients that do not explode.
    """

    def __init__(self, dim: int, classes: int, hidden: int = 64, slope: float = 0.2):
        super().__init__()
        dim = validate.count(dim, "dim", min=1)
        classes = validate.count(classes, "classes", min=1)
        hidden = validate.count(hidden, "hidden", min=1)
        self.slope = validate.real(slope, "slope", low=0.0)
        self.layers = nn.ModuleList([spectral_norm(nn.Linear(a, b))
                                     for a, b in ((dim, hidden), (hidden, hidden), (hidden, hidden))])
        self.out = spectral_norm(nn.Linear(hidden, 1))
        self.embed = spectral_norm(nn.Embedding(classes, hidden))

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        phi = h.float()
        for layer in self.layers:
            phi = F.leaky_relu(layer(phi), self.slope)                    # (B, hidden)
        return self.out(phi).squeeze(1) + (self.embed(y) * phi).sum(1)  # (B,)


def discriminator_loss(d_clean: torch.Tensor, d_adv: torch.Tensor) -> torch.Tensor:
    """L_Da of Algorithm 1: mean[S(-Da(E(x), y)) + S(Da(E(x'), y))], S = softplus."""
    return (F.softplus(-d_clean) + F.softplus(d_adv)).mean()


@register("afd")
class AFD(Objective):
    """Adversarial feature desensitization (Bashivan et al., 2021, Algorithm 1).

    For each batch (x in [0, 1], y), with x' = PGD-l_inf(x) in the eps-ball (the attack
    policy pi, ascending the classifier's logit margin by default; ``loss`` below):

    1. ``"edc"``: (theta, phi) <- step on L_EDc = CE(Dc(E(x)), y)                (lr alpha)
    2. ``"da"``:  psi <- step on L_Da = S(-Da(E(x), y)) + S(Da(E(x'), y))        (lr beta)
    3. ``"e"``:   theta <- step on L_E = S(-Da(E(x'), y))                         (lr gamma)

    alpha is the TrainConfig's ``lr``; ``lr_da`` (beta) and ``lr_e`` (gamma) are the
    discriminator's and the adversarial embedding step's. Their balance decides whether E
    learns to hide the perturbation or Da runs away with the game (see chapter 6).
    eps: l_inf radius in pixel units (0.3 on MNIST, 8/255 on CIFAR-10); steps, step_size:
    the PGD budget (default step 2.5 eps / steps). hidden: width of Da. beta1: Adam's first
    moment coefficient for the two game updates (with ``optimizer="adam"``). loss: what the
    PGD policy ascends, ``"margin"`` (default, :func:`~reprtut.attacks.margin_loss_sum`) or
    ``"xent"`` (the paper's cross-entropy). The policy is held as ``self.threat``
    (:class:`reprtut.attacks.Threat`, l_inf). Trained on clean images only, E and Dc are free to
    grow the logits until the softmax saturates; the cross-entropy's gradient then underflows,
    the policy's perturbations stall, and the game is played against perturbations that are not
    adversarial (gradient masking, chapter 6). The margin keeps the policy honest.

    Metrics (0-d tensors): ``loss`` (L_EDc), ``acc`` (clean batch accuracy), ``da_loss``,
    ``e_loss``, and Da's accuracy on the batch *before* Da trains on it (a fresh batch):
    ``da_clean`` (clean representations called clean), ``da_adv`` (perturbed ones called
    perturbed) and their mean ``da_acc``; 0.5 is chance, the game's equilibrium.
    """

    def __init__(self, model, eps: float, steps: int = 10, step_size: float | None = None,
                 lr_da: float = 1e-3, lr_e: float = 1e-3, hidden: int = 64,
                 beta1: float = 0.5, loss: str = "margin"):
        super().__init__(model)
        if not isinstance(getattr(model, "features", None), nn.Module) or \
                not isinstance(getattr(model, "head", None), nn.Linear):
            raise ValueError("model must be a reprtut.models.Classifier (E = model.features, "
                             f"Dc = model.head), got {type(model).__name__}")
        self.threat = Threat(eps, "linf", steps, step_size, loss)
        self.lr_da = validate.real(lr_da, "lr_da", low=0.0, low_open=True)
        self.lr_e = validate.real(lr_e, "lr_e", low=0.0, low_open=True)
        self.beta1 = validate.real(beta1, "beta1", low=0.0, high=1.0, high_open=True)
        self.da = Discriminator(model.head.in_features, model.head.out_features, hidden)

    def param_groups(self):
        # E's parameters appear in two optimizers ("edc" and "e") with separate moments.
        edc = [p for p in self.model.parameters() if p.requires_grad]
        e = [p for p in self.model.features.parameters() if p.requires_grad]
        # Adam's first moment decays faster in the game (beta1 = 0.5, as in most GANs): the
        # opponent moves, so old gradients go stale sooner.
        game = {"weight_decay": 0.0, "betas": (self.beta1, 0.999)}
        return {"edc": (edc, {}),
                "da": (list(self.da.parameters()), {"lr": self.lr_da, **game}),
                "e": (e, {"lr": self.lr_e, **game})}

    def perturb(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x' = pi(x, eps): PGD-l_inf on the threat's loss (no checks, no sync)."""
        return self.threat.perturb(self.model, x, y)

    def step(self, x, y, update):
        E, Dc = self.model.features, self.model.head
        x_adv = self.perturb(x, y)
        # 1. E and Dc on the clean cross-entropy.
        logits = Dc(E(x))                                              # (B, K)
        loss_edc = F.cross_entropy(logits, y)
        update("edc", loss_edc)
        # 2. Da on clean vs perturbed representations of the updated E (E held fixed).
        h_adv = E(x_adv)                                               # (B, d), kept for step 3
        with torch.no_grad():
            h = E(x)
        d_clean, d_adv = self.da(h, y), self.da(h_adv.detach(), y)     # (B,), (B,)
        loss_da = discriminator_loss(d_clean, d_adv)
        update("da", loss_da)
        # 3. E makes perturbed representations look clean to the updated Da.
        loss_e = F.softplus(-self.da(h_adv, y)).mean()
        update("e", loss_e)
        da_clean = (d_clean > 0).float().mean().detach()
        da_adv = (d_adv < 0).float().mean().detach()
        return {"loss": loss_edc.detach(), "acc": accuracy_metric(logits, y),
                "da_loss": loss_da.detach(), "e_loss": loss_e.detach(),
                "da_clean": da_clean, "da_adv": da_adv, "da_acc": (da_clean + da_adv) / 2}

    @torch.no_grad()
    def evaluate(self, x, y, batch_size: int = 1000):
        """After every epoch: clean accuracy (``test_acc``) on the held-out images, and Da's
        accuracy on the first 500 of them and their perturbations (``val_da_acc``,
        ``val_da_clean``, ``val_da_adv``), images it never trained on (Figure A5)."""
        metrics = super().evaluate(x, y, batch_size)
        for key, value in self._discriminate(x[:500], y[:500]).items():
            metrics[f"val_{key}"] = value
        return metrics

    def _discriminate(self, x, y):
        with torch.enable_grad():
            x_adv = self.perturb(x, y)
        clean = (self.da(self.model.features(x), y) > 0).float().mean()
        adv = (self.da(self.model.features(x_adv), y) < 0).float().mean()
        return {"da_clean": clean, "da_adv": adv, "da_acc": (clean + adv) / 2}

    def loss(self, x, y):
        """L_EDc and L_E on one batch without updating anything (for inspection)."""
        x_adv = self.perturb(x, y)
        logits = self.model(x)
        loss = F.cross_entropy(logits, y) + F.softplus(-self.da(self.model.features(x_adv), y)).mean()
        return loss, {"loss": loss.detach(), "acc": accuracy_metric(logits, y)}

    @torch.no_grad()
    def discriminate(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Da's accuracy on images x (N, C, H, W) in [0, 1] with labels y (N,) that it did not
        train on: on their clean and their PGD-perturbed representations, and the mean."""
        check_batch(self.model, x, y)
        was = self.training
        self.eval()
        try:
            out = self._discriminate(x, y)
        finally:
            self.train(was)
        return {k: float(v) for k, v in out.items()}


@register("feature_matching")
class FeatureMatching(Objective):
    """The ablation of the AFD paper's section 3 ("adversarial vs l2 optimization"):

        min_theta E[ CE(Dc(E(x)), y) + lam * ||E(x) - E(x')||_2 ],  x' = PGD-l_inf(x)

    the representation sensitivity pulled down directly, by a norm, instead of by a
    discriminator. The perturbation is AFD's policy: PGD in the l_inf ball of eps, held as
    ``self.threat`` (:class:`reprtut.attacks.Threat`), on the classifier's margin
    (``loss="margin"``, the default, as :class:`AFD`'s) or its cross-entropy (``"xent"``).
    Metrics: ``loss``, ``acc`` (clean), ``match`` (mean ||E(x) - E(x')||_2).
    """

    def __init__(self, model, eps: float, steps: int = 10, step_size: float | None = None,
                 lam: float = 1.0, loss: str = "margin"):
        super().__init__(model)
        self.threat = Threat(eps, "linf", steps, step_size, loss)
        self.lam = validate.real(lam, "lam", low=0.0)

    def loss(self, x, y):
        x_adv = self.threat.perturb(self.model, x, y)
        h, h_adv = self.model.features(torch.cat([x, x_adv])).chunk(2)   # (B, d) each
        logits = self.model.head(h)
        match = (h - h_adv).float().norm(dim=1).mean()
        loss = F.cross_entropy(logits, y) + self.lam * match
        return loss, {"loss": loss.detach(), "acc": accuracy_metric(logits, y),
                      "match": match.detach()}
