"""Loss-gradient attribution and its evaluation by retraining (Kim, Seo & Jeon, 2019, section 3).

* Attribution maps a = g(f, x), (B, C, H, W): :func:`attribute` with ``method`` "G"
  (g_G = ∇_x J, J the cross-entropy at the true label), "GX" (g_GX = x ⊙ ∇_x J, the
  Gradient * Input of Shrikumar et al., 2017, with x in the paper's range [-1, 1]), "Gpred"
  (g_G at the model's predicted label instead of the true one: a ranking that cannot encode
  a label the model does not see) or "rand" (g_Rand, uniform noise). ``backend="captum"``
  computes the gradients with captum's ``Saliency`` and ``InputXGradient`` instead of the
  book's own.
* :func:`display`: the paper's picture of a map (Figure 6), channels summed, clipped at the
  0.5th and 99.5th percentiles.
* ROAR and KAR (Hooker et al., 2018): :func:`occlude` replaces the most (ROAR) or least (KAR)
  important fraction of pixels by a constant; :func:`occluded_spec` is the
  :class:`~reprtut.cache.ModelSpec` of a fresh classifier trained and tested on such images,
  so that every retrained classifier goes through the model cache; :func:`scores` turns the
  accuracy curves into μ_ROAR = AOC - AOC_rand and μ_KAR = AUC - AUC_rand.

A classifier trained on modified images needs a dataset that the cache can name and rebuild:
:func:`occluded_dataset` registers a derived dataset (``reprtut.data.register_derived``) whose
name holds a hash of everything that determines it (the explained model's cache key, the
method, the fraction, the mode and the fill value), so the cache key of the retrained model
changes whenever its data would.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import replace
from typing import Annotated, Literal, Sequence

import numpy as np
import torch
import torch.nn as nn

from . import validate
from .cache import ModelSpec, get
from .data import INFO, Dataset, DatasetInfo, load, register_derived
from .models import Classifier, Normalize, register as register_arch
from .declare import Count, Instance, Real, Reals, Spec, Tensor, checked
from .nn import Images, Labels, Model, frozen
from .representation import saliency

METHODS = ("G", "GX", "Gpred", "rand")
MODES = ("roar", "kar")
Method = Literal["G", "GX", "Gpred", "rand"]
Mode = Literal["roar", "kar"]
Maps = Annotated[torch.Tensor, Tensor(4, floating=True)]          # attribution maps (B, C, H, W)
Fraction = Annotated[float, Real(0, 1)]
Fractions = Annotated[Sequence[float], Reals(0, 1, min_len=2, increasing=True)]
Positive = Annotated[int, Count(1)]
# A ModelSpec of the cache: the explained model, or the template of the retrained classifiers.
CachedSpec = Annotated[ModelSpec, Instance(ModelSpec)]


class _Methods(Spec):
    """A list or tuple of attribution methods, each one of METHODS; returned as a tuple."""
    def check(self, v, name, args, reads, specs):
        if not isinstance(v, (list, tuple)):
            raise validate.ArgumentTypeError(f"{name} must be a list or tuple of methods from "
                                             f"{', '.join(map(repr, METHODS))}, got {validate._show(v)}")
        return tuple(validate.choice(m, f"{name}[{i}]", METHODS) for i, m in enumerate(v))

    def example(self):
        return ("G",)


Methods = Annotated[Sequence[str], _Methods()]


@checked
def attribute(model: Model, x: Images, y: Labels, method: Method = "G", *,
              backend: Literal["torch", "captum"] = "torch", seed: Annotated[int, Count(0)] = 0,
              batch_size: Annotated[int, Count(1)] = 500) -> torch.Tensor:
    """The attribution map of ``method`` for a batch: x (B, C, H, W) in [0, 1], y (B,) -> (B, C, H, W).

    "G": ∇_x J(f(x), y) with J the cross-entropy (section 3.2); "GX": x' ⊙ ∇_{x'} J with
    x' = 2x - 1 the image in [-1, 1], so GX = (2x - 1) ⊙ ∇_x J / 2; "Gpred": ∇_x J(f(x), ŷ)
    with ŷ = argmax f(x), the model's own label (y is then unused); "rand": uniform noise in
    [0, 1) from ``seed`` (the baseline g_Rand; the same for every model). ``backend`` "torch"
    uses the book's :func:`reprtut.representation.saliency`, "captum" captum's Saliency
    (without the absolute value) and InputXGradient on the per-example loss.
    """
    if method == "rand":
        g = torch.Generator().manual_seed(seed)
        return torch.rand(x.shape, generator=g).to(x.device)
    kind = "G" if method == "Gpred" else method
    grad_of = _captum if backend == "captum" else _torch
    parts = []
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        if method == "Gpred":  # the model's own label: a ranking that knows nothing of y
            with torch.no_grad(), frozen(model):
                yb = model(xb).argmax(1)
        parts.append(grad_of(model, xb, yb, kind))
    return torch.cat(parts)


def _torch(model, x, y, method):
    grad = saliency(model, x, y)  # the summed loss: each image's own gradient
    return grad if method == "G" else _times_input(x, grad)


def _times_input(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    # g_GX = x' ⊙ ∇_{x'} J with x' = 2x - 1, and ∇_{x'} J = ∇_x J / 2.
    return (2 * x - 1) * grad / 2


def _captum(model, x, y, method):
    from captum.attr import InputXGradient, Saliency
    import torch.nn.functional as F

    with frozen(model):
        if method == "G":
            loss = lambda v: F.cross_entropy(model(v), y, reduction="none")  # noqa: E731
            return Saliency(loss).attribute(x.clone().requires_grad_(True), abs=False).detach()
        # captum multiplies by its input: give it x' in [-1, 1] and a model that maps back.
        loss = lambda v: F.cross_entropy(model((v + 1) / 2), y, reduction="none")  # noqa: E731
        return InputXGradient(loss).attribute((2 * x - 1).requires_grad_(True)).detach()


@checked
def importance(a: Maps) -> torch.Tensor:
    """Per-pixel importance |Σ_c a_c|, (B, C, H, W) -> (B, H, W): a pixel is one unit for
    ROAR/KAR, all its channels replaced at once."""
    return a.sum(1).abs()


@checked
def display(a: Maps, low: Annotated[float, Real(0, 100)] = 0.5,
            high: Annotated[float, Real("low", 100)] = 99.5) -> np.ndarray:
    """The paper's picture of a map (Figure 6): channels summed, each map clipped to its
    ``low``-th and ``high``-th percentiles; (B, C, H, W) -> numpy (B, H, W)."""
    s = a.detach().float().sum(1).cpu().numpy()
    lo = np.percentile(s, low, axis=(1, 2), keepdims=True)
    hi = np.percentile(s, high, axis=(1, 2), keepdims=True)
    return np.clip(s, lo, hi)


@checked
def occlude(x: Annotated[torch.Tensor, Tensor(4)], score: Annotated[torch.Tensor, Tensor(3, of="x")],
            fraction: Fraction, mode: Mode = "roar",
            fill: Sequence[float] | float = 0.0) -> torch.Tensor:
    """Replace a fraction of each image's pixels by a constant (Hooker et al., 2018).

    x (B, C, H, W) (uint8 or float); score (B, H, W) per-pixel importance; ``mode`` "roar"
    replaces the ``fraction`` most important pixels, "kar" the ``fraction`` least important
    ones (it keeps the rest); ``fill`` is the constant, one value or one per channel, or an
    image (C, H, W) whose pixel replaces each pixel (a per-pixel mean), in x's units.
    Returns a new tensor like x.
    """
    if score.shape != (x.shape[0], *x.shape[2:]):
        raise ValueError(f"x must be (B, C, H, W) and score (B, H, W) of the same B, H, W; got "
                         f"{tuple(getattr(x, 'shape', ()))} and {tuple(getattr(score, 'shape', ()))}")
    b, c, h, w = x.shape
    k = int(round(fraction * h * w))
    flat = score.reshape(b, h * w)
    idx = flat.topk(k, dim=1, largest=(mode == "roar")).indices                # (B, k)
    mask = torch.zeros(b, h * w, dtype=torch.bool, device=x.device).scatter_(1, idx, True)
    fill = torch.as_tensor(fill, dtype=x.dtype, device=x.device)
    if fill.dim() == 3 and fill.shape != (c, h, w):
        raise ValueError(f"fill must be a number, one per channel or an image of shape "
                         f"{(c, h, w)}, got shape {tuple(fill.shape)}")
    fill = fill if fill.dim() == 3 else fill.reshape(-1, 1, 1).expand(c, h, w)
    mask = mask.view(b, 1, h, w).expand(b, c, h, w)
    return torch.where(mask, fill.unsqueeze(0).expand_as(x), x)


# ------------------------------------------------------------------ retraining through the cache

@register_arch("mlp")
def mlp(dataset: str = "mnist", hidden: int = 128) -> Classifier:
    """A one-hidden-layer perceptron: the cheap classifier that ROAR and KAR retrain dozens
    of times on a CPU. Input (B, C, H, W) in [0, 1]; R(x) has ``hidden`` dimensions."""
    if not isinstance(dataset, str) or dataset not in INFO:
        raise ValueError(f"unknown dataset {dataset!r}; dataset must be one of {', '.join(INFO)}")
    info = INFO[dataset]
    hidden = validate.count(hidden, "hidden", min=1)
    features = nn.Sequential(Normalize(info.mean, info.std), nn.Flatten(),
                             nn.Linear(int(np.prod(info.shape)), hidden), nn.ReLU())
    return Classifier(features, nn.Linear(hidden, len(info.classes)))


# Explainer models by cache key, for the derived datasets' builders: a key names its spec
# (profile and seed included) and, unlike the spec, can key the memos below.
_EXPLAINERS: dict[str, ModelSpec] = {}


@functools.lru_cache(maxsize=32)
def _scores(explainer_key: str, method: str, dataset: str, split: str, n: int) -> torch.Tensor:
    """Per-pixel importance (N, H, W) of the first n images of a split (memoised per process)."""
    data = load(dataset, split, n=n)
    if method == "rand":
        g = torch.Generator().manual_seed({"train": 0, "test": 1}[split])
        return torch.rand(len(data), *data.x.shape[2:], generator=g)
    grad = _gradient(explainer_key, dataset, split, n, "Gpred" if method == "Gpred" else "G")
    return importance(grad if method != "GX" else _times_input(data.images("cpu"), grad))


@functools.lru_cache(maxsize=2)
def _gradient(explainer_key: str, dataset: str, split: str, n: int, method: str) -> torch.Tensor:
    """g_G or g_Gpred (N, C, H, W) of the first n images of a split, on the CPU (the memo must
    not hold accelerator memory), kept for the g_GX that follows g_G (one gradient serves
    both methods)."""
    data = load(dataset, split, n=n)
    model = get(_EXPLAINERS[explainer_key], progress=False).model
    device = next(model.parameters()).device
    return attribute(model, data.images(device), data.y.to(device), method).cpu()


@functools.lru_cache(maxsize=4)
def _pixel_mean(dataset: str) -> torch.Tensor:
    """Each pixel's mean over the training split (C, H, W), rounded to uint8 like the images."""
    return load(dataset, "train").x.float().mean(0).round().to(torch.uint8)


@checked
def occluded_dataset(explainer: CachedSpec, method: Method, fraction: Fraction, mode: Mode, *,
                     n_train: Positive, n_test: Positive, fill: Sequence[float] | float | None = None) -> str:
    """Register (once) and return the name of the dataset whose images are those of the
    explainer's dataset with :func:`occlude` applied, importance from ``method`` on the
    explainer model (``explainer`` a ModelSpec; ignored for "rand"). Train and test splits
    hold the first ``n_train`` / ``n_test`` images. ``fill`` defaults to the channel means;
    ``"pixel_mean"`` is each pixel's mean over the whole training split."""
    base = explainer.dataset
    info = INFO[base]
    if isinstance(fill, str):
        fill = validate.choice(fill, "fill", ("pixel_mean",))
    else:
        fill = tuple(float(m) for m in info.mean) if fill is None else fill
        fill = tuple(np.atleast_1d(np.asarray(fill, dtype=float)).tolist())
    key = explainer.key() if method != "rand" else ""  # random scores need no explainer
    if key:
        _EXPLAINERS[key] = explainer
    ident = {"explainer": key or None, "method": method,
             "fraction": fraction, "mode": mode, "fill": fill, "base": base,
             "n": [n_train, n_test]}
    name = "occluded-" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    if name in INFO:
        return name
    new_info = DatasetInfo(name, info.classes, info.shape, info.mean, info.std)
    sizes = {"train": n_train, "test": n_test}

    @register_derived(new_info)
    def build(split: str, download: bool) -> Dataset:
        src = load(base, split, n=sizes[split], download=download)
        score = _scores(key, method, base, split, sizes[split])
        value = _pixel_mean(base) if fill == "pixel_mean" else [round(255 * v) for v in fill]
        x = occlude(src.x, score, fraction, mode, value)
        return Dataset(x, src.y, new_info, f"derived:{name}({src.source})")

    return name


@checked
def occluded_spec(template: CachedSpec, explainer: CachedSpec, method: Method, fraction: Fraction,
                  mode: Mode, *, n_test: Positive, fill=None,
                  retrain_seed: Annotated[int, Count(0)] = 0) -> ModelSpec:
    """The ModelSpec of a fresh classifier (``template``'s architecture and training) trained
    and evaluated on :func:`occluded_dataset` images; ``retrain_seed`` tells repeated
    retrainings apart. Its history's last ``test_acc`` is the ROAR/KAR accuracy on the
    ``n_test`` occluded test images."""
    name = occluded_dataset(explainer, method, fraction, mode, n_train=template.n_train,
                            n_test=n_test, fill=fill)
    tag = f"{mode}-{method}-{fraction:g}"
    return replace(template, name=f"{template.name}-{tag}", dataset=name, n_eval=n_test,
                   train=replace(template.train, seed=template.train.seed + retrain_seed))


@checked
def curve_area(fractions: Fractions, accuracies: Annotated[Sequence[float], Reals(0, 1, min_len=2)]) -> float:
    """Area under the accuracy curve over ``fractions`` (trapezoids), normalised by the span
    of the fractions so that it is an average accuracy in [0, 1]; accuracies are fractions in
    [0, 1] (not percentages), one per fraction."""
    f = np.asarray(fractions, dtype=float)
    a = np.asarray(accuracies, dtype=float)
    if f.shape != a.shape:
        raise ValueError(f"accuracies must hold one accuracy per fraction, got {len(a)} for "
                         f"{len(f)} fractions")
    return float(np.trapezoid(a, f) / (f[-1] - f[0]))


@checked
def scores(fractions: Fractions, roar: dict, kar: dict) -> dict:
    """μ_ROAR = AOC(g) - AOC(rand) and μ_KAR = AUC(g) - AUC(rand) (section 3.2).

    roar, kar: method -> test accuracies at ``fractions`` (including "rand"). AOC = 1 - AUC
    of the normalised curve. Returns {"roar": {method: μ}, "kar": {method: μ}} without "rand".
    """
    out = {"roar": {}, "kar": {}}
    for mode, curves in (("roar", roar), ("kar", kar)):
        if "rand" not in curves:
            raise ValueError(f"{mode} must hold the random baseline's curve under 'rand'")
        base = curve_area(fractions, curves["rand"])
        for m, acc in curves.items():
            if m == "rand":
                continue
            auc = curve_area(fractions, acc)
            out[mode][m] = (base - auc) if mode == "roar" else (auc - base)
    return out


@checked
def roar_kar(explainer: CachedSpec, template: CachedSpec, fractions: Annotated[Sequence[float], Reals(0, 1)],
             methods: Methods = ("G", "GX"), *, n_test: Positive = 2000, fill=None,
             retrains: Positive = 1, progress: bool = False) -> dict:
    """Test accuracies of classifiers retrained on occluded images, from the model cache:
    {"roar": {method: [acc per fraction]}, "kar": {...}}, "rand" included, each accuracy the
    mean over ``retrains`` classifiers (section 3.2 averages three). The explainer is fetched
    (trained if need be) first, before any retrained classifier takes its lock: their data
    are its gradients."""
    if any(m != "rand" for m in methods):
        get(explainer, progress=progress)
    out = {}
    for mode in MODES:
        out[mode] = {}
        for m in (*methods, "rand"):
            out[mode][m] = [float(np.mean([
                get(occluded_spec(template, explainer, m, f, mode, n_test=n_test, fill=fill,
                                  retrain_seed=r), progress=progress).history["test_acc"][-1]
                for r in range(retrains)])) for f in fractions]
    return out
