"""Measuring low-rank representations (Sanyal, Kanade and Torr, 2018, sections 3 and 4).

The activations A (n, m) of a layer, their variance ratio VR_k (the share of the squared
singular values in the top k), class-wise VR_1 (appendix C.3), max-margin linear classifiers
on PCA projections of A (X-MAXG, table 2 and appendix C.2), the representation distance
d_adv (section 4), the smallest attack budget that fools more than 99 % of the examples and
the median rho of the examples an attack fools (table 3, appendix D.2). The LR layer itself
is :mod:`reprtut.methods.low_rank`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

from . import validate
from .attacks.norms import norm_of
from .evaluate import perturb, predict
from .nn import capture, check_batch, find_layer, frozen, input_channels


@torch.no_grad()
def activations(model: nn.Module, x: torch.Tensor, layer: str = "features",
                batch_size: int = 500) -> torch.Tensor:
    """A = f_l^-(x): the outputs of ``layer`` (a name of ``model.named_modules()``; default
    R(x)) for images x (N, C, H, W) in [0, 1], flattened to (N, m), float32, in eval mode."""
    validate.module(model)
    validate.images(x, "x")
    validate.channels(x, input_channels(model))
    find_layer(model, layer)
    batch_size = validate.count(batch_size, "batch_size", min=1)
    out = []
    with frozen(model), capture(model, [layer]) as cap:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
            out.append(cap.outputs[layer].float())
    return torch.cat(out)


def _matrix(A, name: str = "A") -> torch.Tensor:
    if not torch.is_tensor(A) or A.dim() != 2 or A.shape[0] < 1 or A.shape[1] < 1:
        raise ValueError(f"{name} must be an activation matrix of shape (n, m), got "
                         f"{getattr(A, 'shape', type(A).__name__)}")
    if not bool(torch.isfinite(A).all()):
        raise ValueError(f"{name} holds non-finite values")
    return A.detach().double()


def variance_ratio(A: torch.Tensor, center: bool = False) -> torch.Tensor:
    """VR_k(A) = sum_{i<=k} sigma_i^2 / sum_i sigma_i^2 for k = 1..min(n, m) (section 3).

    A: (n, m) activations; sigma_i its singular values, largest first. ``center`` subtracts
    the mean activation first (the rank of the affine span; the paper's definition, the
    default, does not). Returns a (min(n, m),) float64 tensor on the CPU, increasing to 1;
    ``vr[k - 1]`` is VR_k.
    """
    A = _matrix(A).cpu()
    validate.flag(center, "center")
    if center:
        A = A - A.mean(0)
    s2 = torch.linalg.svdvals(A) ** 2
    return s2.cumsum(0) / s2.sum().clamp_min(1e-300)


def classwise_vr1(A: torch.Tensor, y: torch.Tensor, classes: int | None = None) -> torch.Tensor:
    """VR_1 of the activations of each class (appendix C.3, figure 4): (K,) float64; NaN for
    a class without examples."""
    A = _matrix(A)
    classes = validate.count(classes, "classes", min=1, allow_none=True)
    validate.labels(y.to(A.device) if torch.is_tensor(y) else y, len(A), classes)
    K = int(y.max()) + 1 if classes is None else classes
    y = y.cpu()
    return torch.tensor([variance_ratio(A[(y == c).to(A.device)].float())[0].item()
                         if bool((y == c).any()) else float("nan") for c in range(K)],
                        dtype=torch.float64)


def max_margin(A_train: torch.Tensor, y_train: torch.Tensor, dim: int | None = None, *,
               alpha: float = 0.01, seed: int = 0):
    """An X-MAXG classifier (appendix C): standard scaling, PCA to ``dim`` dimensions (None:
    none), then a linear max-margin classifier trained by SGD on the hinge loss with an L2
    penalty of ``alpha`` (the paper: 0.01) and the learning rate eta_0 / (1 + alpha t).

    A_train (n, m), y_train (n,). Returns a fitted scikit-learn pipeline; call
    ``.score(A_test.numpy(), y_test.numpy())`` for its accuracy.
    """
    from sklearn.decomposition import PCA
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    A = _matrix(A_train, "A_train")
    validate.labels(y_train.to(A.device), len(A), name="y_train")
    if dim is not None:
        validate.count(dim, "dim", min=1, max=min(A.shape))
    alpha = validate.real(alpha, "alpha", low=0.0, low_open=True)
    steps = [StandardScaler()]
    if dim is not None:
        steps.append(PCA(dim, random_state=seed))
    steps.append(SGDClassifier(loss="hinge", alpha=alpha, learning_rate="optimal",
                               max_iter=50, tol=1e-4, random_state=seed))
    return make_pipeline(*steps).fit(A.cpu().numpy(), y_train.cpu().numpy())


def pca_accuracies(A_train: torch.Tensor, y_train: torch.Tensor, A_test: torch.Tensor,
                   y_test: torch.Tensor, dims: Sequence[int | None]) -> dict:
    """Test accuracy of :func:`max_margin` on PCA projections to each of ``dims`` (table 2);
    None stands for the full representation. Returns dim -> accuracy."""
    A_test = _matrix(A_test, "A_test")
    validate.labels(y_test.to(A_test.device), len(A_test), name="y_test")
    return {d: float(max_margin(A_train, y_train, d).score(A_test.cpu().numpy(), y_test.cpu().numpy()))
            for d in dims}


def tail_parameters(model: nn.Module, layer: str) -> int:
    """Parameters of f_l^+, the part of the network after ``layer`` (for the compression of
    table 2(b)): those of the modules registered after it, by position in ``named_modules``."""
    names = [n for n, _ in model.named_modules()]
    find_layer(model, layer)
    after = set(names[names.index(layer) + 1:])
    inside = {n for n in after if n.startswith(layer + ".")}
    params = dict(model.named_parameters())
    return sum(p.numel() for n, p in params.items()
               if n.rsplit(".", 1)[0] in after - inside)


def d_adv(model: nn.Module, x: torch.Tensor, x_adv: torch.Tensor, layer: str = "features",
          y: torch.Tensor | None = None) -> float:
    """d_adv = 1/N sum ||f_l^-(x_a) - f_l^-(x_d)||_2^2 (section 4) over the N examples (only
    those the model classifies correctly, if labels ``y`` are given)."""
    validate.images(x_adv, "x_adv")
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    a, b = activations(model, x, layer), activations(model, x_adv, layer)
    keep = torch.ones(len(x), dtype=torch.bool, device=a.device)
    if y is not None:
        validate.labels(y, len(x))
        keep = predict(model, x).argmax(1) == y
    return (a - b)[keep].pow(2).sum(1).mean().item()


def min_fooling_budget(target: nn.Module, x: torch.Tensor, y: torch.Tensor, attack,
                       eps_values: Sequence[float], *, surrogate: nn.Module | None = None,
                       success: float = 0.99, step_size_of_eps: float | None = None,
                       **kwargs) -> dict:
    """Table 3's protocol (appendix D.2): the smallest eps of ``eps_values`` at which
    ``attack`` (run with ``early_stop=True`` and ``kwargs``) misclassifies more than
    ``success`` of the examples that ``target`` gets right, and rho = mean ||x_a - x_d||_2 /
    ||x_d||_2 over them. Black box when a ``surrogate`` computes the perturbation.

    step_size_of_eps: if given, each eps is attacked with step_size = step_size_of_eps * eps
    (with a fixed ``steps`` in kwargs, every eps gets the same number of steps).
    Returns {"eps", "rho", "fooled"}; eps and rho are NaN when no eps reaches ``success``
    (then "fooled" is the rate at the largest eps).
    """
    step_size_of_eps = validate.real(step_size_of_eps, "step_size_of_eps", low=0.0,
                                     low_open=True, allow_none=True)
    check_batch(target, x, y)
    success = validate.real(success, "success", low=0.0, high=1.0)
    source = target if surrogate is None else validate.module(surrogate, "surrogate")
    right = predict(target, x).argmax(1) == y
    x, y = x[right], y[right]
    fooled = float("nan")
    for eps in sorted(float(e) for e in eps_values):
        if step_size_of_eps is not None:
            kwargs["step_size"] = step_size_of_eps * eps
        x_adv = perturb(source, x, y, attack, eps=eps, early_stop=True, **kwargs)
        wrong = predict(target, x_adv).argmax(1) != y
        fooled = wrong.float().mean().item()
        if fooled > success:
            rho = (norm_of(x_adv - x, "l2") / norm_of(x, "l2").clamp_min(1e-12))[wrong]
            return {"eps": eps, "rho": rho.mean().item(), "fooled": fooled}
    return {"eps": float("nan"), "rho": float("nan"), "fooled": fooled}


def rho(x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """rho = ||x_a - x_d||_2 / ||x_d||_2 per example (section 4, appendix D.2): (N,) tensor
    on x's device; x_adv and x (N, C, H, W) in [0, 1]."""
    validate.images(x_adv, "x_adv")
    validate.images(x, "x")
    if x_adv.shape != x.shape:
        raise ValueError(f"x_adv must have the shape of x {tuple(x.shape)}, got {tuple(x_adv.shape)}")
    return norm_of(x_adv - x, "l2") / norm_of(x, "l2").clamp_min(1e-12)


def median_fooling_rho(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                       x_adv: torch.Tensor) -> float:
    """Table 3's DeepFool column (appendix D.2): the median rho = ||x_adv - x||_2 / ||x||_2
    over the examples that ``model`` classifies correctly on x and misclassifies on x_adv.

    x and x_adv: (N, C, H, W) in [0, 1]; y: (N,). x_adv may come from another model (a
    black-box attack). Returns a float; NaN when x_adv fools none of them.
    """
    check_batch(model, x, y)
    r = rho(x_adv, x)
    fooled = (predict(model, x).argmax(1) == y) & (predict(model, x_adv).argmax(1) != y)
    return r[fooled].median().item() if bool(fooled.any()) else float("nan")


def spsd(m: int, r: int = 10, tail: float = 1e-3, *,
         generator: torch.Generator | None = None) -> torch.Tensor:
    """A random symmetric positive semi-definite (m, m) matrix U diag(λ) Uᵀ with r large
    eigenvalues, 10 down to 1, and a small tail of m - r eigenvalues uniform in [0, tail):
    the spectrum the LR layer's W takes during training (section 3.1), on which the SVD and
    Nyström projections are compared. U is the Q of a Gaussian matrix's QR decomposition.
    Draws from ``generator`` (default: torch's global generator); float32 on the CPU."""
    m = validate.count(m, "m", min=1)
    r = validate.count(r, "r", min=1, max=m)
    tail = validate.real(tail, "tail", low=0.0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise validate.ArgumentTypeError(f"generator must be a torch.Generator or None, got "
                                         f"{validate._show(generator)}")
    U = torch.linalg.qr(torch.randn(m, m, generator=generator))[0]               # (m, m)
    lam = torch.cat([torch.linspace(10, 1, r), tail * torch.rand(m - r, generator=generator)])
    return (U * lam) @ U.T
