"""How the public API answers bad input: a catalogue of bad calls, and a count of how each ends.

    python tests/fuzz_report.py [--timeout 60] [--json out.json] [--show obscure,silent]

Every case is one public function called with one bad argument (all others valid) on a
tiny untrained MNIST classifier. Each ends in one of

* ``clear``: ``ValueError``/``TypeError`` whose message names the parameter;
* ``obscure``: any other exception (from deep inside torch or numpy), or a
  ``ValueError``/``TypeError`` that does not name the parameter;
* ``silent``: the call returned (or was still running after ``--timeout`` seconds): the bad
  input was accepted and the caller gets a result computed from it.

A second catalogue is generated from the declarations (``tests/declared_cases.py``): every
public function wrapped in :func:`reprtut.declare.checked`, with bad values derived from what
each parameter declares, and valid edge cases (a batch of one, eps = 0, one class present,
numpy scalars) that must be accepted: those end ``valid`` or ``valid-refused``.

The same catalogue drives ``tests/test_validation.py`` (which requires every case to be
clear). Only names that exist in the first version of the package are used, so the script
also runs against it (``PYTHONPATH=<old checkout> python tests/fuzz_report.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

import reprtut as rt

NAN, INF = math.nan, math.inf


@dataclass
class Case:
    module: str        # the package module under test
    entry: str         # the function or class called
    param: str         # the bad parameter, as the error should name it
    label: str         # what is wrong with it
    call: Callable[[], object]
    needle: str | None = None  # text the message must contain (default: param as a word)
    valid: bool = False        # a valid call, which must return

    @property
    def id(self) -> str:
        return f"{self.module}.{self.entry}[{self.param}={self.label}]"


def names(message: str, case: Case) -> bool:
    if case.needle is not None:
        return case.needle in message
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(case.param)}(?![A-Za-z0-9_])", message) is not None


class _Timeout(BaseException):
    pass


@contextlib.contextmanager
def _alarm(seconds: float):
    if not seconds or not hasattr(signal, "SIGALRM"):
        yield
        return

    def raise_timeout(*_):
        raise _Timeout

    old = signal.signal(signal.SIGALRM, raise_timeout)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(case: Case, timeout: float = 0) -> tuple[str, str]:
    """(``clear`` / ``obscure`` / ``silent``, detail) of one bad case; (``valid`` /
    ``valid-refused``, detail) of a valid one."""
    if case.valid:
        try:
            with _alarm(timeout):
                case.call()
        except _Timeout:
            return "valid", f"still running after {timeout:g} s"
        except Exception as err:  # noqa: BLE001 -- a valid call must not raise at all
            return "valid-refused", f"{type(err).__name__}: {str(err)[:160]}"
        return "valid", "returned"
    try:
        with _alarm(timeout):
            case.call()
    except _Timeout:
        return "silent", f"still running after {timeout:g} s"
    except (ValueError, TypeError) as err:
        kind = "clear" if names(str(err), case) else "obscure"
        return kind, f"{type(err).__name__}: {str(err)[:160]}"
    except Exception as err:  # noqa: BLE001 -- any other exception is what we count
        return "obscure", f"{type(err).__name__}: {str(err)[:160]}"
    return "silent", "returned"


# ------------------------------------------------------------------------------ fixtures

def tiny_model():
    torch.manual_seed(0)
    return rt.models.mnist_cnn(width=4, hidden=16).eval()


def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 1, 28, 28, generator=g), torch.tensor([3, 7])


def bad_images(x):
    """(label, bad x); x is a valid (B, 1, 28, 28) batch."""
    nan_x, inf_x = x.clone(), x.clone()
    nan_x[0, 0, 0, 0] = NAN
    inf_x[1, 0, 5, 5] = INF
    return [("uint8 0-255", (x * 255).to(torch.uint8)), ("float 0-255", x * 255),
            ("negative", x - 0.5), ("NaN pixel", nan_x), ("inf pixel", inf_x),
            ("float64", x.double()), ("3-D", x[0]), ("numpy", x.numpy()),
            ("3 channels", x.expand(-1, 3, -1, -1).contiguous()), ("flat", x.flatten(1))]


def bad_labels(y):
    return [("-1", torch.tensor([y[0].item(), -1])), ("-100", torch.tensor([y[0].item(), -100])),
            (">= classes", torch.tensor([y[0].item(), 10])), ("y[:, None]", y[:, None]),
            ("float", y.float()), ("wrong length", torch.cat([y, y[:1]])), ("list", y.tolist())]


BAD_EPS = [("-0.1", -0.1), ("NaN", NAN), ("inf", INF), ("str", "0.1"), ("None", None), ("bool", True)]
BAD_STEPS = [("0", 0), ("-3", -3), ("2.5", 2.5), ("str", "10"), ("bool", True)]
BAD_STEP = [("0", 0.0), ("-1", -1.0), ("NaN", NAN), ("inf", INF), ("str", "0.1")]
BAD_COUNT = [("0", 0), ("-1", -1), ("2.5", 2.5), ("str", "3")]
BAD_TOL = [("NaN", NAN), ("-0.1", -0.1), ("str", "0.02")]

ATTACKS = {  # name -> (valid kwargs, {param: bad values})
    "fgsm": ({"eps": 0.1}, {"eps": BAD_EPS, "norm": [("l3", "l3"), ("None", None)]}),
    "pgd": ({"eps": 0.1, "steps": 2}, {"eps": BAD_EPS, "steps": BAD_STEPS, "step_size": BAD_STEP,
                                       "norm": [("l3", "l3"), ("None", None)]}),
    "iter_fgsm": ({"eps": 0.1, "steps": 2}, {"eps": BAD_EPS, "steps": BAD_STEPS,
                                             "step_size": BAD_STEP}),
    "iter_ll_fgsm": ({"eps": 0.1, "steps": 2}, {"eps": BAD_EPS, "steps": BAD_STEPS}),
    "mim": ({"eps": 0.1, "steps": 2}, {"eps": BAD_EPS, "steps": BAD_STEPS, "step_size": BAD_STEP,
                                       "decay": [("NaN", NAN), ("-1", -1.0), ("str", "1")]}),
    "deepfool": ({"steps": 2}, {"eps": BAD_EPS[:4], "steps": BAD_STEPS,
                                "overshoot": [("NaN", NAN), ("-1", -1.0), ("str", "0.02")],
                                "candidates": [("0", 0), ("2.5", 2.5)]}),
    "cw_l2": ({"steps": 2, "search_steps": 1}, {"eps": BAD_EPS[:4], "steps": BAD_STEPS,
                                                "step_size": BAD_STEP, "c": [("0", 0.0), ("NaN", NAN)],
                                                "kappa": [("-1", -1.0), ("NaN", NAN)],
                                                "search_steps": [("0", 0), ("2.5", 2.5)]}),
    "ddn": ({"steps": 2}, {"eps": BAD_EPS[:4], "steps": BAD_STEPS, "step_size": BAD_STEP,
                           "gamma": [("0", 0.0), ("1.5", 1.5), ("NaN", NAN)],
                           "init_norm": [("0", 0.0), ("NaN", NAN)]}),
    "square": ({"eps": 0.1, "steps": 5}, {"eps": BAD_EPS, "steps": BAD_STEPS,
                                          "p_init": [("0", 0.0), ("1.5", 1.5), ("NaN", NAN)]}),
    "autoattack": ({"eps": 0.1}, {"eps": BAD_EPS}),
}


def _case(cases, module, entry, param, label, fn, *args, needle=None, **kwargs):
    cases.append(Case(module, entry, param, label, lambda: fn(*args, **kwargs), needle))


def attack_cases(model, x, y) -> list[Case]:
    cases = []
    for name, (kw, params) in ATTACKS.items():
        f = getattr(rt.attacks, name)
        for label, xb in bad_images(x):
            _case(cases, "attacks", name, "x", label, f, model, xb, y, **kw)
        _case(cases, "attacks", name, "x", "empty batch", f, model, x[:0], y[:0], **kw)
        for label, yb in bad_labels(y):
            _case(cases, "attacks", name, "y", label, f, model, x, yb, **kw)
        for param, values in params.items():
            for label, v in values:
                _case(cases, "attacks", name, param, label, f, model, x, y, **{**kw, param: v})
    return cases


def evaluate_cases(model, x, y) -> list[Case]:
    ev, pgd = rt.evaluate, rt.attacks.pgd
    cases = []
    for label, xb in bad_images(x):
        _case(cases, "evaluate", "predict", "x", label, ev.predict, model, xb)
        _case(cases, "evaluate", "accuracy", "x", label, ev.accuracy, model, xb, y)
        _case(cases, "evaluate", "robust_accuracy", "x", label, ev.robust_accuracy, model, xb, y,
              pgd, eps=0.1, steps=2)
    _case(cases, "evaluate", "accuracy", "x", "empty batch", ev.accuracy, model, x[:0], y[:0])
    for label, yb in bad_labels(y):
        _case(cases, "evaluate", "accuracy", "y", label, ev.accuracy, model, x, yb)
        _case(cases, "evaluate", "robust_accuracy", "y", label, ev.robust_accuracy, model, x, yb,
              pgd, eps=0.1, steps=2)
        _case(cases, "evaluate", "min_perturbation", "y", label, ev.min_perturbation, model, x, yb,
              rt.attacks.deepfool, steps=2)
    for label, v in BAD_COUNT:
        _case(cases, "evaluate", "predict", "batch_size", label, ev.predict, model, x, batch_size=v)
        _case(cases, "evaluate", "accuracy", "batch_size", label, ev.accuracy, model, x, y, batch_size=v)
        _case(cases, "evaluate", "perturb", "batch_size", label, ev.perturb, model, x, y, pgd,
              batch_size=v, eps=0.1, steps=2)
    _case(cases, "evaluate", "perturb", "attack", "str", ev.perturb, model, x, y, "pgd", eps=0.1)
    for label, v in [("NaN", [0.0, NAN]), ("negative", [-0.1, 0.1]), ("str", "0.1"), ("empty", [])]:
        _case(cases, "evaluate", "accuracy_vs_eps", "eps_values", label, ev.accuracy_vs_eps, model,
              x, y, pgd, v, steps=2)
    for label, v in [("NaN", [0.0, NAN]), ("str", ["0", "a"])]:
        _case(cases, "evaluate", "normalized_auc", "eps_values", label, ev.normalized_auc, v, [1.0, 0.5])
        _case(cases, "evaluate", "normalized_auc", "accuracies", label, ev.normalized_auc, [0.0, 0.1], v)
    _case(cases, "evaluate", "transfer", "surrogate", "str", ev.transfer, model, "model", x, y, pgd,
          eps=0.1, steps=2)
    it = ev.accuracy_over_iterations
    for label, v in BAD_EPS[:4]:
        _case(cases, "evaluate", "accuracy_over_iterations", "eps", label, it, model, x, y, eps=v,
              steps=2, step_size=0.05)
    for label, v in BAD_STEPS:
        _case(cases, "evaluate", "accuracy_over_iterations", "steps", label, it, model, x, y, eps=0.1,
              steps=v, step_size=0.05)
    for label, v in BAD_STEP:
        _case(cases, "evaluate", "accuracy_over_iterations", "step_size", label, it, model, x, y,
              eps=0.1, steps=2, step_size=v)
    for label, yb in bad_labels(y):
        _case(cases, "evaluate", "accuracy_over_iterations", "y", label, it, model, x, yb, eps=0.1,
              steps=2, step_size=0.05)
    if hasattr(ev, "stroke_energy_share"):
        for label, xb in bad_images(x)[:6]:
            _case(cases, "evaluate", "stroke_energy_share", "x", label, ev.stroke_energy_share, x, xb)
        for label, g in [("wrong shape", x[:1]), ("int", x.long()), ("list", x.tolist())]:
            _case(cases, "evaluate", "stroke_energy_share", "grad", label, ev.stroke_energy_share, g, x)
        for label, v in [("1", 1.0), ("-0.1", -0.1), ("NaN", NAN), ("str", "0.1")]:
            _case(cases, "evaluate", "stroke_energy_share", "threshold", label, ev.stroke_energy_share,
                  x, x, v)
    return cases


def representation_cases(model, x, y) -> list[Case]:
    rep = rt.representation
    kw = {"eps": 1.0, "steps": 2, "step_size": 0.1}
    r = rep.representation(model, x)
    cases = []
    for label, xb in bad_images(x):
        _case(cases, "representation", "representation", "x", label, rep.representation, model, xb)
        _case(cases, "representation", "invert", "x0", label, rep.invert, model, xb, r, **kw)
        _case(cases, "representation", "maximize", "x0", label, rep.maximize, model, xb, 0, **kw)
        _case(cases, "representation", "saliency", "x", label, rep.saliency, model, xb, y)
        _case(cases, "representation", "top_features", "x", label, rep.top_features, model, xb, 2)
    _case(cases, "representation", "invert", "x0", "empty batch", rep.invert, model, x[:0], r[:0], **kw)
    for label, yb in bad_labels(y):
        _case(cases, "representation", "saliency", "y", label, rep.saliency, model, x, yb)
    for label, v in [("0", 0.0), ("-1", -1.0), ("NaN", NAN), ("str", "1")]:
        _case(cases, "representation", "invert", "eps", label, rep.invert, model, x, r,
              **{**kw, "eps": v})
    if hasattr(rep, "match"):
        for label, xb in bad_images(x)[:6]:
            _case(cases, "representation", "match", "x1", label, rep.match, model, xb, x, eps=1.0, steps=2)
            _case(cases, "representation", "match", "x2", label, rep.match, model, x, xb, eps=1.0, steps=2)
        for label, v in [("0", 0.0), ("inf", INF), ("NaN", NAN), ("str", "1")]:
            _case(cases, "representation", "match", "eps", label, rep.match, model, x, x, eps=v, steps=2)
        for label, v in BAD_STEPS:
            _case(cases, "representation", "match", "steps", label, rep.match, model, x, x, eps=1.0, steps=v)
    for label, v in BAD_STEPS:
        _case(cases, "representation", "maximize", "steps", label, rep.maximize, model, x, 0,
              **{**kw, "steps": v})
    for label, v in BAD_STEP:
        _case(cases, "representation", "add_feature", "step_size", label, rep.add_feature, model, x,
              0, **{**kw, "step_size": v})
    nan_r = r.clone()
    nan_r[0, 0] = NAN
    for label, v in [("wrong width", r[:, :3]), ("NaN", nan_r), ("int", r.long())]:
        _case(cases, "representation", "invert", "r_target", label, rep.invert, model, x, v, **kw)
    for label, v in [("-1", -1), ("d", 16), ("0.5", 0.5), ("str", "a")]:
        _case(cases, "representation", "maximize", "i", label, rep.maximize, model, x, v, **kw)
    for label, v in [("0", 0), ("d + 1", 17), ("2.5", 2.5)]:
        _case(cases, "representation", "top_features", "k", label, rep.top_features, model, x, v)
    for label, v in [("-1", torch.tensor([0, -1])), ("10", torch.tensor([0, 10])), ("float", y.float())]:
        _case(cases, "representation", "top_features", "c", label, rep.top_features, model, x, 2, c=v)
    for label, v in [("0", 0), ("3", 3), ("2.5", 2.5)]:
        _case(cases, "representation", "add_feature", "rows", label, rep.add_feature, model, x, 0,
              eps=1.0, steps=4, step_size=0.1, rows=v)
    for label, v in [("NaN", [NAN]), ("1.5", [1.5]), ("empty", []), ("str", "a")]:
        _case(cases, "representation", "blend", "alphas", label, rep.blend, x, x, v)
        _case(cases, "representation", "interpolate", "alphas", label, rep.interpolate, model, x, x,
              v, **kw)
    for label, v in [("0", 0), ("-1", -1), ("2.5", 2.5)]:
        _case(cases, "representation", "noise", "n", label, rep.noise, v, (1, 28, 28))
        _case(cases, "representation", "kaleidoscope", "n", label, rep.kaleidoscope, v)
        _case(cases, "representation", "pixel_distance", "pool", label, rep.pixel_distance, x, x, v)
        _case(cases, "representation", "ssim", "window", label, rep.ssim, x, x, window=v)
    for label, v in [("NaN", NAN), ("-1", -1.0)]:
        _case(cases, "representation", "noise", "std", label, rep.noise, 2, (1, 28, 28), std=v)
        _case(cases, "representation", "ssim", "sigma", label, rep.ssim, x, x, sigma=v)
        _case(cases, "representation", "signed_image", "clip", label, rep.signed_image, x, v)
    for label, v in [("-1", -1), ("d", 16), ("0.5", 0.5)]:
        _case(cases, "representation", "extremes", "i", label, rep.extremes, r, v, 1)
    for label, v in [("0", 0), ("N + 1", 3)]:
        _case(cases, "representation", "extremes", "k", label, rep.extremes, r, 0, v)
    for label, xb in bad_images(x)[:6]:
        _case(cases, "representation", "pad_to", "x", label, rep.pad_to, xb)
    return cases


def masking_cases(model, x, y) -> list[Case]:
    mk = rt.masking
    kw = {"eps": 0.1, "steps": 2}
    cases = []
    checks = {"iterative_beats_single_step": mk.iterative_beats_single_step,
              "accuracy_vanishes": mk.accuracy_vanishes, "more_effort_saturates": mk.more_effort_saturates}
    for name, f in checks.items():
        for label, v in BAD_EPS[:4]:
            _case(cases, "masking", name, "eps", label, f, model, x, y, **{**kw, "eps": v})
        for label, v in BAD_TOL:
            _case(cases, "masking", name, "tol", label, f, model, x, y, **kw, tol=v)
        for label, yb in bad_labels(y)[:4]:
            _case(cases, "masking", name, "y", label, f, model, x, yb, **kw)
        for label, xb in bad_images(x)[:5]:
            _case(cases, "masking", name, "x", label, f, model, xb, y, **kw)
    for label, v in BAD_COUNT:
        _case(cases, "masking", "worst_case_accuracy", "restarts", label, mk.worst_case_accuracy,
              model, x, y, rt.attacks.pgd, restarts=v, **kw)
        _case(cases, "masking", "more_effort_saturates", "factor", label, mk.more_effort_saturates,
              model, x, y, factor=v, restarts=1, **kw)
        _case(cases, "masking", "gradient_free_not_stronger", "queries", label,
              mk.gradient_free_not_stronger, model, x, y, queries=v, **kw)
    _case(cases, "masking", "black_box_weaker", "surrogate", "str", mk.black_box_weaker, model,
          "model", x, y, **kw)
    for label, v in [("NaN", NAN), ("-1", -1.0), ("str", "0.5")]:
        _case(cases, "masking", "checklist", "large_eps", label, mk.checklist, model, x, y, eps=0.1,
              large_eps=v, steps=2, queries=5)
    for label, v in [("0", 0.0), ("NaN", NAN), ("str", "1000")]:
        _case(cases, "masking", "SaturatedLogits", "scale", label, mk.SaturatedLogits, model, v)
    if hasattr(mk, "softmax_saturation"):
        f = mk.softmax_saturation
        for label, v in BAD_EPS[:4]:
            _case(cases, "masking", "softmax_saturation", "eps", label, f, model, x, y, **{**kw, "eps": v})
        for label, xb in bad_images(x)[:5]:
            _case(cases, "masking", "softmax_saturation", "x", label, f, model, xb, y, **kw)
        for param in ("n", "autoattack_n", "square_n"):
            for label, v in [("-1", -1), ("2.5", 2.5), ("len(x) + 1", len(x) + 1)]:
                _case(cases, "masking", "softmax_saturation", param, label, f, model, x, y, **kw, **{param: v})
        for label, v in BAD_COUNT:
            _case(cases, "masking", "softmax_saturation", "queries", label, f, model, x, y, **kw, queries=v)
    return cases


def _npz_load(folder: Path, **arrays):
    """load("mnist", "test") from a mirror holding one npz with ``arrays`` (or raw bytes)."""
    (folder / "npz").mkdir(parents=True, exist_ok=True)
    path = folder / "npz" / "mnist-test.npz"
    if "raw" in arrays:
        path.write_bytes(arrays["raw"])
    else:
        np.savez(path, **arrays)
    before = os.environ.get(rt.data.DATA_ENV)
    os.environ[rt.data.DATA_ENV] = str(folder)
    try:
        rt.data._load.cache_clear()
        return rt.data.load("mnist", "test")
    finally:
        rt.data._load.cache_clear()
        if before is None:
            del os.environ[rt.data.DATA_ENV]
        else:
            os.environ[rt.data.DATA_ENV] = before


def data_cases(tmp: Path) -> list[Case]:
    cases = []
    for label, v in [("-5", -5), ("2.5", 2.5), ("str", "10"), ("bool", True)]:
        _case(cases, "data", "load", "n", label, rt.data.load, "mnist", "test", n=v)
    _case(cases, "data", "load", "split", "valid", rt.data.load, "mnist", "valid")
    _case(cases, "data", "load", "dataset", "int", rt.data.load, 3, needle="dataset")
    test = rt.data.load("mnist", "test", n=100)
    for label, v in BAD_COUNT:
        _case(cases, "data", "TensorLoader", "batch_size", label, rt.data.TensorLoader, test, v,
              device="cpu")
    _case(cases, "data", "TensorLoader", "data", "tensor", rt.data.TensorLoader, test.x, 10, device="cpu")
    x8 = np.zeros((4, 28, 28, 1), np.uint8)
    npz = {"labels out of range": {"x": x8, "y": np.array([0, 1, 2, 10])},
           "negative labels": {"x": x8, "y": np.array([0, -1, 2, 3])},
           "wrong image size": {"x": np.zeros((4, 32, 32, 1), np.uint8), "y": np.zeros(4, np.int64)},
           "wrong channels": {"x": np.zeros((4, 28, 28, 3), np.uint8), "y": np.zeros(4, np.int64)},
           "zero images": {"x": np.zeros((0, 28, 28, 1), np.uint8), "y": np.zeros(0, np.int64)},
           "float labels": {"x": x8, "y": np.array([0.5, 1, 2, 3])},
           "corrupt bytes": {"raw": b"PK\x03\x04 this is not a zip file"},
           "truncated": {"raw": b""}}
    for i, (label, arrays) in enumerate(npz.items()):
        _case(cases, "data", "load (npz mirror)", "npz file", label, _npz_load, tmp / f"npz{i}",
              needle="mnist-test.npz", **arrays)
    return cases


def _fit_call(cfg_kwargs, n=128, method="standard", **method_kwargs):
    torch.manual_seed(0)
    objective = rt.methods.build(method, rt.models.mnist_cnn(width=4, hidden=16), **method_kwargs)
    data = rt.data.load("mnist", "train", n=n)
    cfg = rt.train.TrainConfig(**{"epochs": 1, "batch_size": 64, "lr": 0.05, **cfg_kwargs})
    loader = rt.data.TensorLoader(data, cfg.batch_size, drop_last=True, device="cpu")
    return rt.train.fit(objective, loader, cfg, progress=False)


def train_cases() -> list[Case]:
    cfg = rt.train.TrainConfig
    cases = []
    bad = {"epochs": [("0", 0), ("2.5", 2.5), ("str", "3")], "batch_size": [("0", 0), ("2.5", 2.5)],
           "lr": [("0", 0.0), ("NaN", NAN), ("inf", INF), ("str", "0.1")],
           "momentum": [("-1", -1.0), ("NaN", NAN), ("1.5", 1.5)],
           "weight_decay": [("-1", -1.0), ("NaN", NAN)], "grad_clip": [("0", 0.0), ("NaN", NAN)],
           "seed": [("-1", -1), ("2.5", 2.5)], "milestones": [("-1", (-1,)), ("str", "ab")],
           "optimizer": [("lbfgs", "lbfgs")], "schedule": [("warmup", "warmup")]}
    for param, values in bad.items():
        for label, v in values:
            _case(cases, "train", "TrainConfig", param, label, cfg, **{param: v})
    _case(cases, "train", "fit", "batch_size", "n_train < batch_size", _fit_call, {"batch_size": 64}, n=40)
    _case(cases, "train", "fit", "lr", "diverging (1e30)", _fit_call, {"lr": 1e30, "optimizer": "sgd"})
    return cases


def methods_cases(model) -> list[Case]:
    build = rt.methods.build
    cases = []
    bad = {"eps": [("-1", -1.0), ("NaN", NAN), ("inf", INF), ("str", "0.3")],
           "norm": [("l3", "l3"), ("None", None)], "steps": [("0", 0), ("2.5", 2.5)],
           "step_size": [("0", 0.0), ("-1", -1.0), ("NaN", NAN)]}
    for param, values in bad.items():
        for label, v in values:
            _case(cases, "methods", "PGDTraining", param, label, build, "pgd", model,
                  **{"eps": 0.1, param: v})
    from reprtut.methods.perceptual import balanced_lambda, perceptual_mnist
    net = perceptual_mnist()
    for label, v in [("-1", -1.0), ("NaN", NAN), ("str", "0.1")]:
        _case(cases, "methods", "PerceptualRegularization", "lam", label, build, "perceptual", net, lam=v)
    for label, v in [("-1", [-1]), ("str", ["a"]), ("empty", [])]:
        _case(cases, "methods", "MultiTask", "tasks", label, build, "multitask", net, tasks=v)
    _case(cases, "methods", "build", "method", "unknown", build, "magic", model)
    x, _ = batch()
    for label, v in [("1", 1), ("2.5", 2.5)]:
        _case(cases, "methods", "balanced_lambda", "classes", label, balanced_lambda, x, v)
    for label, xb in bad_images(x)[:5]:
        _case(cases, "methods", "balanced_lambda", "x", label, balanced_lambda, xb, 10)
    return cases


def cache_cases(tmp: Path) -> list[Case]:
    spec = rt.cache.ModelSpec
    base = dict(name="fuzz", dataset="mnist", arch="mnist_cnn", arch_kwargs={"width": 4, "hidden": 16},
                n_train=128, n_eval=0, train=rt.train.TrainConfig(epochs=1, batch_size=64, lr=0.05))

    def get(**kw):
        before = os.environ.get(rt.cache.CACHE_ENV)
        os.environ[rt.cache.CACHE_ENV] = str(tmp / "models")
        try:
            return rt.cache.get(spec(**{**base, **kw}), device="cpu", progress=False)
        finally:
            if before is None:
                del os.environ[rt.cache.CACHE_ENV]
            else:
                os.environ[rt.cache.CACHE_ENV] = before

    cases = []
    bad = {"dataset": [("unknown", "imagenet")], "arch": [("unknown", "vgg99")],
           "method": [("unknown", "magic")], "n_train": [("-5", -5), ("2.5", 2.5), ("< batch_size", 10)],
           "n_eval": [("-1", -1)], "train": [("dict", {"epochs": 1})],
           "name": [("empty", ""), ("path", "a/b")], "arch_kwargs": [("width 0", {"width": 0})]}
    for param, values in bad.items():
        for label, v in values:
            needle = "width" if param == "arch_kwargs" else None
            _case(cases, "cache", "get(ModelSpec)", param if needle is None else "width", label, get,
                  **{param: v})
    _case(cases, "cache", "get", "spec", "dict", rt.cache.get, dict(base))
    return cases


def chapters_5_to_7_cases(model, x, y) -> list[Case]:
    """Attribution, the manifold projection, representation sensitivity and the low-rank tools
    (absent from the first version of the package, so skipped when run against it)."""
    cases = []
    if not hasattr(rt, "attribution"):
        return cases
    from reprtut import attribution as at, low_rank_analysis as lra, manifold, sensitivity as sens
    from reprtut.methods.low_rank import nystrom_project, svd_project
    torch.manual_seed(0)
    vae = rt.models.build("vaegan", "mnist", zdim=2, width=4, hidden=8).eval()
    for label, xb in bad_images(x):
        _case(cases, "attribution", "attribute", "x", label, at.attribute, model, xb, y)
        _case(cases, "manifold", "project", "x", label, manifold.project, vae, xb)
        _case(cases, "manifold", "adversarial_distances", "x", label, manifold.adversarial_distances,
              model, vae, xb, y, steps=2)
        _case(cases, "sensitivity", "sensitivity", "x", label, sens.sensitivity, model, xb, y, eps=0.1, steps=2)
        _case(cases, "low_rank_analysis", "activations", "x", label, lra.activations, model, xb)
    for label, yb in bad_labels(y):
        _case(cases, "attribution", "attribute", "y", label, at.attribute, model, x, yb)
        _case(cases, "sensitivity", "sensitivity", "y", label, sens.sensitivity, model, x, yb, eps=0.1, steps=2)
    for label, v in [("gradient", "gradient"), ("None", None)]:
        _case(cases, "attribution", "attribute", "method", label, at.attribute, model, x, y, v)
    _case(cases, "attribution", "attribute", "backend", "jax", at.attribute, model, x, y, backend="jax")
    for label, v in BAD_COUNT:
        _case(cases, "attribution", "attribute", "batch_size", label, at.attribute, model, x, y, batch_size=v)
    score = torch.rand(2, 28, 28)
    for label, v in [("-0.1", -0.1), ("1.5", 1.5), ("NaN", NAN), ("str", "0.5")]:
        _case(cases, "attribution", "occlude", "fraction", label, at.occlude, x, score, v)
    _case(cases, "attribution", "occlude", "mode", "keep", at.occlude, x, score, 0.5, "keep")
    _case(cases, "attribution", "occlude", "score", "wrong shape", at.occlude, x, score[:, :5], 0.5,
          needle="score")
    _case(cases, "attribution", "importance", "a", "3-D", at.importance, x[:, 0])
    for label, v in BAD_EPS[:4]:
        _case(cases, "manifold", "adversarial_distances", "eps", label, manifold.adversarial_distances,
              model, vae, x, y, eps=v, steps=2)
        _case(cases, "sensitivity", "sensitivity", "eps", label, sens.sensitivity, model, x, y, eps=v, steps=2)
    for label, v in BAD_STEPS:
        _case(cases, "manifold", "adversarial_distances", "steps", label, manifold.adversarial_distances,
              model, vae, x, y, steps=v)
    _case(cases, "manifold", "project", "vae", "a classifier", manifold.project, model, x)
    A = torch.rand(20, 6)
    nan_A = A.clone()
    nan_A[0, 0] = NAN
    for label, v in [("1-D", A[0]), ("NaN", nan_A), ("numpy", A.numpy()), ("empty", A[:0])]:
        _case(cases, "low_rank_analysis", "variance_ratio", "A", label, lra.variance_ratio, v)
        _case(cases, "sensitivity", "dimensionality", "r", label, sens.dimensionality, v)
    for label, v in [("0", 0.0), ("1.5", 1.5), ("NaN", NAN)]:
        _case(cases, "sensitivity", "dimensionality", "variance", label, sens.dimensionality, A, v)
    y20 = torch.arange(20) % 10
    for label, v in [("0", 0), ("width + 1", 7), ("2.5", 2.5)]:
        _case(cases, "low_rank_analysis", "max_margin", "dim", label, lra.max_margin, A, y20, v)
    for label, v in [("wrong length", y20[:5]), ("-1", y20 - 1), ("float", y20.float())]:
        _case(cases, "low_rank_analysis", "max_margin", "y_train", label, lra.max_margin, A, v)
    _case(cases, "low_rank_analysis", "rho", "x_adv", "wrong shape", lra.rho, x[:1], x)
    if hasattr(lra, "median_fooling_rho"):
        _case(cases, "low_rank_analysis", "median_fooling_rho", "x_adv", "wrong shape",
              lra.median_fooling_rho, model, x, y, x[:1])
        for label, yb in bad_labels(y):
            _case(cases, "low_rank_analysis", "median_fooling_rho", "y", label, lra.median_fooling_rho,
                  model, x, yb, x)
    _case(cases, "low_rank_analysis", "activations", "layer", "nope", lra.activations, model, x, "nope")
    W = torch.eye(8)
    for label, v in [("0", 0), ("9", 9), ("2.5", 2.5), ("str", "2")]:
        _case(cases, "methods.low_rank", "svd_project", "r", label, svd_project, W, v)
        _case(cases, "methods.low_rank", "nystrom_project", "r", label, nystrom_project, W, v)
    for label, v in [("not square", W[:4]), ("NaN", W * NAN), ("1-D", W[0])]:
        _case(cases, "methods.low_rank", "svd_project", "W", label, svd_project, v, 2)
        _case(cases, "methods.low_rank", "nystrom_project", "W", label, nystrom_project, v, 2)
    for label, v in [("0", 0), ("9", 9), ("1.5", 1.5)]:
        _case(cases, "methods.low_rank", "nystrom_project", "l", label, nystrom_project, W, 2, l=v)
    for label, v in BAD_COUNT:
        _case(cases, "methods.low_rank", "nystrom_project", "t", label, nystrom_project, W, 2, t=v)
    return cases


def all_cases(tmp: Path | None = None) -> list[Case]:
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-")) if tmp is None else tmp
    model = tiny_model()
    x, y = batch()
    return (attack_cases(model, x, y) + evaluate_cases(model, x, y) + representation_cases(model, x, y)
            + masking_cases(model, x, y) + data_cases(tmp) + train_cases() + methods_cases(model)
            + cache_cases(tmp) + chapters_5_to_7_cases(model, x, y))


def generated_cases() -> list[Case]:
    """The catalogue generated from the declarations (empty for a package without them)."""
    if not hasattr(rt, "declare"):
        return []
    import declared_cases
    return declared_cases.cases(Case)


KINDS = ("clear", "obscure", "silent", "valid", "valid-refused")


def report(cases: list[Case], timeout: float, show: set[str], title: str) -> tuple[Counter, list]:
    """Run ``cases``, print the table of outcomes by module, return (totals, rows)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    rows = []
    for case in cases:
        kind, detail = outcome(case, timeout)
        counts[case.module][kind] += 1
        rows.append({"id": case.id, "module": case.module, "outcome": kind, "detail": detail})
        if kind in show:
            print(f"{kind:8s} {case.id}: {detail}", flush=True)
    print(f"\n{title}\n{'module':20s} {'tried':>6s} " + " ".join(f"{k:>13s}" for k in KINDS))
    total = Counter()
    for module, c in sorted(counts.items()):
        total.update(c)
        print(f"{module:20s} {sum(c.values()):6d} " + " ".join(f"{c[k]:13d}" for k in KINDS))
    print(f"{'all':20s} {sum(total.values()):6d} " + " ".join(f"{total[k]:13d}" for k in KINDS))
    return total, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a call counts as silent")
    parser.add_argument("--json", help="write every case's outcome here")
    parser.add_argument("--show", default="obscure,silent,valid-refused", help="outcomes to list case by case")
    parser.add_argument("--module", help="only this module's cases")
    args = parser.parse_args()
    import warnings
    warnings.simplefilter("ignore")
    show = set(args.show.split(","))
    results = {}
    for title, cases in (("hand-written catalogue", all_cases()), ("generated from the declarations",
                                                                     generated_cases())):
        if args.module:
            cases = [c for c in cases if c.module == args.module]
        total, rows = report(cases, args.timeout, show, title)
        results[title] = {"counts": dict(total), "cases": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
