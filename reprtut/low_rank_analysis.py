"""Measuring low-rank representations (Sanyal, Kanade and Torr, 2018, sections 3 and 4).

The activations A (n, m) of a layer, their variance ratio VR_k (the share of the squared
singular values in the top k), class-wise VR_1 (appendix C.3), max-margin linear classifiers
on PCA projections of A (X-MAXG, table 2 and appendix C.2), the representation distance
d_adv (section 4), the smallest attack budget that fools more than 99 % of the examples and
the median rho of the examples an attack fools (table 3, appendix D.2). The LR layer itself
is :mod:`reprtut.methods.low_rank`.
"""

from __future__ import annotations

from typing import Annotated, Sequence

import torch
import torch.nn as nn

from . import declare, validate
from .attacks.norms import norm_of
from .declare import Count, Instance, Real, Reals, Tensor, checked
from .evaluate import perturb, predict
from .nn import Images, Labels, Model, capture, find_layer, frozen

# Activation matrices (n, m) of finite values, and the class labels of their rows.
Matrix = Annotated[torch.Tensor, Tensor(2, floating=True)]


@checked
def activations(model: Model, x: Images, layer: str = "features",
                batch_size: Annotated[int, Count(1)] = 500) -> torch.Tensor:
    """A = f_l^-(x): the outputs of ``layer`` (a name of ``model.named_modules()``; default
    R(x)) for images x (N, C, H, W) in [0, 1], flattened to (N, m), float32, in eval mode."""
    return activations_at(model, x, (layer,), batch_size)[layer]


@checked
@torch.no_grad()
def activations_at(model: Model, x: Images, layers: Sequence[str] = ("features",),
                   batch_size: Annotated[int, Count(1)] = 500) -> dict[str, torch.Tensor]:
    """{layer: A} for every name in ``layers``, as :func:`activations` gives each, from one
    forward pass over x: a page that studies two layers of a model pays for one pass."""
    if (not isinstance(layers, (list, tuple)) or not layers
            or not all(isinstance(n, str) for n in layers)):
        raise validate.ArgumentTypeError(f"layers must be a non-empty sequence of layer names, "
                                         f"got {layers!r:.80}")
    out = {layer: [] for layer in layers}  # capture() refuses a name that is no layer
    with frozen(model), capture(model, list(out)) as cap:
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
            for layer in out:
                out[layer].append(cap.outputs[layer].float())
    return {layer: torch.cat(a) for layer, a in out.items()}


@checked
def variance_ratio(A: Matrix, center: bool = False) -> torch.Tensor:
    """VR_k(A) = sum_{i<=k} sigma_i^2 / sum_i sigma_i^2 for k = 1..min(n, m) (section 3).

    A: (n, m) activations; sigma_i its singular values, largest first. ``center`` subtracts
    the mean activation first (the rank of the affine span; the paper's definition, the
    default, does not). Returns a (min(n, m),) float64 tensor on the CPU, increasing to 1;
    ``vr[k - 1]`` is VR_k.
    """
    A = A.detach().double().cpu()
    if center:
        A = A - A.mean(0)
    s2 = torch.linalg.svdvals(A) ** 2
    return s2.cumsum(0) / s2.sum().clamp_min(1e-300)


@checked
def classwise_vr1(A: Matrix, y: Annotated[torch.Tensor, declare.Labels("A", classes="classes")],
                  classes: Annotated[int, Count(1)] | None = None) -> torch.Tensor:
    """VR_1 of the activations of each class (appendix C.3, figure 4): (K,) float64; NaN for
    a class without examples."""
    A = A.detach().double()
    K = int(y.max()) + 1 if classes is None else classes
    y = y.cpu()
    return torch.tensor([variance_ratio(A[(y == c).to(A.device)].float())[0].item()
                         if bool((y == c).any()) else float("nan") for c in range(K)],
                        dtype=torch.float64)


@checked
def max_margin(A_train: Matrix, y_train: Annotated[torch.Tensor, declare.Labels("A_train", min_classes=2)],
               dim: Annotated[int, Count(1)] | None = None, *,
               alpha: Annotated[float, Real(0, low_open=True)] = 0.01,
               seed: Annotated[int, Count(0)] = 0):
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

    A = A_train.detach().double()
    if dim is not None:
        validate.count(dim, "dim", min=1, max=min(A.shape))
    steps = [StandardScaler()]
    if dim is not None:
        steps.append(PCA(dim, random_state=seed))
    steps.append(SGDClassifier(loss="hinge", alpha=alpha, learning_rate="optimal",
                               max_iter=50, tol=1e-4, random_state=seed))
    return make_pipeline(*steps).fit(A.cpu().numpy(), y_train.cpu().numpy())


@checked
def pca_accuracies(A_train: Matrix,
                   y_train: Annotated[torch.Tensor, declare.Labels("A_train", min_classes=2)],
                   A_test: Matrix, y_test: Annotated[torch.Tensor, declare.Labels("A_test")],
                   dims: Sequence[int | None]) -> dict:
    """Test accuracy of :func:`max_margin` on PCA projections to each of ``dims`` (table 2);
    None stands for the full representation. Returns dim -> accuracy."""
    if isinstance(dims, (str, bytes)) or not hasattr(dims, "__iter__"):
        raise validate.ArgumentTypeError(f"dims must be a sequence of dimensions (or None), got {dims!r}")
    dims = [validate.count(d, "dims", min=1, max=min(A_train.shape), allow_none=True) for d in dims]
    return {d: float(max_margin(A_train, y_train, d).score(A_test.cpu().numpy(), y_test.cpu().numpy()))
            for d in dims}


@checked
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


@checked
def d_adv(model: Model, x: Images, x_adv: Annotated[torch.Tensor, declare.Images(model="model", of="x")],
          layer: str = "features", y: Annotated[torch.Tensor, declare.Labels("x")] | None = None) -> float:
    """d_adv = 1/N sum ||f_l^-(x_a) - f_l^-(x_d)||_2^2 (section 4) over the N examples (only
    those the model classifies correctly, if labels ``y`` are given)."""
    a, b = activations(model, x, layer), activations(model, x_adv, layer)
    keep = torch.ones(len(x), dtype=torch.bool, device=a.device)
    if y is not None:
        keep = predict(model, x).argmax(1) == y
    return (a - b)[keep].pow(2).sum(1).mean().item()


@checked
def min_fooling_budget(target: Model, x: Annotated[torch.Tensor, declare.Images(model="target")],
                       y: Annotated[torch.Tensor, declare.Labels("x", model="target")], attack,
                       eps_values: Annotated[Sequence[float], Reals(0)], *,
                       surrogate: Model | None = None,
                       success: Annotated[float, Real(0, 1)] = 0.99,
                       step_size_of_eps: Annotated[float, Real(0, low_open=True)] | None = None,
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
    if not callable(attack):
        raise validate.ArgumentTypeError(f"attack must be an attack function, got {validate._show(attack)}")
    source = target if surrogate is None else surrogate
    right = predict(target, x).argmax(1) == y
    x, y = x[right], y[right]
    fooled = float("nan")
    if not len(x):  # nothing to attack: the target gets no example right
        return {"eps": float("nan"), "rho": float("nan"), "fooled": fooled}
    for eps in sorted(eps_values):
        if step_size_of_eps is not None:
            kwargs["step_size"] = step_size_of_eps * eps
        x_adv = perturb(source, x, y, attack, eps=eps, early_stop=True, **kwargs)
        wrong = predict(target, x_adv).argmax(1) != y
        fooled = wrong.float().mean().item()
        if fooled > success:
            rho = (norm_of(x_adv - x, "l2") / norm_of(x, "l2").clamp_min(1e-12))[wrong]
            return {"eps": eps, "rho": rho.mean().item(), "fooled": fooled}
    return {"eps": float("nan"), "rho": float("nan"), "fooled": fooled}


@checked
def rho(x_adv: Annotated[torch.Tensor, declare.Images(of="x")],
        x: Annotated[torch.Tensor, declare.Images()]) -> torch.Tensor:
    """rho = ||x_a - x_d||_2 / ||x_d||_2 per example (section 4, appendix D.2): (N,) tensor
    on x's device; x_adv and x (N, C, H, W) in [0, 1]."""
    return norm_of(x_adv - x, "l2") / norm_of(x, "l2").clamp_min(1e-12)


@checked
def median_fooling_rho(model: Model, x: Images, y: Labels,
                       x_adv: Annotated[torch.Tensor, declare.Images(model="model", of="x")]) -> float:
    """Table 3's DeepFool column (appendix D.2): the median rho = ||x_adv - x||_2 / ||x||_2
    over the examples that ``model`` classifies correctly on x and misclassifies on x_adv.

    x and x_adv: (N, C, H, W) in [0, 1]; y: (N,). x_adv may come from another model (a
    black-box attack). Returns a float; NaN when x_adv fools none of them.
    """
    r = rho(x_adv, x)
    fooled = (predict(model, x).argmax(1) == y) & (predict(model, x_adv).argmax(1) != y)
    return r[fooled].median().item() if bool(fooled.any()) else float("nan")


@checked
def spsd(m: Annotated[int, Count(1)], r: Annotated[int, Count(1, max="m")] = 10,
         tail: Annotated[float, Real(0)] = 1e-3, *,
         generator: Annotated[torch.Generator, Instance(torch.Generator)] | None = None) -> torch.Tensor:
    """A random symmetric positive semi-definite (m, m) matrix U diag(λ) Uᵀ with r large
    eigenvalues, 10 down to 1, and a small tail of m - r eigenvalues uniform in [0, tail):
    the spectrum the LR layer's W takes during training (section 3.1), on which the SVD and
    Nyström projections are compared. U is the Q of a Gaussian matrix's QR decomposition.
    Draws from ``generator`` (default: torch's global generator); float32 on the CPU."""
    U = torch.linalg.qr(torch.randn(m, m, generator=generator))[0]               # (m, m)
    lam = torch.cat([torch.linspace(10, 1, r), tail * torch.rand(m - r, generator=generator)])
    return (U * lam) @ U.T
