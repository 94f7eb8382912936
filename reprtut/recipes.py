"""The trained models the chapters share, one function each, scaled by the active profile.

Each function returns a :class:`~reprtut.cache.ModelSpec`; ``reprtut.cache.get(spec)`` trains
it once and serves it to every chapter and test that asks for it afterwards.
"""

from __future__ import annotations

from .cache import ModelSpec
from .profiles import pick
from .train import TrainConfig

# Madry et al. (2018), MNIST: l_inf eps = 0.3, 40 PGD steps of 0.01 during training.
MNIST_EPS = 0.3


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
    quick profile's 3 steps of 0.15 are a far cheaper inner maximisation of the same problem.
    """
    return ModelSpec(
        name="mnist-pgd", dataset="mnist", arch="mnist_cnn", arch_kwargs=_mnist_arch(),
        method="pgd", n_train=pick(quick=12_000, full=None),
        method_kwargs={"eps": MNIST_EPS, "norm": "linf", "steps": pick(quick=3, full=20, paper=40),
                       "step_size": pick(quick=0.15, full=0.03, paper=0.01)},
        train=TrainConfig(epochs=pick(quick=3, full=20, paper=83), batch_size=pick(quick=128, full=128, paper=50),
                          optimizer="adam", lr=pick(quick=3e-3, full=1e-3, paper=1e-4),
                          weight_decay=0.0, schedule=pick(quick="onecycle", full="onecycle",
                                                          paper="constant")))


def _cifar_arch() -> tuple[str, dict]:
    # ResNet-18 (the Engstrom et al. and AFD papers' network) on GPUs; a five-layer CNN on CPUs.
    return pick(quick=("small_cnn", {"width": 32}), full=("resnet18", {}))


def cifar_standard() -> ModelSpec:
    """The CIFAR-10 classifier trained on clean images (with crops and flips)."""
    arch, kwargs = _cifar_arch()
    return ModelSpec(
        name="cifar-standard", dataset="cifar10", arch=arch, arch_kwargs=kwargs,
        method="standard", augment=True, n_eval=pick(quick=846, full=1000),
        train=TrainConfig(epochs=pick(quick=10, full=40, paper=200), batch_size=128,
                          optimizer="sgd", lr=pick(quick=0.05, full=0.1), weight_decay=5e-4,
                          schedule="onecycle"))
