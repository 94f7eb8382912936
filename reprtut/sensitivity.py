"""How much a representation moves under attack, and how many dimensions it uses
(Bashivan et al., 2021, section 3: Figure 4, Table A5, Figures A8-A9).

- :func:`sensitivity`: the normalised representation sensitivity
  ||E(x) - E(x')||_2 / ||E(x)||_2 of each image, x' an adversarial example of x.
- :func:`gradient_landscape`: log mean_x ||d l_i / d x||_2 for each (true class t, class i),
  with l = softmax(Dc(E(x))) the class likelihoods (Figure 4, right; Theorem 1 says AFD
  drives these gradients to zero).
- :func:`dimensionality`: non-zero units and the number of principal components that explain
  99 % of the variance of R over a test set (Table A5), with scikit-learn's PCA, and the
  scale-free :func:`participation_ratio` of its covariance (also within classes).
- :func:`tsne`: a 2-d t-SNE embedding of representations (scikit-learn), for Figures A8-A9.

E(x) is the classifier's representation ``model.features(x)`` (:mod:`reprtut.representation`).
"""

from __future__ import annotations

from typing import Annotated, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .attacks import pgd
from .attacks.core import Eps
from .declare import Count, Real, Reals, Tensor, checked
from .evaluate import AttackFn, BatchSize, perturb
from . import validate
from .nn import Classifier, Images, Labels, Model, frozen, num_classes
from .representation import representation


@checked
def sensitivity(model: Classifier, x: Images, y: Labels, *, eps: Eps, attack: AttackFn = pgd,
                batch_size: BatchSize = 500, **kwargs) -> torch.Tensor:
    """||E(x) - E(x')||_2 / ||E(x)||_2 per image (AFD paper, section 3), x' = attack(x).

    x: (N, C, H, W) in [0, 1]; y: (N,) int64 labels; eps: the attack's radius (>= 0; for
    ``pgd`` l_inf by default, kwargs go to the attack, e.g. ``steps``, ``norm``). Returns a
    float32 (N,) tensor on x's device, >= 0 (0 where x' = x). An image whose representation
    is all zeros counts as not moved (its ratio is taken over max(||E(x)||, 1e-12)).
    """
    x_adv = perturb(model, x, y, attack, batch_size=batch_size, eps=eps, **kwargs) if eps > 0 else x
    r, r_adv = representation(model, x), representation(model, x_adv)      # (N, d) each
    return (r - r_adv).norm(dim=1) / r.norm(dim=1).clamp_min(1e-12)


@checked
def sensitivity_curve(model: Classifier, x: Images, y: Labels,
                      eps_values: Annotated[Sequence[float], Reals(0)], *, attack: AttackFn = pgd,
                      **kwargs) -> dict[str, list[float]]:
    """Median and interquartile range of :func:`sensitivity` at each eps of ``eps_values``
    (Figure 4, left, plots the median). Returns {"eps", "median", "q25", "q75"}, lists of
    floats, one per eps."""
    out = {"eps": eps_values, "median": [], "q25": [], "q75": []}
    for e in eps_values:
        s = sensitivity(model, x, y, eps=e, attack=attack, **kwargs).float()
        q = torch.quantile(s, torch.tensor([0.25, 0.5, 0.75], device=s.device)).tolist()
        out["q25"].append(q[0])
        out["median"].append(q[1])
        out["q75"].append(q[2])
    return out


@checked
def gradient_landscape(model: Model, x: Images, y: Labels, batch_size: BatchSize = 250) -> torch.Tensor:
    """G[t, i] = log mean_{x of class t} ||d l_i(x) / d x||_2 with l = softmax(model(x))
    (AFD paper, Figure 4 right: rows are the true class t, columns the class i whose
    likelihood is differentiated). Theorem 1: at AFD's optimum d l_t / d x = 0.

    x: (N, C, H, W) in [0, 1], y: (N,) int64 in [0, K). Returns a float32 (K, K) tensor on the
    CPU; a row is NaN for a class with no image in x. K backward passes per batch.
    """
    k = num_classes(model, x)
    sums = torch.zeros(k, k, dtype=torch.float64)
    counts = torch.bincount(y.cpu(), minlength=k).double()
    with frozen(model):
        for j in range(0, len(x), batch_size):
            xb = x[j:j + batch_size].detach().requires_grad_(True)
            yb = y[j:j + batch_size]
            p = F.softmax(model(xb).float(), 1)                                   # (b, K)
            norms = []
            for i in range(k):
                (g,) = torch.autograd.grad(p[:, i].sum(), xb, retain_graph=i < k - 1)
                norms.append(g.flatten(1).norm(dim=1))                            # (b,)
            norms = torch.stack(norms, 1).double().cpu()                          # (b, K)
            sums.index_add_(0, yb.cpu(), norms)
    return (sums / counts[:, None]).log().float()


@checked
def participation_ratio(r: Annotated[torch.Tensor, Tensor(2, floating=True, min_len=2)]) -> float:
    """The participation ratio of the covariance spectrum of r (N, d), N >= 2:

        PR = (sum_i lambda_i)^2 / sum_i lambda_i^2,   lambda_i the eigenvalues of cov(r)

    between 1 (all variance on one direction) and d (equal variance on every direction). It
    does not change when r is scaled, and unlike a count of components for 99 % of the
    variance it does not jump when a few directions are inflated past the threshold: each
    direction counts by its share. 0.0 for a representation without variance."""
    a = r.detach().double().cpu()
    a = a - a.mean(0)
    lam = torch.linalg.svdvals(a) ** 2                 # (min(N, d),) N - 1 times the eigenvalues
    total = float((lam ** 2).sum())
    return float(lam.sum() ** 2 / total) if total > 0 else 0.0


def _pca_dims(a: np.ndarray, variance: float) -> int:
    from sklearn.decomposition import PCA
    ratios = PCA().fit(a).explained_variance_ratio_
    return min(int(np.searchsorted(np.cumsum(ratios), variance - 1e-9) + 1), a.shape[1])


@checked
def dimensionality(r: Annotated[torch.Tensor, Tensor(2, floating=True, min_len=2)],
                   variance: Annotated[float, Real(0, 1, low_open=True)] = 0.99,
                   tol: Annotated[float, Real(0)] = 0.0,
                   y: torch.Tensor | None = None) -> dict[str, float]:
    """Table A5's two measures of how many dimensions a representation uses, and two that do
    not depend on the scale of a few directions.

    r: (N, d) representations of a test set (e.g. :func:`reprtut.representation.representation`).
    ``units``: coordinates that are non-zero (|r| > tol) for at least one image; ``dims``:
    principal components (scikit-learn PCA) needed to explain ``variance`` (in (0, 1]) of the
    total variance; ``pr``: the :func:`participation_ratio` of r's covariance. With labels
    y (N,) also ``dims_within`` and ``pr_within``, the same two after subtracting each class's
    mean (the spread within classes, without the directions that separate them). Returns
    {"units": int, "dims": int, "pr": float, "d": d} (and the two within-class entries).
    """
    a = r.detach().double().cpu().numpy()
    out = {"units": int((np.abs(a) > tol).any(0).sum()), "dims": _pca_dims(a, variance),
           "pr": participation_ratio(r), "d": a.shape[1]}
    if y is not None:
        if not torch.is_tensor(y) or y.shape != (len(r),) or y.is_floating_point():
            raise ValueError(f"y must be an integer tensor ({len(r)},) of labels, got {validate._show(y)}")
        centred = r.detach().double().cpu().clone()
        yc = y.detach().cpu()
        for k in yc.unique():
            centred[yc == k] -= centred[yc == k].mean(0)
        out["dims_within"] = _pca_dims(centred.numpy(), variance)
        out["pr_within"] = participation_ratio(centred)
    return out


@checked
def tsne(r: Annotated[torch.Tensor, Tensor(2, floating=True)], seed: Annotated[int, Count(0)] = 0,
         perplexity: Annotated[float, Real(0, low_open=True)] = 30.0) -> np.ndarray:
    """2-d t-SNE embedding (van der Maaten & Hinton, 2008; scikit-learn) of representations
    r (N, d), N > perplexity; returns a numpy (N, 2) array. Embed the clean and the perturbed
    representations of one model together, so that their positions can be compared."""
    if len(r) <= perplexity:
        raise ValueError(f"r: t-SNE needs more points than perplexity={perplexity}, got {len(r)}")
    from sklearn.manifold import TSNE
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        r.detach().float().cpu().numpy())
