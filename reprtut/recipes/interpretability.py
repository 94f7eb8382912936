"""Chapter 5, adversarial robustness and gradient interpretability (Kim, Seo & Jeon, 2019):
MNIST and CIFAR-10 models adversarially trained at several eps of each norm (appendix B.1),
the VAE-GAN that approximates the image manifold (A.3), and the small classifiers that ROAR
and KAR retrain on occluded images (section 3.2).
"""

from __future__ import annotations

from dataclasses import replace

from .. import attribution  # noqa: F401  (registers the "mlp" architecture of roar_classifier)
from ..cache import ModelSpec
from ..profiles import pick
from ..train import TrainConfig
from .adversarial import mnist_standard
from .policies import pgd_kwargs

# The paper's images lie in [-1, 1] (appendix A.1), the book's in [0, 1]: a perturbation
# measured on the paper's scale is this many times the same one on the book's, in every norm.
PAPER_SCALE = 2.0


def interp_eps(norm: str, dataset: str = "mnist") -> tuple[float, ...]:
    """Training eps of section 2.1 (appendix B.1), converted to the book's [0, 1] pixels.

    The paper scales every dataset to [-1, 1] (appendix A.1), where a perturbation is twice
    as long as the same one on [0, 1] images, in l2 and in l_inf alike: its eps is halved
    here (:data:`PAPER_SCALE`). MNIST: the paper's l2 {1, 2, 4} and l_inf {0.05, 0.1, 0.2}
    are l2 {0.5, 1, 2} and l_inf {0.025, 0.05, 0.1}; the quick and colab profiles train two per norm,
    l2 {0.5, 2} and l_inf {0.05, 0.1}. CIFAR-10: l2 {0.1, 0.4, 1.6} and l_inf {0.005, 0.01,
    0.02} are l2 {0.05, 0.2, 0.8} and l_inf {0.0025, 0.005, 0.01}; the quick and colab profiles train
    l2 {0.2, 0.8} and l_inf {0.005, 0.01}."""
    table = {("mnist", "l2"): pick(quick=(1.0, 4.0), full=(1.0, 2.0, 4.0), colab=(1.0, 4.0)),
             ("mnist", "linf"): pick(quick=(0.1, 0.2), full=(0.05, 0.1, 0.2), colab=(0.1, 0.2)),
             ("cifar10", "l2"): pick(quick=(0.4, 1.6), full=(0.1, 0.4, 1.6), colab=(0.4, 1.6)),
             ("cifar10", "linf"): pick(quick=(0.01, 0.02), full=(0.005, 0.01, 0.02), colab=(0.01, 0.02))}
    if norm not in ("l2", "linf"):
        raise ValueError(f"norm must be 'l2' or 'linf', got {norm!r}")
    if (dataset, norm) not in table:
        raise ValueError(f"dataset must be 'mnist' or 'cifar10', got {dataset!r}")
    return tuple(e / PAPER_SCALE for e in table[dataset, norm])


def analysis_eps() -> float:
    """The l2 budget of section 2.1's analysis attacks: the paper's 12 on [-1, 1] images, 6
    on the book's [0, 1] images."""
    return 12.0 / PAPER_SCALE


def interp_mnist(norm: str | None = None, eps: float = 0.0, loss: str = "xent") -> ModelSpec:
    """The MNIST CNN of :func:`mnist_standard` (``norm=None``: that very model) or trained on
    PGD adversarial images only in the eps-ball of ``norm``, the attack ascending the
    cross-entropy (``loss="xent"``) or the C&W margin (``"margin"``). The paper trains 5 epochs
    with Adam at 1e-3 and 40 PGD steps; the quick profile 2 epochs of 6,000 images with 2
    steps of 2.5 eps / 2, the full profile 5 epochs of all images with 10 steps."""
    if norm is None:
        return mnist_standard()
    base = mnist_standard()
    kwargs = pgd_kwargs(norm, eps, loss, pick(quick=2, full=10, paper=40))
    return replace(base, name=f"mnist-{norm}-{eps:g}" + ("" if loss == "xent" else f"-{loss}"),
                   method="pgd", method_kwargs=kwargs, n_train=pick(quick=6_000, full=None),
                   train=replace(base.train, epochs=pick(quick=2, full=5), lr=pick(quick=2e-3, full=1e-3),
                                 schedule=pick(quick="onecycle", full="constant")))


def vaegan_mnist() -> ModelSpec:
    """The VAE-GAN of appendix A.3 on MNIST (zdim = 10; Adam 5e-4, betas (0.5, 0.999); 30
    epochs in the paper; 5 in the colab profile). The quick profile: an eighth of the paper's
    widths, 2 epochs of 8,000 images."""
    return ModelSpec(
        name="mnist-vaegan", dataset="mnist", arch="vaegan",
        arch_kwargs=pick(quick={"zdim": 10, "width": 8, "hidden": 128},
                         full={"zdim": 10, "width": 64, "hidden": 1024}),
        method="vaegan", n_train=pick(quick=8_000, full=None), n_eval=1000,
        train=TrainConfig(epochs=pick(quick=2, full=30, colab=5), batch_size=64, optimizer="adam",
                          lr=5e-4, weight_decay=0.0, schedule="constant", amp=False))


def interp_cifar(norm: str | None = None, eps: float = 0.0) -> ModelSpec:
    """Section 2.1's CIFAR-10 classifier (appendix A.2: a four-convolution ReLU CNN, Adam at
    1e-3 for 20 epochs, 73.6 % test accuracy), trained on clean images (``norm=None``) or on
    PGD adversarial images only in the eps-ball of ``norm``, the attack ascending the
    cross-entropy. On GPUs (full profile): the book's five-layer CNN at width 32, 20 epochs of
    all 50,000 images with 10 PGD steps (4 epochs in the colab profile); on a CPU (quick): width 16, 3 epochs of 3,000 images
    with 2 steps. No augmentation (the paper mentions none)."""
    method, kwargs, name = "standard", {}, "cifar-interp-standard"
    if norm is not None:
        method, kwargs = "pgd", pgd_kwargs(norm, eps, "xent", pick(quick=2, full=10, paper=40))
        name = f"cifar-interp-{norm}-{eps:g}"
    return ModelSpec(
        name=name, dataset="cifar10", arch="small_cnn", arch_kwargs={"width": pick(quick=16, full=32)},
        method=method, method_kwargs=kwargs, n_train=pick(quick=3_000, full=None),
        n_eval=1000,
        train=TrainConfig(epochs=pick(quick=3, full=20, colab=4), batch_size=128, optimizer="adam",
                          lr=pick(quick=2e-3, full=1e-3), weight_decay=0.0,
                          schedule=pick(quick="onecycle", full="constant")))


def vaegan_cifar() -> ModelSpec:
    """The VAE-GAN of appendix A.3 on CIFAR-10: zdim = 128, Miyato et al.'s decoder and
    spectrally normalised discriminator, Adam 2e-4 with betas (0, 0.9), 5 discriminator
    updates per encoder and decoder update, 150 epochs in the paper. The full profile: the
    paper's widths, 5 updates, 30 epochs; the colab profile: half the widths, 3 epochs; the quick
    profile: an eighth of the widths, one discriminator update, 2 epochs of 4,000 images."""
    return ModelSpec(
        name="cifar-vaegan", dataset="cifar10", arch="vaegan",
        arch_kwargs={"zdim": 128, "width": pick(quick=8, full=64, colab=32)},
        method="vaegan", method_kwargs={"lr": 2e-4, "betas": [0.0, 0.9],
                                        "n_critic": pick(quick=1, full=5, paper=5)},
        n_train=pick(quick=4_000, full=None), n_eval=1000,
        train=TrainConfig(epochs=pick(quick=2, full=30, paper=150, colab=3), batch_size=64, optimizer="adam",
                          lr=2e-4, weight_decay=0.0, schedule="constant", amp=False))


def roar_fractions() -> tuple[float, ...]:
    """Fractions of pixels replaced in ROAR and KAR (section 3.2: 0.1, 0.3, 0.5, 0.7, 0.9; the
    quick and colab profiles take 0.1, 0.5 and 0.9)."""
    return pick(quick=(0.1, 0.5, 0.9), full=(0.1, 0.3, 0.5, 0.7, 0.9), colab=(0.1, 0.5, 0.9))


def roar_retrains() -> int:
    """Classifiers retrained per method and fraction (three in the paper, averaged; one in
    the quick and full profiles, which retrain 78 and 170 classifiers with one each)."""
    return pick(quick=1, full=1, paper=3)


def roar_classifier(dataset: str = "mnist") -> ModelSpec:
    """The classifier ROAR and KAR retrain on occluded images of ``dataset``.

    MNIST: a perceptron (``"mlp"``, :mod:`reprtut.attribution`) with 128 hidden units trained
    for 3 epochs on 4,000 images (quick), 256 units for 5 epochs on 20,000 images (full).
    CIFAR-10 (the paper retrains its CIFAR-10 CNN): the same perceptron on 3,000 images for 2
    epochs on a CPU (quick), the five-layer CNN at width 16 for 5 epochs on 20,000 images on
    GPUs (full; colab on 10,000 images)."""
    if dataset == "mnist":
        arch, kwargs = pick(quick=("mlp", {"hidden": 128}), full=("mlp", {"hidden": 256}))
    elif dataset == "cifar10":
        arch, kwargs = pick(quick=("mlp", {"hidden": 128}), full=("small_cnn", {"width": 16}))
    else:
        raise ValueError(f"dataset must be 'mnist' or 'cifar10', got {dataset!r}")
    return ModelSpec(
        name=f"roar-{dataset}", dataset=dataset, arch=arch, arch_kwargs=kwargs,
        method="standard", n_train=pick(quick=4_000 if dataset == "mnist" else 3_000, full=20_000, colab=10_000),
        n_eval=1000,
        train=TrainConfig(epochs=pick(quick=3 if dataset == "mnist" else 2, full=5), batch_size=64,
                          optimizer="adam", lr=2e-3 if dataset == "mnist" else 1e-3,
                          weight_decay=0.0, schedule="onecycle"))


def roar_fill(dataset: str = "mnist", kind: str = "constant") -> float | str | None:
    """What replaces a pixel in ROAR and KAR.

    ``kind="constant"``: MNIST: black, its background, so a replaced pixel leaves no trace
    (the training mean, 0.13, would draw the removed strokes in grey and leak their shape);
    but then replacing a background pixel removes nothing, and ROAR partly measures how much
    of a ranking's top lies on the ink. CIFAR-10: ``None``, the channel means (section 3.2's
    constant); no constant is background on natural images, so there the pattern of replaced
    pixels is itself visible to the retrained classifier. ``kind="pixel_mean"``: each pixel
    replaced by its own mean over the training images (:func:`reprtut.attribution.occluded_dataset`),
    which removes information wherever it is put, at the price of drawing the mask wherever
    the image differs from the mean."""
    if kind not in ("constant", "pixel_mean"):
        raise ValueError(f"kind must be 'constant' or 'pixel_mean', got {kind!r}")
    if dataset not in ("mnist", "cifar10"):
        raise ValueError(f"dataset must be 'mnist' or 'cifar10', got {dataset!r}")
    if kind == "pixel_mean":
        return "pixel_mean"
    return 0.0 if dataset == "mnist" else None
