"""Per-norm pieces of gradient attacks: the steepest-ascent step, the projection onto the
eps-ball and a random start. All act on a batch (B, ...) with one eps for every example."""

from __future__ import annotations

import torch


def _batch_norm(v: torch.Tensor, p: float) -> torch.Tensor:
    """||v_i||_p of each example, shaped (B, 1, ..., 1) to broadcast against v."""
    return v.flatten(1).norm(p=p, dim=1).view(-1, *([1] * (v.dim() - 1)))


def norm_of(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """||delta_i|| of each example in the given norm, shape (B,)."""
    return _batch_norm(delta, {"linf": float("inf"), "l2": 2.0, "l1": 1.0}[norm]).flatten()


def _linf_step(g):
    return g.sign()


def _l2_step(g):
    return g / _batch_norm(g, 2).clamp_min(1e-12)


def _linf_project(delta, eps):
    return delta.clamp(-eps, eps)


def _l2_project(delta, eps):
    return delta * (eps / _batch_norm(delta, 2).clamp_min(1e-12)).clamp(max=1.0)


def _linf_init(x, eps):
    return torch.empty_like(x).uniform_(-eps, eps)


def _l2_init(x, eps):
    # Uniform in the l2 ball: a Gaussian direction and a radius eps * U^(1/n).
    direction = torch.randn_like(x)
    direction = direction / _batch_norm(direction, 2).clamp_min(1e-12)
    n = x[0].numel()
    radius = eps * torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device) ** (1.0 / n)
    return direction * radius


# norm -> (steepest-ascent direction of unit norm, projection onto the eps-ball, random start)
NORMS = {
    "linf": (_linf_step, _linf_project, _linf_init),
    "l2": (_l2_step, _l2_project, _l2_init),
}


def steepest(g: torch.Tensor, norm: str) -> torch.Tensor:
    """The unit-norm direction that increases a linear function with gradient g the most."""
    return NORMS[norm][0](g)


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The closest point to delta inside the eps-ball of ``norm``."""
    return NORMS[norm][1](delta, eps)


def random_start(x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """A perturbation drawn uniformly from the eps-ball, shaped like x."""
    return NORMS[norm][2](x, eps)
