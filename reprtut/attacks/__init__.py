"""Adversarial attacks. Every attack is called ``attack(model, x, y, *, eps, norm, ...)`` with
images x in [0, 1] and returns adversarial images of the same shape inside the eps-ball and
the [0, 1] box; a target class is passed as ``y`` with ``targeted=True``.

Files: ``norms`` (per-norm step, projection, random start, the default step size),
``core`` (checks, losses, input gradient), ``gradient`` (FGSM, PGD and the one iterative
loop), ``threat`` (:class:`Threat`, the PGD budget the training objectives perturb with),
``iterative`` (Iter-FGSM, Iter-LL-FGSM, MIM), ``minimal`` (DeepFool, C&W-l2, DDN;
``eps=None`` means unbounded) and ``library`` (AutoAttack and Square from torchattacks, the
decision-based Boundary attack from foolbox). Every attack runs the model inside
:func:`reprtut.nn.frozen`, which is also reachable here as ``attacks.frozen``.
"""

from ..nn import frozen
from .core import check_inputs, cross_entropy_sum, input_gradient, margin, margin_loss_sum
from .gradient import check_budget, fgsm, pgd, pgd_steps
from .iterative import iter_fgsm, iter_ll_fgsm, kurakin_steps, least_likely_loss, mim
from .library import autoattack, boundary, square
from .minimal import cw_l2, ddn, deepfool
from .norms import NORMS, default_step_size, norm_of, project, random_start, steepest
from .threat import LOSSES, Threat

# name -> attack, for loops over the suite (chapter 2, the masking checks)
ATTACKS = {"fgsm": fgsm, "pgd": pgd, "iter_fgsm": iter_fgsm, "iter_ll_fgsm": iter_ll_fgsm,
           "mim": mim, "deepfool": deepfool, "cw_l2": cw_l2, "ddn": ddn,
           "autoattack": autoattack, "square": square}

__all__ = ["fgsm", "pgd", "pgd_steps", "iter_fgsm", "iter_ll_fgsm", "mim", "deepfool", "cw_l2",
           "ddn", "autoattack", "square", "boundary", "ATTACKS", "check_budget", "check_inputs",
           "cross_entropy_sum", "margin", "margin_loss_sum", "frozen", "input_gradient",
           "kurakin_steps", "least_likely_loss",
           "NORMS", "norm_of", "project", "random_start", "steepest", "default_step_size",
           "LOSSES", "Threat"]
