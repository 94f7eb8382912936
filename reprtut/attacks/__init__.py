"""Adversarial attacks. Every attack is called ``attack(model, x, y, *, eps, norm, ...)`` with
images x in [0, 1] and returns adversarial images of the same shape inside the eps-ball and
the [0, 1] box; a target class is passed as ``y`` with ``targeted=True``."""

from .core import check_inputs, cross_entropy_sum, frozen, input_gradient
from .gradient import fgsm, pgd, pgd_steps
from .norms import NORMS, norm_of, project, random_start, steepest

__all__ = ["fgsm", "pgd", "pgd_steps", "check_inputs", "cross_entropy_sum", "frozen", "input_gradient",
           "NORMS", "norm_of", "project", "random_start", "steepest"]
