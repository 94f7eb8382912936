"""Checks that follow the declarations (reprtut.declare): the catalogue generated from them,
a new function covered without editing it, one read of a batch per public call, specs
checked where they are written, and analyses with nothing to analyse.

Tiny untrained models and tensors only; the whole module takes about 15 s on one core.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest
import torch

import declared_cases as dc
import fuzz_report as fz
import reprtut as rt
from reprtut import declare
from reprtut.attacks.core import Eps, Steps
from reprtut.declare import checked
from reprtut.nn import Images, Labels, Model


@pytest.fixture(scope="module")
def generated():
    return fz.generated_cases()


def _outcomes(cases):
    return [(fz.outcome(c, timeout=60), c) for c in cases]


def test_the_generated_catalogue_has_no_obscure_silent_or_refused_case(generated):
    """Every bad value a declaration implies is refused naming its parameter, and every valid
    edge (a batch of one, eps = 0, one class present, numpy scalars) is accepted."""
    assert len(generated) > 1000
    wrong = [f"{kind}: {c.id}: {detail}" for (kind, detail), c in _outcomes(generated)
             if kind not in ("clear", "valid")]
    assert not wrong, "\n".join(wrong)


def test_every_checked_function_has_a_valid_call_in_the_catalogue(generated):
    found = dc.declared_functions()
    assert len(found) >= 40, sorted(found)
    assert {"reprtut.attacks.gradient.pgd", "reprtut.toy.attack", "reprtut.book.glue",
            "reprtut.evaluate.normalized_auc", "reprtut.attribution.occlude"} <= set(found)
    called = {f"reprtut.{c.module}.{c.entry}" for c in generated if c.param == "*" and c.valid}
    assert called == set(found)


# ------------------------------------------------ a new public function, covered when declared

def _margin_mean(broken: bool):
    @checked
    def margin_mean(model: Model, x: Images, y: Labels, *, eps: Eps = 0.0, steps: Steps = 2,
                    reduce: Literal["mean", "max"] = "mean") -> float:
        """Mean (or max) logit margin of the true class after PGD; a function the catalogue
        has never heard of."""
        x_adv = rt.attacks.pgd(model, x, y, eps=eps, steps=steps)
        m = rt.attacks.margin(rt.evaluate.predict(model, x_adv), y)
        if broken:  # a bug a batch of one exposes: squeeze drops the batch dimension
            m = torch.stack(list(m.squeeze()))  # a 0-d tensor has no items
        return float(m.mean() if reduce == "mean" else m.max())
    margin_mean.__module__ = "reprtut.evaluate"
    return margin_mean


def test_a_new_public_function_is_covered_without_editing_the_catalogue(monkeypatch):
    fn = _margin_mean(broken=False)
    monkeypatch.setattr(rt.evaluate, "margin_mean", fn, raising=False)
    assert "reprtut.evaluate.margin_mean" in dc.declared_functions()
    cases = dc.cases_of("reprtut.evaluate.margin_mean", fn, fz.Case)
    params = {c.param for c in cases}
    assert {"model", "x", "y", "eps", "steps", "reduce"} <= params
    labels = {c.label for c in cases}
    assert {"NaN pixel", "numpy", ">= classes", "y[:, None]", "unknown", "other case",
            "batch of one", "eps = 0"} <= labels
    kinds = {kind for (kind, _), _ in _outcomes(cases)}
    assert kinds <= {"clear", "valid"}, kinds


def test_the_generated_cases_of_a_new_function_catch_its_bug():
    """The same generation run on a version that breaks on a batch of one finds it."""
    fn = _margin_mean(broken=True)
    refused = [c.id for (kind, _), c in _outcomes(dc.cases_of("reprtut.evaluate.margin_mean", fn, fz.Case))
               if kind == "valid-refused"]
    assert any("batch of one" in i for i in refused), refused


# ------------------------------------------------------------ the cost: one read per public call

def test_a_public_call_reads_the_batch_once_and_nested_calls_not_again(monkeypatch):
    reads = []
    real_read = declare._read
    monkeypatch.setattr(declare, "_read", lambda pending: (reads.append(len(pending)), real_read(pending)))
    model = dc.tiny_model()
    x, y = torch.rand(4, 1, 28, 28), torch.tensor([1, 2, 3, 4])
    rt.evaluate.robust_accuracy(model, x, y, rt.attacks.pgd, eps=0.1, steps=2, batch_size=1)
    assert reads == [2], reads  # x and y, in one read, for four attacks and two accuracies
    reads.clear()
    rt.attacks.pgd(model, x, y, eps=0.1, steps=3)
    assert reads == [2]


def test_nested_calls_still_check_what_the_caller_passes_through():
    model = dc.tiny_model()
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([1, 2])
    with pytest.raises(ValueError, match="steps"):
        rt.evaluate.robust_accuracy(model, x, y, rt.attacks.pgd, eps=0.1, steps=0)
    with pytest.raises(ValueError, match="norm"):
        rt.evaluate.robust_accuracy(model, x, y, rt.attacks.pgd, eps=0.1, norm="Linf")


# ------------------------------------------------------------------------ the NumPy policy

def test_numpy_scalars_are_numbers_and_numpy_arrays_are_refused_with_a_hint():
    model = dc.tiny_model()
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([1, 2])
    out = rt.attacks.pgd(model, x, y, eps=np.float32(0.1), steps=np.int64(2), random_start=np.bool_(False))
    assert out.shape == x.shape
    for call, param in [(lambda: rt.attacks.pgd(model, x.numpy(), y, eps=0.1), "x"),
                        (lambda: rt.attribution.occlude(x, np.random.rand(2, 28, 28), 0.5), "score"),
                        (lambda: rt.low_rank_analysis.max_margin(np.random.rand(8, 3), torch.arange(8) % 2),
                         "A_train")]:
        with pytest.raises(TypeError, match=rf"{param} must be .*torch") as err:
            call()
        assert "torch.as_tensor" in str(err.value)


def test_choices_compare_exactly_and_never_fall_through():
    layer = rt.methods.low_rank.LRLayer(4, 2)
    with pytest.raises(ValueError, match="method"):
        layer.project("SVD")
    with pytest.raises(ValueError, match="mode"):
        rt.attribution.occlude(torch.rand(1, 1, 4, 4), torch.rand(1, 4, 4), 0.5, "ROAR")


# ------------------------------------------------------- specs checked where they are written

SPEC = dict(name="t", dataset="mnist", arch="mnist_cnn")


@pytest.mark.parametrize("kwargs, match", [
    ({"arch_kwargs": {"widht": 4}}, "arch_kwargs: architecture 'mnist_cnn' takes no keyword 'widht'"),
    ({"arch_kwargs": {"width": "4"}}, "width"),
    ({"method": "pgd", "method_kwargs": {"eps": -0.1}}, "eps"),
    ({"method": "pgd", "method_kwargs": {"eps": 8}}, "eps=8 exceeds the linf diameter 1"),
    ({"method": "pgd", "method_kwargs": {"eps": 100.0, "norm": "l2"}}, "exceeds the l2 diameter 28"),
    ({"method": "pgd", "method_kwargs": {"eps": 0.3, "nrom": "l2"}}, "takes no keyword 'nrom'"),
    ({"method": "pgd", "method_kwargs": {"eps": 0.3, "norm": "L2"}}, "norm"),
    ({"method": "trades", "method_kwargs": {"eps": 0.3, "beta": "6"}}, "beta"),
])
def test_a_bad_spec_fails_where_it_is_written(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rt.cache.ModelSpec(**SPEC, **kwargs)


def test_milestones_after_the_last_epoch_are_refused_by_the_config():
    with pytest.raises(ValueError, match="milestones"):
        rt.train.TrainConfig(epochs=4, schedule="step", milestones=(5,))
    assert rt.train.TrainConfig(epochs=4, schedule="step", milestones=(2, 3)).milestones == (2, 3)


def test_every_recipe_still_builds():
    import inspect
    for name in dir(rt.recipes):
        f = getattr(rt.recipes, name)
        if name.startswith("_") or not inspect.isfunction(f):
            continue
        if all(p.default is not p.empty for p in inspect.signature(f).parameters.values()):
            f()


# -------------------------------------------------------------- nothing to analyse is valid

def test_analyses_with_nothing_to_analyse_return_empty_results():
    model = dc.tiny_model()
    x = torch.rand(3, 1, 28, 28)
    pred = rt.evaluate.predict(model, x).argmax(1)
    assert math.isnan(rt.low_rank_analysis.median_fooling_rho(model, x, pred, x))  # nothing fooled
    wrong = (pred + 1) % 10  # the model gets nothing right: nothing to attack
    out = rt.low_rank_analysis.min_fooling_budget(model, x, wrong, rt.attacks.pgd, [0.1], steps=1)
    assert math.isnan(out["eps"]) and math.isnan(out["rho"])
    assert rt.low_rank_analysis.rho(x, x).eq(0).all()
    assert rt.attacks.pgd(model, x, pred, eps=0.0).equal(x)
    d, x_adv = rt.manifold.adversarial_distances(model, dc.tiny_vae(), x, pred, eps=0.0, steps=1)
    assert d.shape == (0,) and x_adv.shape == x.shape  # no attack succeeded


def test_declarations_refuse_what_the_issue_found_accepted():
    """A few of the calls that used to be accepted silently or fail obscurely."""
    net, (px, py) = rt.toy.net(8), rt.toy.sample(4)
    with pytest.raises(ValueError, match="y: class indices must lie in \\[0, 2\\)"):
        rt.toy.attack(net, px, torch.full_like(py, 2), 0.1)
    with pytest.raises(ValueError, match="y must be a tensor of 8 labels"):
        rt.toy.accuracy(net, px, py[:, None])
    with pytest.raises(ValueError, match="accuracies"):
        rt.attribution.curve_area([0.0, 0.5, 1.0], [98, 60, 10])
    assert rt.attribution.curve_area([0.0, 0.5, 1.0], [0.98, 0.6, 0.1]) == pytest.approx(0.57)
    with pytest.raises(TypeError, match="value"):
        rt.book.glue("acc", torch.rand(3))
    with pytest.raises(ValueError, match="rows"):
        rt.book.table([(1,)], ["a", "b"])


# ------------------------------------------------- every public function of a reader's module

# Modules that readers never call with data: tooling, the declarations' own machinery, spec
# builders and the training machinery's internals. Their public functions need no declaration.
EXEMPT_MODULES = (
    "reprtut.bench",        # benchmarks and the cost model (python -m reprtut.bench)
    # the model cache's machinery: writing a bundle (python -m reprtut.cache export),
    # checksums of its files, fetching from $REPRTUT_MODELS_URL (reprtut.cache.get is declared)
    "reprtut.cache.bundle", "reprtut.cache.files", "reprtut.cache.hub",
    "reprtut.declare",      # the declarations themselves
    "reprtut.validate",     # the checks the declarations call
    "reprtut.ledger",       # the book's record of what pages asked for
    "reprtut.site", "reprtut.solutions", "reprtut.teaching",  # building the site and the syllabus
    "reprtut.recipes",      # spec builders (tests/test_declared.py builds every one)
    "reprtut.profiles", "reprtut.progress", "reprtut.device",  # run settings, progress bars, devices
)

# Single functions of reader-facing modules, each with the reason it stays undeclared.
EXEMPT_FUNCTIONS = {
    # inner-loop helpers of the attacks and training objectives: called on every step, on
    # batches a checked caller has already checked (a check here would sync the device)
    "reprtut.attacks.core.check_inputs", "reprtut.attacks.core.cross_entropy_sum",
    "reprtut.attacks.core.margin", "reprtut.attacks.core.margin_loss_sum",
    "reprtut.attacks.core.input_gradient", "reprtut.attacks.gradient.check_budget",
    "reprtut.attacks.gradient.pgd_steps", "reprtut.attacks.iterative.kurakin_steps",
    "reprtut.attacks.iterative.least_likely_loss", "reprtut.attacks.norms.norm_of",
    "reprtut.attacks.norms.default_step_size", "reprtut.attacks.norms.steepest",
    "reprtut.attacks.norms.project", "reprtut.attacks.norms.random_start",
    "reprtut.methods.afd.discriminator_loss", "reprtut.methods.trades.kl_sum",
    "reprtut.methods.perceptual.reconstruction_error", "reprtut.data.random_crop_flip",
    # the losses of R's optimisations, called by pgd_steps on every step of representation's
    # invert / maximize / add_feature / accentuate (their checked callers check the batch)
    "reprtut.representation.distance_loss", "reprtut.representation.coordinate_loss",
    # what reads facts off a model, and the checks of a batch that the declarations use
    "reprtut.nn.frozen", "reprtut.nn.find_layer", "reprtut.nn.under", "reprtut.nn.num_classes",
    "reprtut.nn.input_channels", "reprtut.nn.check_batch",
    # a check of an exercise whose only parameter is the student's answer: a wrong answer is a
    # failed verdict with a hint, never an error (the other checks declare what the page passes)
    "reprtut.check.celeba_lambda",
    # a figure's per-image conversion, called once per image inside show_images and image_rows
    "reprtut.viz.to_numpy_image",
    # History.plot's body: a History (or any table with an "epoch" column), keys and an axis,
    # none of which a declaration describes without refusing what pages pass
    "reprtut.viz.plot_history",
    # builders registered by name and called through a ModelSpec, whose fields are checked
    # where the spec is written (reprtut.declare.check_keywords)
    "reprtut.models.mnist_cnn", "reprtut.models.resnet18", "reprtut.models.small_cnn",
    "reprtut.models.build", "reprtut.models.register", "reprtut.methods.base.register",
    "reprtut.methods.base.build", "reprtut.methods.base.accuracy_metric", "reprtut.attribution.mlp",
    "reprtut.methods.perceptual.feature_map", "reprtut.methods.perceptual.decoder",
    "reprtut.methods.perceptual.mlp_head", "reprtut.methods.perceptual.perceptual_mnist",
    "reprtut.methods.perceptual.perceptual_svhn", "reprtut.methods.perceptual.perceptual_celeba",
    "reprtut.methods.perceptual.balanced_lambda", "reprtut.methods.vaegan.vaegan",
    "reprtut.derived.compose", "reprtut.derived.balanced_indices",
    "reprtut.derived.attention_dataset", "reprtut.derived.transfer_family",
    # settings read from the environment: no arguments to declare
    "reprtut.data.home", "reprtut.data.download_timeout",
    # fit's own machinery: called once per run by fit (declared), with the TrainConfig it
    # checked and the overrides an Objective's param_groups give
    "reprtut.train.make_optimizer", "reprtut.train.make_schedule",
    # the model cache's internals, called by get (declared) on the ModelSpec it checked, whose
    # fields ModelSpec checks where it is written: file names, the seeded config, building and
    # copying weights, storing and verifying files, removing a killed writer's leftovers
    "reprtut.cache.cache_dir", "reprtut.cache.train_config", "reprtut.cache.build",
    "reprtut.cache.copy_weights", "reprtut.cache.path_of", "reprtut.cache.store",
    "reprtut.cache.verified_load", "reprtut.cache.clean_orphans",
}


def undeclared_public_functions(package=rt) -> list[str]:
    """Public functions (no leading underscore, defined in their module) of the package's
    reader-facing modules that are not declared with reprtut.declare.checked."""
    import importlib
    import inspect
    import pkgutil

    found = []
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.endswith(".__main__") or info.name.startswith(EXEMPT_MODULES):
            continue
        module = importlib.import_module(info.name)
        for name, fn in vars(module).items():
            qualname = f"{module.__name__}.{name}"
            if (name.startswith("_") or not inspect.isfunction(fn) or fn.__module__ != module.__name__
                    or qualname in EXEMPT_FUNCTIONS):
                continue
            if not callable(getattr(fn, "__declared__", None)):
                found.append(qualname)
    return found


def test_every_public_function_of_a_readers_module_is_declared():
    """A new public function of a reader-facing module fails here until it is declared (and
    so is in the generated catalogue), or exempted above with its reason."""
    missing = undeclared_public_functions()
    assert not missing, ("declare these with reprtut.declare.checked (or exempt them, with a "
                         "reason, in tests/test_declared.py): " + ", ".join(missing))


def test_the_exemptions_name_existing_undeclared_functions():
    """An exemption of a function that no longer exists, or is now declared, is dropped."""
    import importlib

    stale = []
    for qualname in sorted(EXEMPT_FUNCTIONS):
        module, name = qualname.rsplit(".", 1)
        fn = getattr(importlib.import_module(module), name, None)
        if fn is None or callable(getattr(fn, "__declared__", None)):
            stale.append(qualname)
    assert not stale, stale
