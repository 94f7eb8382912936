"""Checks of the exercises' answers that a student runs in the notebook: ``rt.check.<name>(...)``.

Each check looks at the student's answer (a value, images, or a function it calls on tiny
inputs: no training, a fraction of a second) and returns a :class:`Verdict` that shows as
"✓ passed" or as "✗ not yet" with a hint. The expected values are computed inside the check
from the package's own functions and are never shown.

Why not a grading tool: otter-grader runs its tests from notebooks in its own format (assignment
metadata, a generated autograder) and nbgrader needs a JupyterHub with its exchange; the book's
notebooks are its pages, opened on Colab and executed by the site's build, and its exercises
are answered with the page's own models. A call in the page works unchanged in all three
places. The checks are formative: a student can read their source, so they are not for marks.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Annotated, Callable, Sequence

import torch

from .attacks.core import Eps
from .bench.common import PEAK_TFLOPS
from .declare import Choice, Count, Function, Real, Reals, Tensor, checked
from .nn import Images, Labels, Model

__all__ = ["Verdict", "targeted_attack", "equal_auc", "celeba_lambda", "top_coordinates",
           "gx_unit_box", "sensitivity", "centred_variance_ratio", "pgd_budget"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: truthy when the answer passes; shown with its hint."""

    check: str
    passed: bool
    hint: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"✓ {self.check}: passed" if self.passed else f"✗ {self.check}: not yet. {self.hint}"


class _Fail(Exception):
    """A failed condition; its message is the hint."""


def _check(fn):
    """Run a check; a failed condition, or an answer of the wrong kind, is a failed verdict."""
    @functools.wraps(fn)
    def run(*args, **kwargs) -> Verdict:
        try:
            fn(*args, **kwargs)
        except _Fail as fail:
            return Verdict(fn.__name__, False, str(fail))
        except (TypeError, ValueError, RuntimeError, IndexError, AttributeError) as err:
            return Verdict(fn.__name__, False, f"the answer could not be used: {type(err).__name__}: {err}")
        return Verdict(fn.__name__, True)
    return run


def _require(condition, hint: str) -> None:
    if not condition:
        raise _Fail(hint)


def _tensor(value, name: str) -> torch.Tensor:
    _require(torch.is_tensor(value), f"{name} should be a tensor, got {type(value).__name__}")
    return value.detach()


# The declarations (reprtut.declare) cover what the page passes in (its models, images, the
# exercise's constants): a bad one is refused with an error naming it. The student's answer
# itself (x_adv, the curves, indices, an attribution, VR_k, K) stays undeclared on purpose: an
# answer of the wrong kind is a failed verdict with a hint, never an error.
Class = Annotated[int, Count(0)]


@checked
@_check
def targeted_attack(model: Model, x: Images, x_adv, target: Class, *, eps: Eps) -> None:
    """Chapter 1: ``x_adv`` is a targeted ℓ∞ attack on ``model`` towards class ``target``:
    images in [0, 1], within ``eps`` of ``x`` in ℓ∞, and closer to the target on average (the
    margin logit_target - max other logit grows)."""
    from .evaluate import predict

    x, x_adv = _tensor(x, "x"), _tensor(x_adv, "x_adv")
    _require(x_adv.shape == x.shape, f"x_adv should have the shape of x, {tuple(x.shape)}")
    _require(bool(torch.isfinite(x_adv).all()), "x_adv holds non-finite values")
    _require(float(x_adv.min()) >= -1e-6 and float(x_adv.max()) <= 1 + 1e-6,
             "some pixels leave [0, 1]: an image stays an image (clamp after each step)")
    _require(float((x_adv - x).abs().max()) <= eps + 1e-5,
             "some pixels moved by more than ε: project δ back onto the ℓ∞ ball after each step")

    def margin(images):
        logits = predict(model, images).float()
        others = logits.clone()
        others[:, target] = -math.inf
        return (logits[:, target] - others.max(1).values).mean()

    _require(float(margin(x_adv)) > float(margin(x)),
             "the images moved away from the target class: a targeted attack lowers the loss of "
             "the target label (targeted=True) instead of raising it")


@checked
@_check
def equal_auc(a, b, eps: Annotated[Sequence[float], Reals(0, min_len=2, increasing=True)] = (0.0, 0.1, 0.3, 0.5),
              at: Annotated[float, Real(0)] = 0.3) -> None:
    """Chapter 2: two accuracy curves over ``eps`` with the same normalized AUC that differ
    clearly (by 0.1 or more) at ε = ``at``."""
    from .evaluate import normalized_auc

    a, b = [float(v) for v in a], [float(v) for v in b]
    _require(len(a) == len(b) == len(eps), f"give one accuracy per ε of {list(eps)}")
    for curve in (a, b):
        _require(all(0 <= v <= 1 for v in curve), "accuracies lie in [0, 1]")
        _require(all(u >= v for u, v in zip(curve, curve[1:])),
                 "a robust accuracy cannot rise with ε: a stronger budget contains the weaker one")
    _require(abs(normalized_auc(eps, a) - normalized_auc(eps, b)) < 1e-6,
             "the two normalized AUCs differ: compute both with rt.evaluate.normalized_auc")
    i = list(eps).index(at)
    _require(abs(a[i] - b[i]) >= 0.1, f"the curves should differ clearly at ε = {at}")


@_check
def celeba_lambda(value) -> None:
    """Chapter 3: the balanced λ* = ln K / E‖x − x̄‖² estimated for CelebA from its
    per-channel standard deviations (within 2 %)."""
    from .data import INFO

    info = INFO["celeba"]
    expected = math.log(2) / sum(info.shape[1] * info.shape[2] * s ** 2 for s in info.std)
    _require(math.isfinite(float(value)) and float(value) > 0, "λ* is a positive number")
    _require(abs(float(value) / expected - 1) < 0.02,
             "not the balanced λ: ln K over the expected squared distance to the mean image; "
             "check K (the CelebA task's classes) and that the standard deviations are squared "
             "and summed over every pixel of every channel")


@checked
@_check
def top_coordinates(model: Model, c: Class, indices) -> None:
    """Chapter 4: ``indices`` are the coordinates i of R with the largest weights W_ic of the
    linear head for class ``c`` (as many as given)."""
    indices = _tensor(torch.as_tensor(indices), "indices").flatten().tolist()
    W = model.head.weight.detach()                                     # (classes, d)
    _require(len(indices) >= 1 and len(set(indices)) == len(indices), "give distinct coordinates")
    expected = set(W[c].topk(len(indices)).indices.tolist())
    _require(set(indices) == expected,
             "not the largest weights of the class: the head computes logits = W R + b, so the "
             "weights of class c are one row of W (its largest entries, signed)")


@checked
@_check
def gx_unit_box(model: Model, x: Images, y: Labels, attribution) -> None:
    """Chapter 5: ``attribution`` is x ⊙ ∇ₓJ with the image x in [0, 1] (not the paper's
    [-1, 1]) for the cross-entropy J of ``model``."""
    from .attribution import attribute

    x, attribution = _tensor(x, "x"), _tensor(attribution, "attribution")
    _require(attribution.shape == x.shape, f"one attribution per pixel: shape {tuple(x.shape)}")
    grad = attribute(model, x, y, "G")
    expected = x * grad
    scale = expected.abs().max().clamp_min(1e-12)
    if torch.allclose(attribution, attribute(model, x, y, "GX"), atol=1e-6 * float(scale)):
        raise _Fail("that is the paper's g_GX, with the image in [-1, 1]; here the image is in [0, 1]")
    _require(bool(((attribution - expected).abs() <= 1e-4 * scale).all()),
             "not x ⊙ ∇ₓJ: multiply the loss gradient g_G by the image itself, pixel by pixel")


@checked
@_check
def sensitivity(S_e: Annotated[Callable, Function("a function S_e(E, x, x_adv) returning one value per image")]) -> None:
    """Chapter 6: ``S_e(E, x, x_adv)`` returns S_e = ‖E(x) − E(x′)‖₂ / ‖E(x)‖₂ per image (N,)
    for a representation E; tried on a small random network."""
    g = torch.Generator().manual_seed(0)
    E = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 6), torch.nn.ReLU())
    with torch.no_grad():
        for p in E.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    x = torch.rand(5, 3, 2, 2, generator=g)
    x_adv = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        r, r_adv = E(x), E(x_adv)
        expected = (r - r_adv).norm(dim=1) / r.norm(dim=1)
        got = S_e(E, x, x_adv)
    got = _tensor(torch.as_tensor(got), "the result").float()
    _require(got.shape == expected.shape, f"one value per image: shape {tuple(expected.shape)}, got {tuple(got.shape)}")
    _require(bool(torch.allclose(got, expected, rtol=1e-4, atol=1e-6)),
             "not S_e: the ℓ2 distance between the clean and perturbed representations (not "
             "squared), divided by the norm of the clean one, per image")


@checked
@_check
def centred_variance_ratio(A: Annotated[torch.Tensor, Tensor(2, floating=True)], vr) -> None:
    """Chapter 7: ``vr`` is VR_k of the activations ``A`` (n, m) after subtracting their mean
    activation, k = 1, 2, … (at least the first value)."""
    from .low_rank_analysis import variance_ratio

    A, vr = _tensor(A, "A"), _tensor(torch.as_tensor(vr), "vr").double().cpu().flatten()
    expected = variance_ratio(A, center=True)
    _require(1 <= len(vr) <= len(expected), f"VR_k for k = 1 … at most {len(expected)}")
    if torch.allclose(vr, variance_ratio(A)[:len(vr)], atol=1e-6) and \
            not torch.allclose(vr, expected[:len(vr)], atol=1e-6):
        raise _Fail("that is the paper's VR_k, which keeps the mean activation")
    _require(bool(torch.allclose(vr, expected[:len(vr)], atol=1e-6)),
             "not the centred variance ratio: the cumulative share of the squared singular "
             "values of the centred activations")


@checked
@_check
def pgd_budget(k, c_f: Annotated[float, Real(0, low_open=True)],
               gpu: Annotated[str, Choice(*PEAK_TFLOPS)] = "H100",
               share: Annotated[float, Real(0, 1, low_open=True)] = 0.5,
               seconds: Annotated[float, Real(0, low_open=True)] = 10.0) -> None:
    """The performance appendix: the largest number K of PGD steps such that one CIFAR-10
    epoch costs at most ``seconds`` on ``share`` of the GPU's dense bf16 peak, with a step's
    cost (3 + 3K)·C_f per image (C_f = ``c_f`` FLOP)."""
    from .bench.training import EPOCH_IMAGES

    _require(float(k) == int(k) and int(k) >= 0, "K is a whole number of steps")
    per_image = share * PEAK_TFLOPS[gpu] * 1e12 * seconds / EPOCH_IMAGES
    fits = lambda steps: (3 + 3 * steps) * c_f <= per_image
    _require(fits(int(k)), "that many steps do not fit in the time: count (3 + 3K) forward "
             "passes per image at the sustained rate (a share of the peak)")
    _require(not fits(int(k) + 1), "one more step still fits: K is the largest budget")
