"""Per-norm pieces of gradient attacks: the steepest-ascent step, the projection onto the
eps-ball and a random start. All act on a batch (B, ...) with one eps for every example.

PGD in l_inf, l_2 and l_1 is one loop (:func:`reprtut.attacks.pgd_steps`) that looks these
pieces up by the norm's name.
"""

from __future__ import annotations

import torch

# The sparse l_1 step moves only the coordinates whose |gradient| reaches this quantile of
# the example's |gradient| (Tramer & Boneh, 2019, "SLIDE"; 0.99 is their and Foolbox's default):
# a dense l_1-normalised step would spread eps over every pixel and barely move any of them.
L1_QUANTILE = 0.99


def _batch_norm(v: torch.Tensor, p: float) -> torch.Tensor:
    """||v_i||_p of each example, shaped (B, 1, ..., 1) to broadcast against v."""
    return v.flatten(1).norm(p=p, dim=1).view(-1, *([1] * (v.dim() - 1)))


def _per_example(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B,) values shaped (B, 1, ..., 1) to broadcast against ``like``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def norm_of(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """||delta_i|| of each example in the given norm, shape (B,)."""
    return _batch_norm(delta, {"linf": float("inf"), "l2": 2.0, "l1": 1.0}[norm]).flatten()


# ---------------------------------------------------------------------------- steepest steps
# Each takes the gradient g (B, ...) and, where the step cares about the box, the current
# point x_adv (None: ignore the box) and the box (lo, hi) itself ([0, 1] for images).

def _linf_step(g, x_adv=None, box=(0.0, 1.0)):
    return g.sign()


def _l2_step(g, x_adv=None, box=(0.0, 1.0)):
    return g / _batch_norm(g, 2).clamp_min(1e-12)


def _l1_step(g, x_adv=None, box=(0.0, 1.0)):
    """Sparse steepest ascent for l_1: sign(g) on the top 1 % of |g|, scaled to unit l_1 norm.

    Coordinates already at a face of the box whose gradient points out of it cannot move;
    they are dropped before the top coordinates are chosen, or the step would be wasted on
    them (on MNIST most pixels sit at 0).
    """
    if x_adv is not None and box is not None:
        stuck = ((x_adv <= box[0]) & (g < 0)) | ((x_adv >= box[1]) & (g > 0))
        g = g.masked_fill(stuck, 0.0)
    a = g.abs().flatten(1)                                              # (B, n)
    k = max(1, a.shape[1] - int(L1_QUANTILE * a.shape[1]))              # coordinates moved
    threshold = a.topk(k, dim=1).values[:, -1:]                          # (B, 1)
    e = torch.where(a >= threshold, g.flatten(1).sign(), torch.zeros_like(a))
    return (e / e.abs().sum(1, keepdim=True).clamp_min(1.0)).view_as(g)


# ------------------------------------------------------------------------------ projections

def _linf_project(delta, eps):
    return delta.clamp(-eps, eps)


def _l2_project(delta, eps):
    return delta * (eps / _batch_norm(delta, 2).clamp_min(1e-12)).clamp(max=1.0)


def _l1_project(delta, eps):
    """Exact Euclidean projection onto the l_1 ball (Duchi et al., 2008, fig. 1), batched.

    With u = |delta| sorted in decreasing order, rho = max{j : u_j > (sum_{i<=j} u_i - eps)/j}
    and theta = (sum_{i<=rho} u_i - eps)/rho, the projection is sign(delta) max(|delta| - theta, 0).
    Examples already inside the ball get theta = 0 and are returned unchanged.
    """
    v = delta.flatten(1).abs()                                           # (B, n)
    u, _ = v.sort(dim=1, descending=True)
    css = u.cumsum(1) - eps                                              # (B, n)
    j = torch.arange(1, u.shape[1] + 1, device=u.device, dtype=u.dtype)
    rho = ((u - css / j) > 0).to(u.dtype).mul(j).argmax(1, keepdim=True)  # last j with u_j > .., 0-based
    theta = (css.gather(1, rho) / (rho + 1).to(u.dtype)).clamp_min(0)   # (B, 1)
    inside = v.sum(1, keepdim=True) <= eps
    theta = torch.where(inside, torch.zeros_like(theta), theta)
    return (delta.flatten(1).sign() * (v - theta).clamp_min(0)).view_as(delta)


# ----------------------------------------------------------------------------- random starts

def _linf_init(x, eps):
    return torch.empty_like(x).uniform_(-eps, eps)


def _radius(x, eps):
    # A point uniform in an n-dimensional ball lies at radius eps * U^(1/n).
    n = x[0].numel()
    return eps * torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype) ** (1.0 / n)


def _l2_init(x, eps):
    # Uniform in the l2 ball: a Gaussian direction and a radius eps * U^(1/n).
    direction = torch.randn_like(x)
    direction = direction / _batch_norm(direction, 2).clamp_min(1e-12)
    return direction * _radius(x, eps)


def _l1_init(x, eps):
    # Uniform in the l1 ball: i.i.d. Laplace coordinates divided by their l1 norm are uniform
    # on the l1 sphere; the radius is again eps * U^(1/n).
    direction = torch.empty_like(x).exponential_() * (2 * torch.randint_like(x, 2) - 1)
    direction = direction / _batch_norm(direction, 1).clamp_min(1e-12)
    return direction * _radius(x, eps)


# norm -> (steepest-ascent direction of unit norm, projection onto the eps-ball, random start)
NORMS = {
    "linf": (_linf_step, _linf_project, _linf_init),
    "l2": (_l2_step, _l2_project, _l2_init),
    "l1": (_l1_step, _l1_project, _l1_init),
}


def default_step_size(eps: float, steps: int) -> float:
    """alpha = 2.5 eps / steps (Madry et al., 2018): the step length every PGD budget takes when
    none is given, so that the iterates can reach the ball's boundary from any start."""
    return 2.5 * eps / steps


def steepest(g: torch.Tensor, norm: str, x_adv: torch.Tensor | None = None,
             box: tuple[float, float] | None = (0.0, 1.0)) -> torch.Tensor:
    """The unit-norm direction that increases a linear function with gradient g the most.

    g: (B, ...). linf: sign(g); l2: g / ||g||_2; l1: the sparse step of :func:`_l1_step`.
    x_adv: the current point in the box (lo, hi) (default [0, 1]; None: no box), used by l1
    to skip coordinates pinned by the box.
    """
    return NORMS[norm][0](g, x_adv, box)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The closest point to delta inside the eps-ball of ``norm`` (exact for all three)."""
    return NORMS[norm][1](delta, eps)


def random_start(x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """A perturbation drawn uniformly from the eps-ball, shaped like x."""
    return NORMS[norm][2](x, eps)
