"""Chapters 1 and 2, adversarial training and its evaluation (Madry et al., 2018): the MNIST
and CIFAR-10 classifiers trained on clean images and against PGD.

Their networks and data sizes (:func:`cifar_arch` and the helpers below) are also those of
later chapters' models, which start from these recipes.
"""

from __future__ import annotations

from ..cache import ModelSpec
from ..profiles import pick
from ..train import TrainConfig
from .policies import CIFAR_EPS, cifar_adversarial_policy, mnist_policy


def _mnist_arch() -> dict:
    # The paper's network in the full profile; a narrower one trains 6x faster on a CPU.
    return pick(quick={"width": 16, "hidden": 256}, full={"width": 32, "hidden": 1024})


def mnist_standard() -> ModelSpec:
    """Madry et al.'s MNIST CNN trained on clean images."""
    return ModelSpec(
        name="mnist-standard", dataset="mnist", arch="mnist_cnn", arch_kwargs=_mnist_arch(),
        method="standard", n_train=pick(quick=12_000, full=None),
        train=TrainConfig(epochs=pick(quick=2, full=10), batch_size=128, optimizer="adam",
                          lr=2e-3, weight_decay=0.0, schedule="onecycle"))


def mnist_pgd() -> ModelSpec:
    """Madry et al.'s MNIST CNN adversarially trained against PGD in the l_inf ball of 0.3.

    The paper trains with 40 steps of 0.01 for 100k iterations of batch 50 (~83 epochs); the
    quick profile's 3 steps of 0.15 are a far cheaper inner maximisation of the same problem
    (:func:`~reprtut.recipes.policies.mnist_policy`).
    """
    return ModelSpec(
        name="mnist-pgd", dataset="mnist", arch="mnist_cnn", arch_kwargs=_mnist_arch(),
        method="pgd", n_train=pick(quick=12_000, full=None),
        method_kwargs={**mnist_policy(), "norm": "linf"},
        train=TrainConfig(epochs=pick(quick=3, full=20, paper=83, colab=8), batch_size=pick(quick=128, full=128, paper=50),
                          optimizer="adam", lr=pick(quick=3e-3, full=1e-3, paper=1e-4),
                          weight_decay=0.0, schedule=pick(quick="onecycle", full="onecycle",
                                                          paper="constant")))


# The last CIFAR-10 training images that no CIFAR-10 classifier of chapters 1, 2, 4 and 7
# trains on: the validation split those chapters tune on (rt.splits.validation).
CIFAR_VALIDATION = 1_000


def _cifar_n() -> int | None:
    # The quick profile trains on the first 5,000 CIFAR-10 training images (ten epochs of them
    # cost a two-core CPU about a minute; 10,000 images for five epochs were no better), the
    # full profile on the first 49,000: all but the validation split.
    return pick(quick=5_000, full=50_000 - CIFAR_VALIDATION)


def _cifar_eval() -> int:
    # Test images scored after every epoch: the training log, which no page reads (the pages
    # measure their own). Scoring 2,000 after each of ten epochs cost a third of the quick
    # profile's clean training on a CPU; 500 give the log's accuracy to about 2 points and
    # leave the weights bit for bit as they were (the log draws no random numbers).
    return pick(quick=500, full=10_000)


def cifar_arch() -> tuple[str, dict]:
    """(architecture, its kwargs) of the book's CIFAR-10 classifier: ResNet-18 (the Engstrom
    et al. and AFD papers' network) on GPUs; a five-layer CNN on CPUs."""
    return pick(quick=("small_cnn", {"width": 32}), full=("resnet18", {}))


def cifar_standard() -> ModelSpec:
    """The CIFAR-10 classifier trained on clean images (with crops and flips)."""
    arch, kwargs = cifar_arch()
    return ModelSpec(
        name="cifar-standard", dataset="cifar10", arch=arch, arch_kwargs=kwargs,
        method="standard", augment=True, n_train=_cifar_n(),
        n_eval=_cifar_eval(),
        train=TrainConfig(epochs=pick(quick=10, full=40, paper=200, colab=15), batch_size=128,
                          optimizer="sgd", lr=pick(quick=0.05, full=0.1), weight_decay=5e-4,
                          schedule="onecycle"))


def cifar_pgd() -> ModelSpec:
    """The CIFAR-10 classifier of :func:`cifar_standard`, adversarially trained against PGD in
    the l_inf ball of ``CIFAR_EPS`` = 8/255 (Madry et al., 2018, eq. 2.1).

    The paper trains with 7 steps of 2/255 from a random start; the quick profile's 2 steps
    of 10/255 (2.5 * eps / steps) and the full profile's 3 steps of 6.7/255 are cheaper inner
    maximisations of the same problem (3x and 4x the cost of standard training). The colab
    profile trains 12 epochs instead of the full profile's 25 (standard training: 15, not 40).
    """
    return _cifar_adversarial("cifar-pgd", eps=CIFAR_EPS, norm="linf", paper_step=2 / 255,
                              paper_epochs=100, paper_milestones=(50, 75))


def _cifar_adversarial(name: str, *, eps: float, norm: str, paper_step: float,
                       paper_epochs: int, paper_milestones: tuple[int, int]) -> ModelSpec:
    """PGD adversarial training of the :func:`cifar_standard` classifier in the eps-ball of
    ``norm`` (:func:`~reprtut.recipes.policies.cifar_adversarial_policy`); SGD with a
    one-cycle schedule, or the paper's steps at its milestones."""
    arch, kwargs = cifar_arch()
    return ModelSpec(
        name=name, dataset="cifar10", arch=arch, arch_kwargs=kwargs,
        method="pgd", augment=True, n_train=_cifar_n(),
        n_eval=_cifar_eval(),
        method_kwargs={**cifar_adversarial_policy(eps, paper_step), "norm": norm},
        train=TrainConfig(epochs=pick(quick=10, full=25, paper=paper_epochs, colab=12), batch_size=128,
                          optimizer="sgd", lr=pick(quick=0.05, full=0.1), weight_decay=5e-4,
                          schedule=pick(quick="onecycle", full="onecycle", paper="step"),
                          milestones=pick(quick=(), full=(), paper=paper_milestones)))
