"""A catalogue generated from the declarations: every public function wrapped in
:func:`reprtut.declare.checked`, called with bad values derived from what each parameter
declares, and with valid edge values that must be accepted.

For each function a valid call is built first: a parameter's default where it has one, else
an example derived from its declaration (a tiny MNIST batch for images, labels for them, a
value inside a declared range, the first choice...). Where a function takes something no
declaration describes (an attack's keyword arguments, a dict of curves) :func:`_fixtures`
supplies it. Then each declared parameter in turn gets every bad value its Spec implies
(wrong type, numpy instead of torch, wrong dtype or shape, NaN/inf, out of range, empty,
another batch size, an unknown spelling of a choice...) with all other arguments valid, and
every valid edge (a batch of one, the closed end of a range such as eps = 0, one class
present, numpy scalars). A function declared tomorrow is in this catalogue tomorrow.
"""

from __future__ import annotations

import importlib
import math
import pkgutil

import numpy as np
import torch

import reprtut as rt
from reprtut import declare as d

NAN, INF = math.nan, math.inf


def declared_functions(package=rt) -> dict[str, object]:
    """qualified name -> function, for every checked public function of the package."""
    found = {}
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith(".__main__"):  # command-line entry points run when imported
            continue
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            if name.startswith("_") or not callable(getattr(fn, "__declared__", None)):
                continue
            if getattr(fn, "__module__", None) == module.__name__:
                found[f"{module.__name__}.{name}"] = fn
    return dict(sorted(found.items()))


# ------------------------------------------------------------------ the world a call lives in

def tiny_model():
    torch.manual_seed(0)
    return rt.models.mnist_cnn(width=4, hidden=16).eval()


def toy_net():
    torch.manual_seed(0)
    return rt.toy.net(8).eval()


def _images(n=2):
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def tiny_vae():
    torch.manual_seed(0)
    return rt.models.build("vaegan", "mnist", zdim=2, width=4, hidden=8).eval()


def tiny_perceptual():
    torch.manual_seed(0)
    return rt.models.build("perceptual_mnist", "mnist").eval()


def _fixtures() -> dict[str, dict]:
    """Valid values for what no declaration describes (and cheaper sizes where a default is
    slow), by function. Everything else of a valid call is derived."""
    pgd = rt.attacks.pgd
    curve = [1.0, 0.5, 0.0]
    return {
        "reprtut.evaluate.perturb": {"attack": pgd, "eps": 0.1, "steps": 1},
        "reprtut.evaluate.robust_accuracy": {"attack": pgd, "eps": 0.1, "steps": 1},
        "reprtut.evaluate.accuracy_vs_eps": {"attack": pgd, "steps": 1},
        "reprtut.evaluate.min_perturbation": {"attack": rt.attacks.deepfool, "steps": 1},
        "reprtut.evaluate.transfer": {"attack": pgd, "eps": 0.1, "steps": 1},
        "reprtut.evaluate.sweep": {"attacks": {"pgd": (pgd, [0.0, 0.1], {"steps": 1})}},
        "reprtut.evaluate.accuracy_over_iterations": {"steps": 2},
        "reprtut.sensitivity.sensitivity": {"steps": 1},
        "reprtut.sensitivity.sensitivity_curve": {"steps": 1},
        "reprtut.sensitivity.tsne": {"r": torch.rand(12, 3), "perplexity": 4.0},
        "reprtut.low_rank_analysis.min_fooling_budget": {"attack": pgd, "steps": 1},
        "reprtut.low_rank_analysis.pca_accuracies": {"dims": [2, None]},
        "reprtut.attribution.occlude": {"x": _images(), "score": torch.rand(2, 28, 28)},
        "reprtut.attribution.scores": {"fractions": [0.0, 0.5, 1.0], "roar": {"G": curve, "rand": curve},
                                       "kar": {"G": curve, "rand": curve}},
        "reprtut.attribution.attribute": {"backend": "torch"},
        "reprtut.toy.train": {"epochs": 1, "data": rt.toy.sample(16)},
        "reprtut.toy.sample": {"n_per_class": 16},
        "reprtut.toy.grid": {"n": 4},
        "reprtut.manifold.project": {"vae": tiny_vae()},
        "reprtut.manifold.distance": {"vae": tiny_vae()},
        "reprtut.manifold.adversarial_distances": {"vae": tiny_vae(), "steps": 2},
        "reprtut.perceptual_analysis.perceive": {"model": tiny_perceptual()},
        "reprtut.perceptual_analysis.attention_ratio": {"model": tiny_perceptual(), "centre": slice(8, 20)},
        "reprtut.perceptual_analysis.region_errors": {"centre": slice(8, 20)},
        "reprtut.perceptual_analysis.perception_agreement": {"model": tiny_perceptual()},
        "reprtut.book.glue": {"name": "a_number", "value": 0.5},
        "reprtut.book.table": {"rows": [(1, "a")], "headers": ["n", "name"]},
        "reprtut.stats.mean_interval": {"values": [0.1, 0.2, 0.4]},
        "reprtut.stats.wilson": {"k": 3, "n": 10},
        "reprtut.images.coarse_share": {"d": torch.randn(2, 3, 8, 8)},
        "reprtut.attacks.minimal.deepfool": {"steps": 2},
        "reprtut.attacks.minimal.cw_l2": {"steps": 2, "search_steps": 1},
        "reprtut.attacks.minimal.ddn": {"steps": 2},
        "reprtut.representation.invert": {"r_target": torch.randn(2, tiny_model().dim), "steps": 2},
        "reprtut.representation.match": {"steps": 2},
        "reprtut.representation.maximize": {"i": 0, "steps": 2},
        "reprtut.representation.add_feature": {"i": 0, "steps": 2},
        "reprtut.representation.top_features": {"k": 2},
        "reprtut.representation.accentuate": {"k": 2, "steps": 2},
        "reprtut.representation.interpolate": {"steps": 2},
        "reprtut.representation.extremes": {"i": 1, "k": 2},
    }


def _uses_points(specs) -> bool:
    return any(isinstance(s, d.Tensor) and s.shape == (None, 2) for s, _ in specs.values())


def example(spec, name, args, specs):
    """A valid value of ``spec`` given the arguments chosen so far (``args``)."""
    if callable(spec.example):  # the declaration knows its own example
        return spec.example()
    if isinstance(spec, d.Model):
        return toy_net() if _uses_points(specs) else tiny_model()
    if isinstance(spec, d.Images):
        return args[spec.of].clone() if spec.of in args else _images()
    if isinstance(spec, d.Labels):
        k = spec.classes if isinstance(spec.classes, int) else args.get(spec.classes) or 2
        return torch.arange(len(args[spec.of])) % min(k, 2)
    if isinstance(spec, d.Tensor):
        if spec.like in args:
            return torch.randn_like(args[spec.like].float())
        rows = len(args[spec.of]) if spec.of in args else 20
        if spec.shape is not None:
            shape = tuple(rows if n is None else n for n in spec.shape)
        else:
            shape = (rows, 6, 5, 4)[:(spec.ndim or (2,))[0]]
        t = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        return t if spec.floating is not False else t.long().abs()
    if isinstance(spec, d.Real):
        lo, hi = (args.get(b) if isinstance(b, str) else b for b in (spec.kw["low"], spec.kw["high"]))
        if lo is not None and hi is not None:
            return (lo + hi) / 2
        return (lo if lo is not None else 0.0) + 0.5
    if isinstance(spec, d.Reals):
        lo = spec.low if spec.low is not None else 0.0
        hi = spec.high if spec.high is not None else lo + 1.0
        return [float(v) for v in np.linspace(lo, hi, max(spec.min_len, 2))]
    if isinstance(spec, d.Count):
        hi = args.get(spec.max) if isinstance(spec.max, str) else spec.max
        v = max(spec.min if spec.min is not None else 1, 16)  # big enough for another's default
        return v if hi is None else min(v, hi)
    if isinstance(spec, d.Choice):
        return spec.options[0]
    if isinstance(spec, d.Flag):
        return False
    if isinstance(spec, d.Text):
        return "a"
    if isinstance(spec, d.Function):
        return rt.attacks.pgd
    raise LookupError(f"no example for {name}: {type(spec).__name__}")


def valid_call(qualname, fn) -> dict | None:
    """Keyword arguments of a valid call of ``fn``, or None when one cannot be built."""
    import inspect

    fixtures = _fixtures().get(qualname, {})
    specs = fn.__declared__()
    params = inspect.signature(fn).parameters
    args = {}
    # those that refer to another parameter (labels of x, a rank at most m) after it
    for name in sorted(params, key=lambda n: n in specs and specs[n][0].refers()):
        p = params[name]
        if p.kind is p.VAR_KEYWORD:
            args.update({k: v for k, v in fixtures.items() if k not in args and
                         k not in inspect.signature(fn).parameters})
            continue
        if p.kind is p.VAR_POSITIONAL:
            continue
        if name in fixtures:
            args[name] = fixtures[name]
        elif p.default is not p.empty:
            args[name] = p.default
        elif name in specs:
            try:
                args[name] = example(specs[name][0], name, args, specs)
            except LookupError:
                return None
        else:
            return None
    return {n: args[n] for n in params if n in args} | {k: v for k, v in args.items() if k not in params}


# ------------------------------------------------------------------ bad values and valid edges

def bad_values(spec, name, value, args, optional) -> list[tuple[str, object]]:
    """(label, bad value) pairs that ``spec`` must refuse in place of the valid ``value``."""
    none = [] if optional else [("None", None)]
    if isinstance(spec, d.Model):
        return [("str", "model")] + none
    if isinstance(spec, d.Images):
        x = value
        nan_x, inf_x = x.clone(), x.clone()
        nan_x.view(-1)[0], inf_x.view(-1)[-1] = NAN, INF
        out = [("uint8 0-255", (x * 255).to(torch.uint8)), ("float 0-255", x * 255 + 1),
               ("negative", x - 2), ("NaN pixel", nan_x), ("inf pixel", inf_x), ("numpy", x.numpy()),
               ("list", x.tolist()), ("empty batch", x[:0]), ("3-D", x[0])]
        if not spec.double:
            out.append(("float64", x.double()))
        if spec.model is not None:
            out.append(("3 channels", x.expand(-1, 3, -1, -1).contiguous()))
        if spec.of is not None:
            out.append(("another shape", x[:1]))
        return out + none
    if isinstance(spec, d.Labels):
        y = value
        k = spec.classes if isinstance(spec.classes, int) else args.get(spec.classes)
        if k is None and isinstance(args.get(spec.model), torch.nn.Module):
            k = rt.nn.num_classes(args[spec.model], args[spec.of])
        out = [("-1", torch.cat([y[:-1], torch.tensor([-1])])), ("y[:, None]", y[:, None]),
               ("float", y.float()), ("wrong length", torch.cat([y, y[:1]])), ("list", y.tolist()),
               ("numpy", y.numpy())]
        if k is not None:
            out.append((">= classes", torch.cat([y[:-1], torch.tensor([k])])))
        if spec.min_classes > 1:
            out.append(("one class", torch.full_like(y, int(y[0]))))
        return out + none
    if isinstance(spec, d.Tensor):
        t = value
        out = [("numpy", t.numpy()), ("list", t.tolist()), ("extra dimension", t[None])]
        if spec.floating:
            out.append(("integer", t.long()))
            if spec.finite:
                nan_t = t.clone()
                nan_t.view(-1)[0] = NAN
                out.append(("NaN", nan_t))
        if spec.min_len:
            out.append(("empty", t[:0]))
        if (spec.of or spec.like) and len(t) > 1:
            out.append(("another batch size", t[:-1]))
        if spec.shape is not None:
            out.append(("wrong width", torch.cat([t, t], -1)))
        return out + none
    if isinstance(spec, d.Real):
        lo, hi = (args.get(b) if isinstance(b, str) else b for b in (spec.kw["low"], spec.kw["high"]))
        out = [("NaN", NAN), ("str", str(value)), ("bool", True), ("list", [value])]
        if not spec.kw["allow_inf"]:
            out.append(("inf", INF))
        if lo is not None:
            out.append(("below the range", lo if spec.kw["low_open"] else lo - 1))
        if hi is not None:
            out.append(("above the range", hi if spec.kw["high_open"] else hi + 1))
        return out + none
    if isinstance(spec, d.Reals):
        v = list(value)
        out = [("str", "0.1"), ("NaN entry", v[:-1] + [NAN]), ("scalar", v[0])]
        if spec.min_len:
            out.append(("empty", []))
        if spec.low is not None:
            out.append(("below the range", [spec.low - 1] + v[1:]))
        if spec.high is not None:
            out.append(("above the range", v[:-1] + [spec.high * 100 + 1]))  # e.g. percentages
        if spec.increasing:
            out.append(("decreasing", v[::-1]))
        return out + none
    if isinstance(spec, d.Count):
        out = [("float", float(value) + 0.5), ("str", str(value)), ("bool", True)]
        if spec.min is not None:
            out.append(("below the range", spec.min - 1))
        hi = args.get(spec.max) if isinstance(spec.max, str) else spec.max
        if isinstance(hi, int):
            out.append(("above the range", hi + 1))
        return out + none
    if isinstance(spec, d.Choice):
        out = [("unknown", "no-such-" + str(value)), ("int", 1)]
        if not spec.fold_case and str(value).upper() not in spec.options and str(value).upper() != value:
            out.append(("other case", str(value).upper()))
        return out + none
    if isinstance(spec, d.Flag):
        return [("int", 1), ("str", "yes")] + none
    if isinstance(spec, d.Text):
        return [("int", 3), ("empty", "")] + none
    if isinstance(spec, d.Function):
        return [("str", "pgd"), ("int", 1)] + none
    if isinstance(spec, d.Instance):
        return [("str", "x")]
    return []


def valid_edges(spec, name, value, args, specs) -> list[tuple[str, dict]]:
    """(label, changed arguments) pairs that must be accepted."""
    if value is None:
        return []
    if isinstance(spec, d.Images) and spec.of is None and len(value) > 1:
        followers = [n for n, (s, _) in specs.items() if getattr(s, "of", None) == name
                     or getattr(s, "like", None) == name]
        return [("batch of one", {name: value[:1], **{n: args[n][:1] for n in followers
                                                     if torch.is_tensor(args.get(n))}})]
    if isinstance(spec, d.Labels) and spec.min_classes == 1:
        return [("one class present", {name: torch.full_like(value, int(value[0]))})]
    if isinstance(spec, d.Real) and value is not None and not isinstance(value, bool):
        out = [("numpy scalar", {name: np.float64(value)}), ("0-d tensor", {name: torch.tensor(float(value))})]
        lo = args.get(spec.kw["low"]) if isinstance(spec.kw["low"], str) else spec.kw["low"]
        if lo is not None and not spec.kw["low_open"]:
            out.append((f"{name} = {lo:g}", {name: lo}))
        return out
    if isinstance(spec, d.Count) and value is not None:
        return [("numpy integer", {name: np.int64(value)})]
    if isinstance(spec, d.Flag):
        return [("numpy bool", {name: np.bool_(value)})]
    if isinstance(spec, d.Reals) and value is not None:
        return [("numpy array", {name: np.asarray(value)}), ("tuple", {name: tuple(value)})]
    return []


def cases(Case) -> list:
    """The generated catalogue as ``Case``s of :mod:`fuzz_report` (``Case.valid`` True for the
    calls that must succeed), for every checked public function of the package."""
    return [c for qualname, fn in declared_functions().items() for c in cases_of(qualname, fn, Case)]


def cases_of(qualname: str, fn, Case) -> list:
    """The generated cases of one checked function: a valid call, each declared parameter's
    bad values (all other arguments valid) and its valid edges."""
    module, entry = qualname[len("reprtut."):].rsplit(".", 1)
    args = valid_call(qualname, fn)
    if args is None:
        return [Case(module, entry, "*", "no valid call derivable", _undervived(qualname), valid=True)]
    out = [Case(module, entry, "*", "valid call", _call(fn, args), valid=True)]
    specs = fn.__declared__()
    for name, (spec, optional) in specs.items():
        if name not in args:
            continue
        value = args[name]
        if value is None:  # an optional parameter left at None: derive bad values from an example
            try:
                value = example(spec, name, args, specs)
            except (LookupError, KeyError, TypeError):
                continue
        for label, bad in bad_values(spec, name, value, args, optional):
            out.append(Case(module, entry, name, label, _call(fn, {**args, name: bad})))
        for label, change in valid_edges(spec, name, args[name], args, specs):
            out.append(Case(module, entry, name, label, _call(fn, {**args, **change}), valid=True))
    return out


def _call(fn, kwargs):
    import inspect

    params = inspect.signature(fn).parameters
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_ONLY]
    return lambda: fn(*[kwargs[n] for n in positional],
                      **{k: v for k, v in kwargs.items() if k not in positional})


def _undervived(qualname):
    def fail():
        raise LookupError(f"{qualname}: no valid call could be derived; give its undeclared "
                          f"parameters in tests/declared_cases.py _fixtures")
    return fail
