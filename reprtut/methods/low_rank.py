"""Low-rank representations (Sanyal, Kanade and Torr, 2018): the virtual LR layer.

The network is split at a layer l into f_l^- (before) and f_l^+ (after). The LR layer sits
between them and leaves the activations a = f_l^-(x) unchanged for f_l^+; it owns a symmetric
matrix W = (W_s + W_s^T) / 2 of shape (m, m) and a bias b (m,), and adds to the
cross-entropy (section 2, A-OPT)

    lambda_1 L_c(W, b; A) + lambda_2 L_N(A),
    L_c = 1/n sum_i ||W^T (a_i + b) - (a_i + b)||_2^2,    L_N = 1/n sum_i |1 - ||a_i||_2|,

whose gradient flows into W, b and the layers of f_l^-. After every optimizer step W is
projected back to rank r (algorithm 1, line 16), by an exact SVD or by the ensembled Nyström
method of appendix B.2, and the LR term is switched on only once the running training
accuracy has reached ``pretrain_acc`` (appendix C: 65 %). 1-LR puts one LR layer before the
last linear layer, 2-LR a second one before the last block.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from ..declare import Count, Real, Tensor, checked
from ..nn import capture
from ..train import Diverged
from .base import Objective, accuracy_metric, register

# Footnote 1 and appendix B.3: when the eigensolver fails to converge on the sampled
# principal submatrix (ill-conditioned), delta * I is added, again and again (at most
# NYSTROM_TRIES times) until it converges; delta >= 0 keeps a PSD submatrix PSD.
NYSTROM_SMOOTHING = 0.01
NYSTROM_TRIES = 10


class NonFiniteW(torch.linalg.LinAlgError, ValueError):
    """The projection's eigensolver failed on a W that is not finite (a diverged run)."""


class Square(Tensor):
    """A square float matrix (m, m). Shapes only: finiteness would cost a host sync every
    step, so a non-finite W surfaces as :class:`NonFiniteW` from the eigensolver instead."""
    def __init__(self):
        super().__init__(2, floating=True, finite=False)

    def check(self, v, name, args, reads, specs):
        super().check(v, name, args, reads, specs)
        if v.shape[0] != v.shape[1]:
            raise ValueError(f"{name} must be a square float matrix (m, m), got shape {tuple(v.shape)}")
        return v

    def example(self):
        return torch.eye(16)


def _rank(v, name: str, W) -> int:
    """A count in [1, m] for W (m, m)."""
    return validate.count(v, name, min=1, max=W.shape[0])


# W (m, m) and a rank r in [1, m] (the bound read off W when the call is checked)
Matrix = Annotated[torch.Tensor, Square()]
Rank = Annotated[int, Count(1)]
Projection = Literal["svd", "nystrom"]


@checked
def svd_project(W: Matrix, r: Rank) -> torch.Tensor:
    """Pi_r^rank(W) = argmin_{rank(Z) <= r} ||W - Z||_F (eq. 1): the top r singular triplets.

    W: (m, m); r in [1, m]; returns (m, m), same dtype and device. Cost O(m^3).
    """
    r = _rank(r, "r", W)
    try:
        U, S, Vh = torch.linalg.svd(W.float(), full_matrices=False)
    except torch.linalg.LinAlgError as err:
        raise NonFiniteW(f"W must be finite: the SVD failed ({err})") from err
    return ((U[:, :r] * S[:r]) @ Vh[:r]).to(W.dtype)


def _eigh_smoothed(Z: torch.Tensor, smoothing: float) -> tuple[torch.Tensor, torch.Tensor]:
    eye = torch.eye(len(Z), device=Z.device, dtype=Z.dtype)
    for k in range(NYSTROM_TRIES + 1):
        try:
            return torch.linalg.eigh(Z + k * smoothing * eye)
        except torch.linalg.LinAlgError:  # ill-conditioned: smooth more (footnote 1)
            continue
    raise NonFiniteW(f"W must be finite: Nyström's eigh of the {len(Z)}x{len(Z)} submatrix did "
                     f"not converge with up to {NYSTROM_TRIES * smoothing} * I added")


@checked
def nystrom_project(W: Matrix, r: Rank, l: Rank | None = None, t: Annotated[int, Count(1)] = 1, *,
                    smoothing: Annotated[float, Real(0, low_open=True)] = NYSTROM_SMOOTHING,
                    truncate: bool = True,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Ensembled Nyström rank-r approximation of a symmetric PSD W (appendix B.2, eq. 2).

    Each of the t runs samples l (default 2r) indices uniformly without replacement, takes
    the columns C = W[:, I] (m, l) and the principal submatrix Z = W[I, I] (l, l), keeps its
    top r eigenpairs (Z + k * smoothing * I with the smallest k >= 0 at which the
    eigensolver converges) and returns C Z_r^+ C^T; the
    runs are averaged (Kumar et al., 2009). Z_r^+ keeps only positive eigenvalues, so every
    run, and their average, is symmetric PSD whatever W is. Cost O(m^2 l t) instead of the
    SVD's O(m^3). W: (m, m); r in [1, m]; l in [1, m] (l < r is allowed, and poor); returns
    (m, m) in W's dtype (computed in float32).

    Each run has rank at most r, but an average of t of them can have rank up to t r. The
    paper averages and says nothing more; with ``truncate`` (the default) the average is cut
    back to its best rank-r part, so that the projection keeps its promise: the average is
    U U^T with U (m, t r) the runs' scaled columns, and a thin QR of U and the eigenpairs of a
    (t r, t r) matrix give that part in O(m (t r)^2), without an m x m eigendecomposition.
    """
    r, m = _rank(r, "r", W), W.shape[0]
    l = min(2 * r, m) if l is None else _rank(l, "l", W)
    Wf = W.float()
    parts = []
    for _ in range(t):
        where = generator.device if generator is not None else W.device
        idx = torch.randperm(m, generator=generator, device=where)[:l].to(W.device)
        C = Wf[:, idx]                                                    # (m, l)
        lam, Q = _eigh_smoothed(C[idx], smoothing)                        # ascending
        lam, Q = lam[-r:], Q[:, -r:]                                      # top r
        inv = torch.where(lam > 1e-8, 1.0 / lam.clamp_min(1e-8), torch.zeros_like(lam))
        parts.append((C @ Q) * inv.sqrt())                                # (m, r)
    U = torch.cat(parts, 1) / t ** 0.5                                    # (m, t r): mean = U U^T
    if truncate and t > 1:
        Qu, Ru = torch.linalg.qr(U)                                       # (m, k), (k, k)
        lam, V = torch.linalg.eigh(Ru @ Ru.T)                             # ascending, (k,)
        B = Qu @ V[:, -r:]                                                # (m, r)
        out = (B * lam[-r:].clamp_min(0)) @ B.T
    else:
        out = U @ U.T
    return _symmetrized(out).to(W.dtype)


def _symmetrized(A: torch.Tensor) -> torch.Tensor:
    """(A + A^T) / 2 of a square matrix, with A^T copied contiguously first: the same numbers
    as the plain expression, several times faster on a CPU for a large A (adding a matrix to
    its strided transpose misses the cache on nearly every element)."""
    return A.T.contiguous().add_(A).div_(2)


class _Symmetrize(torch.autograd.Function):
    """W = (W_s + W_s^T) / 2, whose gradient is (G + G^T) / 2, both by :func:`_symmetrized`."""

    @staticmethod
    def forward(ctx, W_s):
        return _symmetrized(W_s)

    @staticmethod
    def backward(ctx, G):
        return _symmetrized(G)


class LRLayer(nn.Module):
    """One virtual LR layer on m-dimensional activations: W = (W_s + W_s^T)/2 and b.

    W_s starts as the identity (W is then the projection onto everything) and b at zero.
    """

    def __init__(self, m: int, rank: int):
        super().__init__()
        self.rank = validate.count(rank, "rank", min=1, max=m)
        self.W_s = nn.Parameter(torch.eye(m))
        self.b = nn.Parameter(torch.zeros(m))

    @property
    def W(self) -> torch.Tensor:
        """The symmetric LR matrix (m, m)."""
        return _Symmetrize.apply(self.W_s)

    def losses(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L_c, L_N) of activations a (B, m), each a 0-d tensor (section 2)."""
        z = a.float() + self.b                                            # (B, m)
        L_c = (z @ self.W - z).pow(2).sum(1).mean()                       # W symmetric: W^T = W
        L_N = (1 - a.float().norm(dim=1)).abs().mean()
        return L_c, L_N

    @torch.no_grad()
    def project(self, method: Projection = "svd", l: int | None = None, t: int = 1) -> None:
        """W <- Pi_r^rank(W) by ``svd`` or ``nystrom``, written back as W_s (W_r is symmetric).
        ``method`` is one of the two, exactly: another spelling is refused, not run as Nyström."""
        W = self.W
        method = validate.choice(method, "method", ("svd", "nystrom"))
        # The bodies without the declared checks: W and its rank were checked when the layer
        # was built, and this runs after every training step.
        if method == "svd":
            W_r = svd_project.__wrapped__(W, self.rank)
        else:
            W_r = nystrom_project.__wrapped__(W, self.rank, l, t)
        self.W_s.copy_(W_r)


@register("low_rank")
class LowRank(Objective):
    """Cross-entropy + sum over LR layers of lambda_1 L_c + lambda_2 L_N (Sanyal et al., A-OPT).

    layers: names of the layers whose outputs carry an LR layer (as
        :func:`reprtut.nn.find_layer` takes them), e.g. ``["features"]`` (1-LR: before the
        last linear layer) or ``["features.14", "features"]`` (2-LR with the small CNN: also
        before its last block).
    ranks: the target rank r of each LR layer (the paper: 50 before FC layers, 1000 before
        the last ResNet block; "not very crucial": training reaches a lower rank).
    lam1, lam2: lambda_1 and lambda_2 (>= 0; both 0 gives plain cross-entropy with the same
        schedule: the N-LR control), one number for every LR layer or one per layer (layers
        whose activations differ in scale need their own: L_c grows with ||a||^2).
    projection: ``"svd"`` or ``"nystrom"`` for each layer (one string for all);
        nystrom_runs: t, the runs averaged by the ensembled Nyström method (l = 2r columns).
    pretrain_acc: the LR term is off until the running training accuracy (an exponential
        average over batches) reaches it (appendix C: 0.65); 0 switches it on at once.
    input_shape: (C, H, W) of the images (sizes the LR layers; (1, 28, 28) for MNIST).
    Metrics: loss, acc, L_c and L_N (summed over LR layers), lr_on (1 once switched on).
    """

    def __init__(self, model: nn.Module, layers=("features",), ranks=(10,),
                 lam1: float | list[float] = 0.01, lam2: float | list[float] = 0.001, projection="svd", nystrom_runs: int = 1,
                 pretrain_acc: float = 0.0, input_shape=(3, 32, 32)):
        super().__init__(model)
        if isinstance(layers, str) or not layers:
            raise ValueError(f"layers must be a non-empty list of layer names, got {layers!r}")
        self.layers = list(layers)
        if isinstance(ranks, int):
            ranks = [ranks] * len(self.layers)
        if len(ranks) != len(self.layers):
            raise ValueError(f"ranks must give one rank per layer ({len(self.layers)}), got {ranks!r}")
        projection = [projection] * len(self.layers) if isinstance(projection, str) else list(projection)
        if len(projection) != len(self.layers):
            raise ValueError(f"projection must be one method or one per layer, got {projection!r}")
        self.projection = [validate.choice(p, "projection", ("svd", "nystrom")) for p in projection]
        self.lam1 = self._per_layer(lam1, "lam1")
        self.lam2 = self._per_layer(lam2, "lam2")
        self.nystrom_runs = validate.count(nystrom_runs, "nystrom_runs", min=1)
        self.pretrain_acc = validate.real(pretrain_acc, "pretrain_acc", low=0.0, high=1.0)
        if len(input_shape) != 3 or not all(isinstance(s, int) and s > 0 for s in input_shape):
            raise ValueError(f"input_shape must be (C, H, W) of the images, got {input_shape!r}")
        dims = self._dims(model, tuple(input_shape))
        self.lr_layers = nn.ModuleList([LRLayer(dims[n], r) for n, r in zip(self.layers, ranks)])
        # Buffers, so that a resumed run keeps the schedule: no host sync decides it.
        self.register_buffer("acc_ema", torch.zeros(()))
        self.register_buffer("lr_on", torch.tensor(float(self.pretrain_acc == 0.0)))

    def _per_layer(self, lam, name: str) -> list[float]:
        """One weight >= 0 per LR layer, from one number for all or a list of them."""
        if isinstance(lam, (list, tuple)):
            if len(lam) != len(self.layers):
                raise ValueError(f"{name} must be one number or one per layer ({len(self.layers)}), got {lam!r}")
            return [validate.real(v, name, low=0.0) for v in lam]
        return [validate.real(lam, name, low=0.0)] * len(self.layers)

    def _dims(self, model: nn.Module, input_shape) -> dict[str, int]:
        """Size m of each LR layer's flattened activations, from one probe batch."""
        probe = torch.zeros(2, *input_shape, device=next(model.parameters()).device)
        was = model.training
        model.eval()
        try:
            with torch.no_grad(), capture(model, self.layers) as cap:
                model(probe)
        finally:
            model.train(was)
        return {n: cap.outputs[n].shape[1] for n in self.layers}

    def loss(self, x, y):
        with capture(self.model, self.layers) as cap:
            logits = self.model(x)
        ce = F.cross_entropy(logits, y)
        acc = accuracy_metric(logits, y)
        with torch.no_grad():  # the pre-training switch, on the device
            self.acc_ema.mul_(0.9).add_(0.1 * acc)
            self.lr_on.copy_(torch.maximum(self.lr_on, (self.acc_ema >= self.pretrain_acc).float()))
        L_c = L_N = reg = torch.zeros((), device=x.device)
        for name, lr, lam1, lam2 in zip(self.layers, self.lr_layers, self.lam1, self.lam2):
            c, n = lr.losses(cap.outputs[name])
            L_c, L_N, reg = L_c + c, L_N + n, reg + (lam1 * c + lam2 * n)
        loss = ce + self.lr_on * reg
        return loss, {"loss": loss.detach(), "acc": acc, "L_c": L_c.detach(),
                      "L_N": L_N.detach(), "lr_on": self.lr_on.clone()}

    def step(self, x, y, update):
        metrics = super().step(x, y, update)
        # Algorithm 1, line 16: hard-threshold the rank of W after the gradient step.
        for lr, method in zip(self.lr_layers, self.projection):
            try:
                lr.project(method, t=self.nystrom_runs)
            except torch.linalg.LinAlgError as err:  # W went non-finite: the run diverged
                raise Diverged(f"the LR layer's W is not finite ({err}); lower lam1, lam2 or the "
                               "learning rate") from err
        return metrics
