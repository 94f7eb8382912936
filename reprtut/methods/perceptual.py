"""Perceptual regularization: a decoder D on a classifier's latent, trained jointly with it.

The paper (*Perceptual Regularization: Visualizing and Learning Generalizable
Representations*) splits a classifier into a feature map F: X -> Z and a classifier
C: Z -> Y, so H = C∘F, and stacks a decoder D: Z -> X on the latent, so P = D∘F (the
model's *perception*) maps an image to what the latent remembers of it. This module holds

* the paper's three architectures (appendix B: MNIST, SVHN, CelebA) as :class:`PerceptualNet`;
* the objective CE(H(x), y) + λ ||x - P(x)||^2 (:class:`PerceptualRegularization`);
* multi-task training with hard parameter sharing (:class:`MultiTask`, section 5);
* frozen-feature transfer, a new classifier C_T on the frozen F of a source model
  (:class:`FrozenTransfer` and :func:`transfer_spec`, section 5);
* the measurements of the book's chapter 3 (``book/03_perceptual_regularization.md``,
  ``03a_perceptual_transfer.md``, ``03b_perceptual_attacks.md``): perceptions, side/centre
  reconstruction errors, the judge's agreement with P(x_adv), transfer matrices.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict

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


def _fresh_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every layer re-initialised."""
    new = copy.deepcopy(module)
    for m in new.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return new


@register("multitask")
class MultiTask(Objective):
    """Hard parameter sharing (Caruana, 1997; paper, section 5 and figure 7).

    One feature map F, one classifier C_t per task t of ``tasks`` (columns of the label
    matrix y (B, T)), trained on the average cross-entropy (1/|tasks|) sum_t CE(C_t(F(x)), y_t).
    The model's own head is the classifier of ``tasks[0]``; the objective owns the others.
    Metrics: loss and ``acc_<t>`` per task; evaluation gives ``test_acc_<t>``.
    """

    def __init__(self, model: nn.Module, tasks: list[int] | tuple[int, ...]):
        super().__init__(model)
        if not hasattr(model, "features") or not hasattr(model, "head"):
            raise ValueError(f"MultiTask needs a Classifier (features, head), "
                             f"got {type(model).__name__}")
        if isinstance(tasks, (str, bytes)) or not hasattr(tasks, "__iter__"):
            raise validate.ArgumentTypeError(f"tasks must be a list of label columns, got {tasks!r}")
        tasks = [validate.count(t, "tasks", min=0) for t in tasks]
        if not tasks or len(set(tasks)) != len(tasks) or any(t < 0 for t in tasks):
            raise ValueError(f"tasks must be distinct non-negative label columns, got {tasks}")
        self.tasks = tasks
        self.extra_heads = nn.ModuleList([_fresh_copy(model.head) for _ in tasks[1:]])

    @property
    def heads(self) -> list[nn.Module]:
        """C_t for each task, in the order of ``tasks``."""
        return [self.model.head, *self.extra_heads]

    def _check_labels(self, y: torch.Tensor) -> None:
        if y.dim() != 2 or y.shape[1] <= max(self.tasks):
            raise ValueError(f"multi-task labels must be (B, T) with T > {max(self.tasks)}, "
                             f"got {tuple(y.shape)}")

    def loss(self, x, y):
        self._check_labels(y)
        z = self.model.features(x)                               # (B, d)
        metrics, losses = {}, []
        for t, head in zip(self.tasks, self.heads):
            logits = head(z)
            losses.append(nnf.cross_entropy(logits, y[:, t]))
            metrics[f"acc_{t}"] = accuracy_metric(logits, y[:, t])
        loss = torch.stack(losses).mean()
        return loss, {"loss": loss.detach(), **metrics}

    @torch.no_grad()
    def evaluate(self, x, y, batch_size: int = 1000):
        self._check_labels(y)
        correct = torch.zeros(len(self.tasks), device=x.device)
        for i in range(0, len(x), batch_size):
            z = self.model.features(x[i:i + batch_size])
            yb = y[i:i + batch_size]
            correct += torch.stack([(h(z).argmax(1) == yb[:, t]).sum()
                                    for t, h in zip(self.tasks, self.heads)])
        return {f"test_acc_{t}": c / len(x) for t, c in zip(self.tasks, correct)}


@register("transfer")
class FrozenTransfer(Objective):
    """A new classifier C_T trained on the frozen feature map F of a source model (section 5).

    ``source`` is the source model's :class:`~reprtut.cache.ModelSpec` as a dict (see
    :func:`transfer_spec`); its F is fetched from the model cache (trained first if need be),
    copied into ``model`` and frozen, and only ``model.head`` = C_T is trained, with
    cross-entropy on the target task's labels. Metrics: loss, acc.
    """

    def __init__(self, model: nn.Module, source: dict):
        super().__init__(model)
        from ..cache import get  # the cache imports this package: import on use
        src = get(spec_from_dict(source), progress=False)
        model.features.load_state_dict(src.model.features.state_dict())
        model.features.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.model.features.eval()  # F is frozen: its layers stay in inference mode
        return self

    def loss(self, x, y):
        with torch.no_grad():
            z = self.model.features(x)
        logits = self.model.head(z)
        loss = nnf.cross_entropy(logits, y)
        return loss, {"loss": loss.detach(), "acc": accuracy_metric(logits, y)}


def spec_from_dict(d: dict):
    """The :class:`~reprtut.cache.ModelSpec` of ``dataclasses.asdict(spec)``."""
    from ..cache import ModelSpec
    from ..train import TrainConfig
    if not isinstance(d, dict) or "train" not in d:
        raise ValueError(f"source must be a ModelSpec as a dict (dataclasses.asdict), got {d!r}")
    return ModelSpec(**{**d, "train": TrainConfig(**d["train"])})


def transfer_spec(source, target: str, train, *, n_train: int | None = None, n_eval: int = 1000):
    """The ModelSpec of C_T trained on the frozen F of ``source`` for dataset ``target``.

    source: the ModelSpec of the source model (any architecture with ``features``/``head``);
    target: a dataset whose images match the source's (e.g. another task of the same
    images); train: the TrainConfig of C_T. ``reprtut.cache.get`` of the result trains C_T
    once through the one training loop and caches it like any model.
    """
    from ..cache import ModelSpec
    if target not in INFO:
        raise ValueError(f"unknown target dataset {target!r}")
    if INFO[target].shape != INFO[source.dataset].shape:
        raise ValueError(f"target {target!r} images {INFO[target].shape} differ from the "
                         f"source's {source.dataset!r} {INFO[source.dataset].shape}")
    return ModelSpec(name=f"{source.name}-to-{target}", dataset=target, arch=source.arch,
                     arch_kwargs=dict(source.arch_kwargs), method="transfer",
                     method_kwargs={"source": asdict(source)}, train=train,
                     n_train=n_train, n_eval=n_eval)


# ------------------------------------------------------------------------------ analysis

# Section 3 and appendix A: PGD in the l_inf ball, 100 iterations; eps = 0.2 on MNIST and
# 0.03 on CelebA (pixels in [0, 1]).
ATTACK_STEPS = 100
ATTACK_EPS = {"mnist": 0.2, "celeba": 0.03}


@torch.no_grad()
def perceive(model: PerceptualNet, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """P(x) = D(F(x)) for images x (N, C, H, W) in [0, 1], in eval mode, ``batch_size`` at a
    time; returns (N, C, H, W) in (0, 1) on the model's device."""
    from ..attacks.core import frozen
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
    from ..evaluate import predict
    return predict(judge, perceive(model, x_adv)).argmax(1) == predict(model, x_adv).argmax(1)


def transfer_matrix(sources: dict, targets: dict, make) -> torch.Tensor:
    """Test accuracy of C_T on the frozen F of every source for every target (figures 6-7).

    sources: row name -> source ModelSpec; targets: column name -> target dataset;
    make(source_spec, target_dataset) -> ModelSpec of the transfer (``recipes.transfer``).
    Each entry is trained once through the model cache. Returns (S, T) accuracies in [0, 1].
    """
    from ..cache import get
    return torch.tensor([[get(make(spec, target), progress=False).history["test_acc"][-1]
                          for target in targets.values()] for spec in sources.values()])


# The paper's transfer accuracies on CelebA (%, averaged over 6 trials): rows are the source
# training, columns the target tasks (eyeglasses, smile, gender). Figure 6: supervised
# training with weight decay, and perceptual regularization with λ = 1e-3. Figure 7:
# multi-task training on every pair of tasks (Multi2-1 leaves out eyeglasses, 2-2 smile,
# 2-3 gender) and on all three (Multi3).
PAPER_TASKS = ("eyeglasses", "smile", "gender")
PAPER_TRANSFER = {
    "supervised": {"eyeglasses": (95.63, 59.32, 74.30), "smile": (58.49, 89.12, 63.43),
                   "gender": (71.34, 60.38, 93.86)},
    "perceptual": {"eyeglasses": (87.55, 83.03, 86.47), "smile": (85.96, 84.17, 86.26),
                   "gender": (86.13, 82.63, 87.09)},
    "multitask": {"smile+gender": (62.15, 94.60, 93.34), "eyeglasses+gender": (89.06, 73.39, 93.67),
                  "eyeglasses+smile": (89.41, 95.24, 74.53),
                  "eyeglasses+smile+gender": (88.76, 93.94, 93.15)},
}
