"""The threat models and PGD policies that several chapters' recipes train with.

A policy is the keyword arguments of a method's inner maximisation (eps, steps, step_size,
norm, loss: the fields of :class:`reprtut.attacks.Threat`, which each method builds from
them), kept as plain numbers and strings because they are hashed into cache keys; scaled by the active profile: the papers' many small steps on GPUs, a few long steps
(2.5 eps / steps, Madry et al.) on a CPU.
"""

from __future__ import annotations

from ..attacks.norms import default_step_size
from ..profiles import pick

# Madry et al. (2018), MNIST: l_inf eps = 0.3, 40 PGD steps of 0.01 during training.
MNIST_EPS = 0.3
# Madry et al. (2018), CIFAR-10: l_inf eps = 8/255, PGD steps of 2/255 during training.
CIFAR_EPS = 8 / 255


def mnist_policy() -> dict:
    """PGD-l_inf in the 0.3-ball: the paper's 40 steps of 0.01, 20 of 0.03 (full) or 3 of 0.15
    (quick), a far cheaper inner maximisation of the same problem. Chapter 1's adversarially
    trained MNIST model and every chapter-6 method train on it."""
    return {"eps": MNIST_EPS, "steps": pick(quick=3, full=20, paper=40),
            "step_size": pick(quick=0.15, full=0.03, paper=0.01)}


def cifar_adversarial_policy(eps: float, paper_step: float) -> dict:
    """PGD in the eps-ball of CIFAR-10 adversarial training (chapters 1, 2 and 4): 2 (quick) or
    3 (full) steps of 2.5 * eps / steps, or the paper's 7 steps of ``paper_step``."""
    steps = pick(quick=2, full=3, paper=7)
    return {"eps": eps, "steps": steps,
            "step_size": pick(quick=default_step_size(eps, steps),
                              full=default_step_size(eps, steps), paper=paper_step)}


def cifar_policy() -> dict:
    """PGD-l_inf in the 8/255-ball: 2 steps of 2.5 eps / 2 (quick) or Madry et al.'s 7 steps
    of 2/255 (full, paper); the attack every chapter-6 CIFAR-10 method trains on."""
    steps = pick(quick=2, full=7)
    return {"eps": CIFAR_EPS, "steps": steps,
            "step_size": pick(quick=default_step_size(CIFAR_EPS, 2), full=2 / 255)}


def pgd_kwargs(norm: str, eps: float, loss: str, steps: int) -> dict:
    """PGD training kwargs in the eps-ball of ``norm`` with ``steps`` steps of 2.5 eps / steps,
    ascending the cross-entropy (``loss="xent"``) or the C&W margin (``"margin"``): chapter 5's
    models (appendix B: PGD of 40 steps; cheaper profiles take fewer). The default loss is
    left out of the kwargs, so those models keep their cache keys."""
    kwargs = {"eps": float(eps), "norm": norm, "steps": steps,
              "step_size": default_step_size(float(eps), steps)}
    if loss != "xent":
        kwargs["loss"] = loss
    return kwargs
