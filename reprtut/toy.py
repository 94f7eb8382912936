"""The boundary-tilting toy of Kim, Seo & Jeon (2019), section 2.2, appendices A.1 and B.2.

Two bivariate Gaussians with the same covariance Σ = [[1, -0.01], [-0.01, 0.0002]] and means
-m and m, m = (1.2, 0.1): long thin clouds side by side, separated by 0.2 across their thin
direction (standard deviation 0.01) and overlapping along their long one (standard deviation
1). A boundary between the clouds that runs along them separates the classes perfectly but
lies 0.1 from every point; adversarial training with an l2 budget above 0.1 forbids it and
*tilts* the boundary towards the normal of the long direction (the paper's Figure 3).

The points are not images (no [0, 1] box, two coordinates), so the toy has its own few-line
training loop; its inner maximisation is the book's PGD loop (:func:`reprtut.attacks.pgd_steps`)
in the l2 ball without the box, on the model frozen by :func:`reprtut.nn.frozen`.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn as nn
import torch.nn.functional as F

from .attacks import pgd_steps
from .declare import Count, Labels, Model, Real, Tensor, check_call, checked

MEAN = (1.2, 0.1)                                   # class 1 at +MEAN, class 0 at -MEAN
COV = ((1.0, -0.01), (-0.01, 0.0002))               # shared covariance (appendix A.1)

# What the toy's functions take: points (B, 2), labels in {0, 1} of those points, a network
# (of :func:`net`: two classes), budgets and counts.
Points = Annotated[torch.Tensor, Tensor(shape=(None, 2), floating=True)]
PointLabels = Annotated[torch.Tensor, Labels("x", classes=2)]
class _Net(Model):
    """A network on points (B, 2): its first linear layer takes two inputs."""
    def check(self, v, name, args, reads, specs):
        first = next((m for m in super().check(v, name, args, reads, specs).modules()
                      if isinstance(m, nn.Linear)), None)
        if first is None or first.in_features != 2:
            raise ValueError(f"{name} must be a network on points (B, 2) such as toy.net(), got "
                             f"{type(v).__name__} without a first Linear(2, ...)")
        return v

    def example(self):
        return net(8)


Net = Annotated[nn.Module, _Net()]
Eps = Annotated[float, Real(0)]
Positive = Annotated[int, Count(1)]
Seed = Annotated[int, Count(0)]


@checked
def sample(n_per_class: Positive = 3000, seed: Seed = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n_per_class`` points of each Gaussian: x (2n, 2) float32, y (2n,) int64 in {0, 1}."""
    n = n_per_class
    g = torch.Generator().manual_seed(seed)
    chol = torch.linalg.cholesky(torch.tensor(COV, dtype=torch.float64))
    z = torch.randn(2 * n, 2, generator=g, dtype=torch.float64) @ chol.T
    y = torch.arange(2).repeat_interleave(n)
    mean = torch.tensor(MEAN, dtype=torch.float64)
    x = z + (2 * y[:, None] - 1) * mean
    return x.float(), y


@checked
def high_variance_direction() -> torch.Tensor:
    """The unit leading eigenvector v of Σ, (2,) (about (1, -0.01): the clouds' long axis)."""
    vals, vecs = torch.linalg.eigh(torch.tensor(COV, dtype=torch.float64))
    return vecs[:, vals.argmax()].float()


@checked
def net(hidden: Positive = 128) -> nn.Module:
    """The two-layer ReLU network of appendix A.2: Dense(hidden) ReLU, Dense(2)."""
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(),
                         nn.Linear(hidden, 2))


@checked
def attack(model: Net, x: Points, y: PointLabels, eps: Eps, steps: Positive = 10) -> torch.Tensor:
    """l2 PGD on the cross-entropy, from the point itself, steps of 2.5 eps / steps: (B, 2) -> (B, 2)."""
    return _pgd(model, x, y, eps, steps)


def _pgd(model, x, y, eps: float, steps: int) -> torch.Tensor:
    # The summed cross-entropy, so each point's gradient is its own; pgd_steps freezes the model.
    return pgd_steps(model, x, y, eps=eps, norm="l2", steps=steps, random_start=False, box=None)


@checked
def train(eps: Eps = 0.0, *, epochs: Positive = 10, batch_size: Positive = 64, steps: Positive = 7,
          hidden: Positive = 128, seed: Seed = 0,
          data: tuple[torch.Tensor, torch.Tensor] | None = None) -> nn.Module:
    """Train :func:`net` with Adam (1e-3, appendix A.2) for ``epochs`` epochs on ``data``
    (default :func:`sample` with ``seed``), on the adversarial points of l2 PGD with budget
    ``eps`` only (``eps = 0``: standard training). Returns the network in eval mode."""
    if data is None:
        x, y = sample(seed=seed)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = check_call(_data, *data).arguments.values()  # user data: checked here, reads included
    else:
        raise ValueError(f"data must be a pair (x, y) of points and labels, got {type(data).__name__}")
    torch.manual_seed(seed)
    model = net(hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for i in range(0, len(x), batch_size):
            xb, yb = x[order[i:i + batch_size]], y[order[i:i + batch_size]]
            if eps > 0:
                xb = _pgd(model, xb, yb, eps, steps)
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


def _data(x: Points, y: PointLabels) -> None:
    """The declaration of :func:`train`'s ``data``: points (B, 2) and their labels."""


@checked
def tilt(model: Net, x: Points) -> torch.Tensor:
    """The angle in degrees, per point, between the boundary normal and the clouds' long axis.

    The normal at x is the input gradient of the logit difference z_1 - z_0, the direction
    the loss gradient (and an l2 adversarial step) takes; the angle to the leading
    eigenvector v of Σ is arccos(|<n, v>| / ||n||), in [0, 90]: 90 degrees is a boundary
    running along the clouds (fully tilted), 0 one cutting straight across them.
    x (B, 2) -> (B,).
    """
    x = x.detach().float().requires_grad_(True)
    z = model(x)
    (n,) = torch.autograd.grad((z[:, 1] - z[:, 0]).sum(), x)
    cos = (n @ high_variance_direction()).abs() / n.norm(dim=1).clamp_min(1e-12)
    return torch.rad2deg(torch.arccos(cos.clamp(max=1.0))).detach()


@checked
def accuracy(model: Net, x: Points, y: PointLabels) -> float:
    """Fraction of points classified correctly."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


@checked
def grid(model: Net, lim: tuple[float, float, float, float] = (-4.5, 4.5, -0.3, 0.3),
         n: Annotated[int, Count(2)] = 200) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(X, Y, P): an n x n grid over (xmin, xmax, ymin, ymax) and the predicted class there,
    for drawing decision regions."""
    xs = torch.linspace(lim[0], lim[1], n)
    ys = torch.linspace(lim[2], lim[3], n)
    X, Y = torch.meshgrid(xs, ys, indexing="xy")
    with torch.no_grad():
        P = model(torch.stack([X.flatten(), Y.flatten()], 1)).argmax(1).view(n, n)
    return X, Y, P


__all__ = ["MEAN", "COV", "sample", "high_variance_direction", "net", "attack", "train", "tilt",
           "accuracy", "grid"]
