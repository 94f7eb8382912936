"""Property-based tests of the public API's argument checks, in two halves.

1. Bad input is refused with a ``ValueError``/``TypeError`` that names the parameter: every
   case of the catalogue in ``tests/fuzz_report.py`` (which also counts how the first version
   of the package answered them), and values drawn by hypothesis around each boundary.
2. Valid edge input keeps each function's contract: a batch of one, eps = 0 (the input comes
   back unchanged), numpy and 0-d tensor numbers, a target class.

Tiny untrained models only: properties that hold for any model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fuzz_report as fz
import reprtut as rt
from reprtut import validate
from reprtut.attacks import norm_of

FAST = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
MODEL = fz.tiny_model()
K = 10

# The attacks with their smallest valid budgets; fixed-budget ones stay inside the eps-ball.
FIXED = {"fgsm": {}, "pgd": {"steps": 2}, "iter_fgsm": {"steps": 2}, "iter_ll_fgsm": {"steps": 2},
         "mim": {"steps": 2}, "square": {"steps": 5}}
MINIMAL = {"deepfool": {"steps": 2}, "cw_l2": {"steps": 2, "search_steps": 1}, "ddn": {"steps": 2}}
ALL = {**FIXED, **MINIMAL, "autoattack": {}}


def _norm(name):
    return "l2" if name in MINIMAL else "linf"


def _raises_naming(param, fn, *args, **kwargs):
    with pytest.raises((ValueError, TypeError)) as err:
        fn(*args, **kwargs)
    case = fz.Case("", "", param, "", lambda: None)
    assert fz.names(str(err.value), case), f"{param!r} not named in: {err.value}"
    return err.value


# ------------------------------------------------------------------------ 1. the catalogue

@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    return fz.all_cases(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("module", ["attacks", "evaluate", "representation", "masking", "data",
                                    "train", "methods", "cache"])
def test_every_bad_input_of_the_catalogue_gets_a_clear_error(catalogue, module, tmp_path, monkeypatch):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    cases = [c for c in catalogue if c.module == module]
    assert cases
    wrong = []
    for case in cases:
        kind, detail = fz.outcome(case, timeout=60)
        if kind != "clear":
            wrong.append(f"{kind}: {case.id}: {detail}")
    assert not wrong, "\n".join(wrong)


def test_the_classifier_of_outcomes_can_fail():
    """A check that lets bad input through, or names another parameter, is not counted clear."""
    assert fz.outcome(fz.Case("m", "f", "eps", "", lambda: 1.0)) == ("silent", "returned")
    kind, _ = fz.outcome(fz.Case("m", "f", "eps", "", lambda: validate.count(0, "steps", min=1)))
    assert kind == "obscure"
    kind, _ = fz.outcome(fz.Case("m", "f", "eps", "", lambda: torch.zeros(2) @ torch.zeros(3)))
    assert kind == "obscure"


# ------------------------------------------------------------------------ 1. drawn bad values

bad_reals = st.one_of(st.floats(max_value=-1e-12, allow_nan=False), st.just(math.nan),
                      st.just(math.inf), st.just(-math.inf), st.text(max_size=3), st.booleans(),
                      st.none())
bad_labels = st.integers(-2 ** 63, 2 ** 63 - 1).filter(lambda v: v < 0 or v >= K)  # int64 labels
bad_counts = st.one_of(st.integers(max_value=0), st.floats(allow_nan=True), st.text(max_size=2),
                       st.booleans())
attack_names = st.sampled_from(sorted(ALL))


def _xy(seed, b=2):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, 28, 28, generator=g), torch.randint(0, K, (b,), generator=g)


@FAST
@given(name=attack_names, eps=bad_reals, seed=st.integers(0, 2 ** 16))
def test_attacks_refuse_a_bad_eps(name, eps, seed):
    if eps is None and name in MINIMAL:
        return  # None means unbounded for minimum-perturbation attacks
    x, y = _xy(seed)
    _raises_naming("eps", rt.attacks.ATTACKS[name], MODEL, x, y, eps=eps, norm=_norm(name), **ALL[name])


@FAST
@given(name=attack_names, label=bad_labels, where=st.integers(0, 1), seed=st.integers(0, 2 ** 16))
def test_attacks_refuse_labels_outside_the_classes(name, label, where, seed):
    x, y = _xy(seed)
    y[where] = label
    eps = None if name in MINIMAL else 0.1
    _raises_naming("y", rt.attacks.ATTACKS[name], MODEL, x, y, eps=eps, norm=_norm(name), **ALL[name])


@FAST
@given(name=attack_names, value=st.one_of(st.floats(min_value=1.0001, max_value=1e6),
                                          st.floats(max_value=-1e-6, min_value=-1e6),
                                          st.just(math.nan), st.just(math.inf)),
       pixel=st.integers(0, 2 * 28 * 28 - 1), seed=st.integers(0, 2 ** 16))
def test_attacks_refuse_one_pixel_outside_the_box(name, value, pixel, seed):
    x, y = _xy(seed)
    x.view(-1)[pixel] = value
    eps = None if name in MINIMAL else 0.1
    _raises_naming("x", rt.attacks.ATTACKS[name], MODEL, x, y, eps=eps, norm=_norm(name), **ALL[name])


@FAST
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=5).filter(lambda s: len(s) != 4 or 0 in s))
def test_evaluation_refuses_batches_that_are_not_bchw_or_empty(shape):
    x = torch.rand(*shape) if shape else torch.tensor(0.5)
    y = torch.zeros(shape[0] if shape else 1, dtype=torch.long)
    _raises_naming("x", rt.evaluate.accuracy, MODEL, x, y)


@FAST
@given(name=st.sampled_from(["pgd", "iter_fgsm", "mim", "deepfool", "cw_l2", "ddn"]), steps=bad_counts)
def test_attacks_refuse_a_bad_number_of_steps(name, steps):
    x, y = _xy(0)
    eps = None if name in MINIMAL else 0.1
    _raises_naming("steps", rt.attacks.ATTACKS[name], MODEL, x, y, eps=eps, norm=_norm(name),
                   **{**ALL[name], "steps": steps})


@FAST
@given(field=st.sampled_from(["epochs", "batch_size", "seed"]), value=bad_counts)
def test_train_config_refuses_bad_counts(field, value):
    if field == "seed" and isinstance(value, int) and not isinstance(value, bool) and value == 0:
        return  # seed 0 is valid
    _raises_naming(field, rt.train.TrainConfig, **{field: value})


@FAST
@given(field=st.sampled_from(["lr", "weight_decay", "momentum"]), value=bad_reals.filter(lambda v: v is not None))
def test_train_config_refuses_bad_reals(field, value):
    _raises_naming(field, rt.train.TrainConfig, **{field: value})


@FAST
@given(param=st.sampled_from(["eps", "step_size"]), value=bad_reals.filter(lambda v: v is not None))
def test_pgd_training_refuses_bad_numbers(param, value):
    _raises_naming(param, rt.methods.build, "pgd", MODEL, **{"eps": 0.1, param: value})


@FAST
@given(n=st.one_of(st.integers(max_value=-1), st.floats(allow_nan=True), st.text(max_size=2)))
def test_load_refuses_a_bad_count(n):
    _raises_naming("n", rt.data.load, "mnist", "test", n=n)


@FAST
@given(eps=st.one_of(st.floats(max_value=0.0), st.just(math.nan), st.text(max_size=2)))
def test_representation_tools_refuse_a_bad_eps(eps):
    x, _ = _xy(0)
    _raises_naming("eps", rt.representation.maximize, MODEL, x, 0, eps=eps, steps=2, step_size=0.1)


# ------------------------------------------------------------------------ 2. valid edge input

@FAST
@given(name=attack_names, seed=st.integers(0, 2 ** 16),
       eps=st.sampled_from([0, 0.0, np.float32(0.0), np.float64(0.0), torch.tensor(0.0)]))
def test_eps_zero_returns_the_input_for_every_attack(name, seed, eps):
    x, y = _xy(seed)
    out = rt.attacks.ATTACKS[name](MODEL, x, y, eps=eps, norm=_norm(name), **ALL[name])
    assert torch.equal(out, x) and out.dtype == x.dtype


@FAST
@given(name=st.sampled_from(sorted({**FIXED, **MINIMAL})), seed=st.integers(0, 2 ** 16),
       eps=st.floats(0.01, 2.0))
def test_a_batch_of_one_keeps_the_contract(name, seed, eps):
    x, y = _xy(seed, b=1)
    norm = _norm(name)
    eps_np = np.float32(eps)  # numpy scalars are numbers like any other
    out = rt.attacks.ATTACKS[name](MODEL, x, y, eps=eps_np, norm=norm, **ALL[name])
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert 0 <= out.min() and out.max() <= 1
    assert norm_of(out - x, norm).item() <= float(eps_np) + 1e-5


@FAST
@given(name=st.sampled_from(["fgsm", "pgd", "iter_fgsm", "mim"]), seed=st.integers(0, 2 ** 16),
       steps=st.sampled_from([np.int64(3), 3, torch.tensor(3)]))
def test_targeted_attacks_stay_in_the_ball_and_accept_numpy_counts(name, seed, steps):
    x, _ = _xy(seed, b=3)
    target = torch.randint(0, K, (3,), generator=torch.Generator().manual_seed(seed + 1))
    kwargs = {} if name == "fgsm" else {"steps": steps}
    out = rt.attacks.ATTACKS[name](MODEL, x, target, eps=np.float32(0.2), targeted=True, **kwargs)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert (norm_of(out - x, "linf") <= 0.2 + 1e-6).all()


def test_targeted_pgd_lowers_the_loss_towards_the_target():
    x, _ = _xy(0, b=16)
    target = (MODEL(x).argmax(1) + 1) % K
    ce = torch.nn.functional.cross_entropy
    out = rt.attacks.pgd(MODEL, x, target, eps=0.3, steps=10, targeted=True, random_start=False)
    with torch.no_grad():
        assert ce(MODEL(out), target) < ce(MODEL(x), target)


@FAST
@given(seed=st.integers(0, 2 ** 16), b=st.integers(1, 5))
def test_accuracy_is_the_fraction_of_correct_labels(seed, b):
    x, y = _xy(seed, b)
    acc = rt.evaluate.accuracy(MODEL, x, y)
    with torch.no_grad():
        assert acc == pytest.approx((MODEL(x).argmax(1) == y).float().mean().item())


@FAST
@given(n=st.integers(0, 50))
def test_load_returns_exactly_n_examples(n):
    assert len(rt.data.load("mnist", "test", n=n)) == n
    assert len(rt.data.load("mnist", "test", n=np.int64(n))) == n


@FAST
@given(eps=st.one_of(st.floats(0.0, 1.0), st.just(np.float32(0.3))), steps=st.integers(1, 20),
       norm=st.sampled_from(["linf", "l2"]))
def test_pgd_training_accepts_valid_settings(eps, steps, norm):
    objective = rt.methods.build("pgd", MODEL, eps=eps, norm=norm, steps=steps)
    assert objective.threat.eps == pytest.approx(float(eps)) and objective.threat.steps == steps


def test_representation_tools_take_a_batch_of_one():
    x, _ = _xy(0, b=1)
    r = rt.representation.representation(MODEL, x)
    assert r.shape == (1, MODEL.dim)
    out = rt.representation.invert(MODEL, x, r, eps=np.float32(1.0), steps=2, step_size=0.1)
    assert out.shape == x.shape and torch.allclose(out, x, atol=1e-5), "own R is a fixed point"


def test_validate_accepts_numpy_and_tensor_numbers_and_refuses_nan():
    assert validate.real(np.float32(0.3), "eps", low=0.0) == pytest.approx(0.3)
    assert validate.real(torch.tensor(0.25), "eps", low=0.0) == 0.25
    assert validate.count(np.int64(4), "steps", min=1) == 4
    with pytest.raises(ValueError, match="eps must be a finite number with eps >= 0, got nan"):
        validate.real(math.nan, "eps", low=0.0)
    with pytest.raises(TypeError, match="steps must be an integer"):
        validate.count(2.0, "steps", min=1)
    err = _raises_naming("x", validate.images, torch.rand(2, 1, 4, 4).double())
    assert "x.float()" in str(err)
