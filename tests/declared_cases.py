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

import contextlib
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


def _figure(*values):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot(values)
    return fig


def _roar_spec():
    return rt.recipes.roar_classifier("mnist")


# Functions that fetch trained models from the model cache (reprtut.cache.get, imported into
# their module): their cases run with the module's ``get`` answering from a stub, so that the
# catalogue trains nothing (a bad value the declaration let through still returns: silent).
FROM_CACHE = {"reprtut.attribution.roar_kar": "reprtut.attribution",
              "reprtut.perceptual_analysis.transfer_matrix": "reprtut.perceptual_analysis"}


def _stub_get(spec, *args, **kwargs):
    """A trained model of the cache, without training: its history ends at accuracy 0.5."""
    import types
    if not isinstance(spec, rt.cache.ModelSpec):
        raise AssertionError(f"the stub cache was asked for {spec!r:.80}, not a ModelSpec")
    return types.SimpleNamespace(spec=spec, model=None, history={"test_acc": [0.5]})


_TMP = []


def _tmp():
    """A scratch folder for the catalogue's files (checkpoints, the stub cache), removed at exit."""
    if not _TMP:
        import atexit
        import shutil
        import tempfile
        from pathlib import Path
        _TMP.append(Path(tempfile.mkdtemp(prefix="declared-")))
        atexit.register(shutil.rmtree, _TMP[0], True)
    return _TMP[0]


@contextlib.contextmanager
def _stub_training():
    """reprtut.cache.get with nothing trained, fetched or stored: the cache is an empty scratch
    folder, $REPRTUT_MODELS_URL is ignored and training returns a one-epoch history at once
    (so every call builds the spec's untrained model and returns it)."""
    from unittest import mock

    cache = importlib.import_module("reprtut.cache")
    stub = lambda *args, **kwargs: rt.train.History({"test_acc": [0.5]})  # noqa: E731
    with mock.patch.dict("os.environ", {cache.CACHE_ENV: str(_tmp() / "models")}), \
            mock.patch.object(cache.hub, "base_url", lambda: None), \
            mock.patch.object(cache, "_train", stub):
        yield


# Functions whose cases run inside a context that stubs what they would do for real.
STUBBED = {"reprtut.cache.get": _stub_training}


def _tiny_spec():
    return rt.cache.ModelSpec("catalogue", "mnist", "mnist_cnn", arch_kwargs={"width": 4, "hidden": 16},
                              n_train=64, n_eval=0, train=rt.train.TrainConfig(epochs=1, batch_size=64))


def _tiny_training():
    """An objective, a loader of 8 images (one step of 8) and a one-epoch config for fit."""
    torch.manual_seed(0)
    objective = rt.methods.build("standard", rt.models.mnist_cnn(width=4, hidden=16))
    loader = rt.data.TensorLoader(rt.data.load("mnist", "test", n=8), 8, device="cpu")
    return {"objective": objective, "loader": loader,
            "cfg": rt.train.TrainConfig(epochs=1, batch_size=8, lr=0.01), "progress": False}


def _checkpoint():
    path = _tmp() / "checkpoint.pt"
    if not path.exists():
        torch.save({"epoch": 1}, path)
    return path


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
        "reprtut.low_rank_analysis.tail_parameters": {"layer": "features"},
        "reprtut.attribution.occlude": {"x": _images(), "score": torch.rand(2, 28, 28)},
        "reprtut.attribution.scores": {"fractions": [0.0, 0.5, 1.0], "roar": {"G": curve, "rand": curve},
                                       "kar": {"G": curve, "rand": curve}},
        "reprtut.attribution.attribute": {"backend": "torch"},
        "reprtut.attribution.occluded_dataset": {"explainer": _roar_spec()},
        "reprtut.attribution.occluded_spec": {"template": _roar_spec(), "explainer": _roar_spec()},
        "reprtut.attribution.roar_kar": {"explainer": _roar_spec(), "template": _roar_spec(),
                                         "n_test": 100},
        "reprtut.perceptual_analysis.transfer_matrix": {
            "sources": {"left": rt.recipes.supervised("flanked_mnist_left")},
            "targets": {"left": "flanked_mnist_left", "right": "flanked_mnist_right"},
            "make": rt.recipes.transfer},
        "reprtut.toy.train": {"epochs": 1, "data": rt.toy.sample(16)},
        "reprtut.toy.sample": {"n_per_class": 16},
        "reprtut.toy.grid": {"n": 4},
        "reprtut.manifold.project": {"vae": tiny_vae()},
        "reprtut.manifold.distance": {"vae": tiny_vae()},
        "reprtut.manifold.adversarial_distances": {"vae": tiny_vae(), "steps": 2},
        "reprtut.manifold.edge_ratio": {"vae": tiny_vae()},
        "reprtut.perceptual_analysis.perceive": {"model": tiny_perceptual()},
        "reprtut.perceptual_analysis.attention_ratio": {"model": tiny_perceptual(), "centre": slice(8, 20)},
        "reprtut.perceptual_analysis.region_errors": {"centre": slice(8, 20)},
        "reprtut.perceptual_analysis.perception_agreement": {"model": tiny_perceptual()},
        "reprtut.book.glue": {"name": "a_number", "value": 0.5},
        "reprtut.book.claim": {"checks": {}, "name": "a claim", "holds": True},
        "reprtut.data.load": {"split": "test", "n": 8},
        "reprtut.data.register_derived": {"info": rt.data.INFO["mnist"]},
        "reprtut.train.fit": _tiny_training(),
        "reprtut.train.save_atomic": {"obj": {"epoch": 1}, "path": _tmp() / "saved.pt"},
        "reprtut.train.load_checkpoint": {"path": _checkpoint()},
        "reprtut.cache.get": {"spec": _tiny_spec(), "device": "cpu", "progress": False},
        "reprtut.book.table": {"rows": [(1, "a")], "headers": ["n", "name"]},
        "reprtut.stats.mean_interval": {"values": [0.1, 0.2, 0.4]},
        "reprtut.stats.wilson": {"k": 3, "n": 10},
        "reprtut.images.coarse_share": {"d": torch.randn(2, 3, 8, 8)},
        "reprtut.attacks.minimal.deepfool": {"steps": 2},
        "reprtut.attacks.minimal.cw_l2": {"steps": 2, "search_steps": 1},
        "reprtut.attacks.minimal.ddn": {"steps": 2},
        "reprtut.attacks.library.square": {"steps": 2},
        "reprtut.masking.worst_case_accuracy": {"attack": pgd, "eps": 0.1, "steps": 1},
        "reprtut.masking.iterative_beats_single_step": {"steps": 2},
        "reprtut.masking.accuracy_vanishes": {"steps": 2},
        "reprtut.masking.black_box_weaker": {"steps": 2},
        "reprtut.masking.more_effort_saturates": {"steps": 2, "factor": 1, "restarts": 1},
        "reprtut.masking.gradient_free_not_stronger": {"steps": 2, "queries": 2},
        "reprtut.masking.softmax_saturation": {"steps": 2, "queries": 2},
        "reprtut.masking.checklist": {"steps": 2, "queries": 2},
        # the checks of exercises: the student's answer is undeclared (a wrong one is a verdict)
        "reprtut.check.targeted_attack": {"x_adv": _images(), "target": 3},
        "reprtut.check.equal_auc": {"a": [1.0, 0.8, 0.3, 0.1], "b": [1.0, 0.6, 0.5, 0.1]},
        "reprtut.check.top_coordinates": {"c": 3, "indices": [0, 1]},
        "reprtut.check.gx_unit_box": {"attribution": torch.zeros(2, 1, 28, 28)},
        "reprtut.check.sensitivity": {"S_e": lambda E, x, xa: (E(x) - E(xa)).norm(dim=1) / E(x).norm(dim=1)},
        "reprtut.check.centred_variance_ratio": {"vr": [0.5]},
        "reprtut.check.pgd_budget": {"k": 3},
        # figures: what is drawn is undeclared (pages pass arrays, lists, dicts)
        "reprtut.viz.show_images": {"x": _images()},
        "reprtut.viz.image_rows": {"rows": {"x": _images()}},
        "reprtut.viz.plot_curves": {"x": [0.0, 0.1, 0.2], "curves": {"m": [0.9, 0.5, 0.1]}},
        "reprtut.viz.heatmap": {"table": {"FGSM": {"std": 0.3}, "PGD": {"std": 0.1}}},
        "reprtut.viz.embedding_scatter": {"z": [[0, 0], [1, 0]], "labels": [0, 1], "kinds": ["a", "b"]},
        "reprtut.viz.static_slider": {"draw": _figure, "params": {"a": [0, 1]}},
        "reprtut.attacks.library.boundary": {"steps": 2, "draws": 2},
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
    if isinstance(spec, d.File):
        return str(_tmp() / "example.pt")
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
    if isinstance(spec, d.File):
        return [("int", 3), ("empty", ""), ("list", [str(value)])] + none
    if isinstance(spec, rt.cache._Device):
        return [("unknown", "gpu"), ("bool", True), ("list", [value]), ("float", 0.5)] + none
    if isinstance(spec, rt.attribution._Methods):
        return [("str", "G"), ("unknown entry", (*value, "no-such")), ("other case", (value[0].lower(),)),
                ("int entry", (1,)), ("set", set(value))] + none
    if isinstance(spec, rt.stats._Interval):
        lo, hi = value
        out = [("str", "low"), ("reversed", (hi, lo)), ("three numbers", (lo, hi, hi + 1)),
               ("NaN end", (NAN, hi)), ("str end", (lo, str(hi))), ("bool", True), ("dict", {"low": lo})]
        if not spec.number:
            out.append(("number", lo))
        return out + none
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
    if isinstance(spec, rt.cache._Device):
        return [("torch.device", {name: torch.device(value)})]
    if isinstance(spec, d.Reals) and value is not None:
        return [("numpy array", {name: np.asarray(value)}), ("tuple", {name: tuple(value)})]
    if isinstance(spec, rt.attribution._Methods):
        return [("list", {name: list(value)}), ("one method", {name: (value[0],)}),
                ("random only", {name: ("rand",)}), ("empty", {name: ()})]
    if isinstance(spec, rt.stats._Interval):
        lo, hi = value
        out = [("list", {name: [lo, hi]}), ("numpy ends", {name: (np.float64(lo), np.float32(hi))}),
               ("one point", {name: (lo, lo)}), ("infinite ends", {name: (-INF, INF)})]
        if spec.number:
            out += [("number", {name: 0.0}), ("numpy number", {name: np.float64(0.0)})]
        return out
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
    stub = FROM_CACHE.get(qualname) or STUBBED.get(qualname)
    out = [Case(module, entry, "*", "valid call", _call(fn, args, stub), valid=True)]
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
            out.append(Case(module, entry, name, label, _call(fn, {**args, name: bad}, stub)))
        for label, change in valid_edges(spec, name, args[name], args, specs):
            out.append(Case(module, entry, name, label, _call(fn, {**args, **change}, stub), valid=True))
    return out


def _call(fn, kwargs, stub=None):
    """The call ``fn(**kwargs)``; with ``stub`` (a module's name), that module's ``get`` is
    :func:`_stub_get` during the call; a function ``stub`` is a context the call runs in."""
    import inspect
    from unittest import mock

    params = inspect.signature(fn).parameters
    positional = [n for n, p in params.items() if p.kind is p.POSITIONAL_ONLY]

    def call():
        with (stub() if callable(stub) else
              mock.patch.object(importlib.import_module(stub), "get", _stub_get) if stub else
              contextlib.nullcontext()):
            return fn(*[kwargs[n] for n in positional],
                      **{k: v for k, v in kwargs.items() if k not in positional})
    return call


def _undervived(qualname):
    def fail():
        raise LookupError(f"{qualname}: no valid call could be derived; give its undeclared "
                          f"parameters in tests/declared_cases.py _fixtures")
    return fail
