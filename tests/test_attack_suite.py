"""The attack suite beyond FGSM and PGD l_inf/l_2 (those are in test_attacks.py): PGD l_1,
Iter-FGSM, Iter-LL-FGSM, MIM, DeepFool, C&W-l2, DDN, the AutoAttack and Square wrappers.

Three layers: properties that hold for any model (ball, box, eps = 0, targeted, bad input);
agreement with independent implementations (torchattacks, Foolbox) on the same trained MNIST
models, which would fail if an attack were weakened; and the oracle catching a broken step.
On the quick models and 200 test images every hand-written attack matched its oracle exactly
(same robust accuracy, same median ||delta||_2); the bounds below are the issue's 2 points
and 10 %, which leave room for other platforms' floating point. The "broken" tests show that
the same comparisons fail for an attack whose step is wrong.
"""

from __future__ import annotations

import math

import pytest
import torch
import torchattacks
from hypothesis import given, settings
from hypothesis import strategies as st

import reprtut as rt
from reprtut.attacks import (cw_l2, ddn, deepfool, iter_fgsm, iter_ll_fgsm, mim, norm_of, norms,
                             pgd)

fb = pytest.importorskip("foolbox", reason="the l1, DeepFool, C&W and DDN oracles come from Foolbox")

N_ORACLE = 200  # test images per fixed-budget oracle comparison
N_MINIMAL = 100  # test images per minimum-norm comparison (these attacks cost ~10 gradients a step)


def _inside(x, x_adv, eps, norm, tol=1e-4):
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype and x_adv.device == x.device
    assert x_adv.min() >= 0 and x_adv.max() <= 1, "left the [0, 1] box"
    assert (norm_of(x_adv - x, norm) <= eps * (1 + 1e-5) + tol).all(), "left the eps-ball"


def _batch(seed, n=12):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    x[: n // 3] = x[: n // 3].round()  # pixels already on the box's faces
    return x, torch.randint(0, 10, (n,), generator=g)


# Every attack of the suite with the arguments of a short run, per norm it supports.
FIXED = {
    "pgd": (pgd, {"steps": 3}, ["linf", "l2", "l1"]),
    "iter_fgsm": (iter_fgsm, {"steps": 3, "step_size": 0.05}, ["linf", "l2", "l1"]),
    "iter_ll_fgsm": (iter_ll_fgsm, {"steps": 3, "step_size": 0.05}, ["linf", "l2", "l1"]),
    "mim": (mim, {"steps": 3}, ["linf", "l2", "l1"]),
}
MINIMAL = {
    "deepfool": (deepfool, {"steps": 5}),
    "cw_l2": (cw_l2, {"steps": 5, "search_steps": 2}),
    "ddn": (ddn, {"steps": 5}),
}
EPS = {"linf": [0.01, 0.3, 1.0], "l2": [0.1, 2.0, 30.0], "l1": [1.0, 10.0, 800.0]}


# ------------------------------------------------------------------------------ properties

@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize("seed", range(3))
def test_fixed_budget_attacks_stay_in_ball_and_box(tiny_model, name, seed):
    attack, kwargs, supported = FIXED[name]
    x, y = _batch(seed)
    for norm in supported:
        eps = EPS[norm][seed]
        _inside(x, attack(tiny_model, x, y, eps=eps, norm=norm, **kwargs), eps, norm)


@pytest.mark.parametrize("name", MINIMAL)
@pytest.mark.parametrize("eps", [0.05, 1.0, 5.0])
def test_minimal_attacks_respect_a_given_eps(tiny_model, name, eps):
    attack, kwargs = MINIMAL[name]
    x, y = _batch(int(eps * 10))
    _inside(x, attack(tiny_model, x, y, eps=eps, **kwargs), eps, "l2")
    unbounded = attack(tiny_model, x, y, **kwargs)
    assert unbounded.min() >= 0 and unbounded.max() <= 1


@pytest.mark.parametrize("name", [*FIXED, *MINIMAL])
def test_eps_zero_returns_the_input_and_state_is_restored(tiny_model, name):
    attack, kwargs = (FIXED.get(name) or MINIMAL[name])[:2]
    x, y = _batch(7, n=1)  # a batch of one
    tiny_model.train()
    out = attack(tiny_model, x, y, eps=0.0, **kwargs)
    assert torch.equal(out, x)
    assert tiny_model.training and all(p.requires_grad for p in tiny_model.parameters())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), eps=st.floats(0.01, 50.0), scale=st.floats(0.01, 10.0))
def test_l1_projection_is_the_exact_euclidean_projection(seed, eps, scale):
    """Duchi et al.'s projection against a bisection on the soft threshold theta."""
    g = torch.Generator().manual_seed(seed)
    delta = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64) * scale
    p = norms.project(delta, eps, "l1")
    v = delta.flatten(1)
    for i in range(3):
        if v[i].abs().sum() <= eps:
            assert torch.equal(p[i].flatten(), v[i])
            continue
        lo, hi = 0.0, v[i].abs().max().item()
        for _ in range(200):
            theta = (lo + hi) / 2
            lo, hi = (theta, hi) if (v[i].abs() - theta).clamp_min(0).sum() > eps else (lo, theta)
        ref = v[i].sign() * (v[i].abs() - hi).clamp_min(0)
        assert torch.allclose(p[i].flatten(), ref, atol=1e-7 * max(1.0, scale))
        assert abs(p[i].abs().sum().item() - eps) < 1e-6 * eps


@pytest.mark.parametrize("seed", range(3))
def test_l1_step_is_sparse_unit_ascent_that_skips_pinned_pixels(seed):
    g = torch.Generator().manual_seed(seed)
    grad = torch.randn(4, 1, 28, 28, generator=g)
    x_adv = torch.rand(4, 1, 28, 28, generator=g).round()  # every pixel on a face of the box
    e = norms.steepest(grad, "l1", x_adv)
    assert torch.allclose(norm_of(e, "l1"), torch.ones(4))
    assert ((e != 0).flatten(1).sum(1) <= 8).all()  # the top 1 % of 784 coordinates
    assert ((e * grad).flatten(1).sum(1) > 0).all()  # an ascent direction
    assert not ((x_adv == 0) & (e < 0)).any() and not ((x_adv == 1) & (e > 0)).any()
    # the chosen coordinates are the largest movable |gradient| entries
    movable = grad.masked_fill(((x_adv == 0) & (grad < 0)) | ((x_adv == 1) & (grad > 0)), 0)
    kth = movable.abs().flatten(1).topk(8, dim=1).values[:, -1]
    assert ((e != 0).flatten(1) <= (movable.abs().flatten(1) >= kth[:, None])).all()


def test_l1_random_start_fills_the_ball():
    r = norms.random_start(torch.rand(500, 1, 4, 4), 3.0, "l1")
    size = norm_of(r, "l1")
    assert (size <= 3.0 + 1e-5).all()
    # uniform in a 16-dimensional ball: the radius is 3 U^(1/16), median 3 * 0.5^(1/16) = 2.87
    assert abs(size.median().item() - 3.0 * 0.5 ** (1 / 16)) < 0.05


@pytest.mark.parametrize("attack,kwargs,min_hit", [
    (pgd, {"eps": 40.0, "norm": "l1", "steps": 40}, 0.15),  # 24 % on the quick model
    (mim, {"eps": 0.2, "norm": "linf", "steps": 10}, 0.3),  # 41 %
    (iter_fgsm, {"eps": 0.2, "norm": "linf", "steps": 20, "step_size": 0.02}, 0.4),  # 59 %
    (cw_l2, {"steps": 50, "search_steps": 2, "step_size": 0.05, "c": 10.0}, 0.4),  # 64 %
    (ddn, {"steps": 60}, 0.8),  # 100 %
])
def test_targeted_attacks_raise_the_target_logit(mnist_standard, mnist_test, attack, kwargs, min_hit):
    """Every example an attack moves has a higher target logit, and enough reach the target.
    (C&W and DDN return the input where they found nothing: those examples do not move.)"""
    x, y = mnist_test[0][:100], mnist_test[1][:100]
    target = (y + 3) % 10
    x_adv = attack(mnist_standard, x, target, targeted=True, **kwargs)
    moved = (x_adv != x).flatten(1).any(1)
    before = rt.evaluate.predict(mnist_standard, x).gather(1, target[:, None]).squeeze(1)
    after = rt.evaluate.predict(mnist_standard, x_adv).gather(1, target[:, None]).squeeze(1)
    assert moved.float().mean() > 0.5
    assert (after > before)[moved].float().mean() > 0.95
    hit = (rt.evaluate.predict(mnist_standard, x_adv).argmax(1) == target).float().mean()
    assert hit > min_hit, f"only {hit:.0%} of images reached their target class"


def test_iter_ll_fgsm_pulls_towards_the_least_likely_class(mnist_standard, mnist_test):
    x, y = mnist_test[0][:100], mnist_test[1][:100]
    logits = rt.evaluate.predict(mnist_standard, x)
    y_ll = logits.argmin(1)
    x_adv = iter_ll_fgsm(mnist_standard, x, y, eps=0.3, steps=20, step_size=0.03,
                         recompute_target=False)
    rise = rt.evaluate.predict(mnist_standard, x_adv).gather(1, y_ll[:, None]) - logits.gather(1, y_ll[:, None])
    assert (rise > 0).float().mean() > 0.95


def test_early_stop_keeps_the_first_fooling_iterate(mnist_standard, mnist_test):
    """Iter-FGSM with early stopping moves fooled examples no further (Sanyal et al., D.2)."""
    x, y = mnist_test[0][:100], mnist_test[1][:100]
    kw = {"eps": 0.3, "steps": 40, "step_size": 0.01}
    stopped, full = iter_fgsm(mnist_standard, x, y, early_stop=True, **kw), iter_fgsm(mnist_standard, x, y, **kw)
    fooled = rt.evaluate.predict(mnist_standard, stopped).argmax(1) != y
    assert fooled.float().mean() > 0.9
    assert (norm_of(stopped - x, "l2")[fooled] < norm_of(full - x, "l2")[fooled]).float().mean() > 0.9


@pytest.mark.parametrize("attack,kwargs,match", [
    (pgd, {"eps": 1.0, "norm": "l1", "steps": 0}, "steps must be"),
    (mim, {"eps": 0.1, "decay": -1.0}, "decay must be"),
    (mim, {"eps": 0.1, "norm": "l3"}, "unknown norm"),
    (iter_ll_fgsm, {"eps": 0.1, "targeted": True}, "least-likely"),
    (iter_fgsm, {"eps": -0.1}, "eps must be"),
    (deepfool, {"norm": "linf"}, "l2 attack"),
    (deepfool, {"targeted": True}, "untargeted"),
    (deepfool, {"overshoot": -1.0}, "overshoot"),
    (cw_l2, {"steps": 0}, "steps must be"),
    (cw_l2, {"c": 0.0}, "c > 0"),
    (cw_l2, {"random_start": True}, "random_start"),
    (ddn, {"gamma": 1.5}, "gamma"),
    (ddn, {"eps": float("inf")}, "eps must be"),
    (rt.attacks.square, {"eps": 0.1, "norm": "l1"}, "linf' or 'l2"),
    (rt.attacks.autoattack, {"eps": 0.1, "targeted": True}, "untargeted"),
])
def test_bad_arguments_raise_clear_errors(tiny_model, attack, kwargs, match):
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=match):
        attack(tiny_model, x, y, **kwargs)


@pytest.mark.parametrize("name", [*FIXED, *MINIMAL])
def test_bad_images_raise_clear_errors(tiny_model, name):
    attack, kwargs = (FIXED.get(name) or MINIMAL[name])[:2]
    with pytest.raises(ValueError, match=r"pixels must lie in \[0, 1\]"):
        attack(tiny_model, torch.rand(2, 1, 28, 28) * 255, torch.tensor([0, 1]), eps=0.1, **kwargs)


# --------------------------------------------------------------------- oracle agreement

def _data(mnist_test, n=N_ORACLE):
    return mnist_test[0][:n], mnist_test[1][:n]


def _foolbox(model, attack, x, y, eps):
    with rt.attacks.frozen(model):
        _, clipped, _ = attack(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=eps)
    return clipped


def _median_norm(model, x, y, x_adv):
    """Median ||delta||_2 over the examples the model classifies correctly, counting an
    example the attack did not fool as inf. (Foolbox's C&W returns a black image where it
    failed, which usually is "adversarial": this median is insensitive to that as long as
    more than half of the examples are fooled, which the test checks.)"""
    same = lambda m, xx, yy, eps=None: x_adv  # noqa: E731  (already computed)
    res = rt.evaluate.min_perturbation(model, x, y, same)
    size = res.norm[res.norm > 0]
    assert (size.isfinite()).float().mean() > 0.6, "too few examples fooled to compare medians"
    return size.median().item()


# (name, ours, oracle) for each model; eps: 10 / 15 in l_1, 0.1 / 0.3 in l_inf.
def _fixed_pairs(eps1, eps_inf, weaken=1.0):
    a1, ainf = eps1 / 10 / weaken, eps_inf / 10 / weaken
    return {
        "pgd_l1": (lambda m, x, y: pgd(m, x, y, eps=eps1, norm="l1", steps=20, step_size=a1, random_start=False),
                   lambda m, x, y: _foolbox(m, fb.attacks.SparseL1DescentAttack(
                       steps=20, abs_stepsize=eps1 / 10, random_start=False), x, y, eps1)),
        "mim": (lambda m, x, y: mim(m, x, y, eps=eps_inf, steps=10, step_size=ainf),
                lambda m, x, y: torchattacks.MIFGSM(m, eps=eps_inf, alpha=eps_inf / 10, steps=10, decay=1.0)(x, y)),
        "iter_fgsm": (lambda m, x, y: iter_fgsm(m, x, y, eps=eps_inf, steps=20, step_size=ainf),
                      lambda m, x, y: torchattacks.BIM(m, eps=eps_inf, alpha=eps_inf / 10, steps=20)(x, y)),
        "iter_ll_fgsm": (lambda m, x, y: iter_ll_fgsm(m, x, y, eps=eps_inf, steps=20, step_size=ainf,
                                                      recompute_target=False),
                         lambda m, x, y: _ll_oracle(m, eps_inf)(x, y)),
    }


def _ll_oracle(model, eps):
    attack = torchattacks.BIM(model, eps=eps, alpha=eps / 10, steps=20)
    attack.set_mode_targeted_least_likely(1)  # Kurakin et al.'s target, fixed at x^0
    return attack


MODELS = [("standard", 10.0, 0.1), ("robust", 15.0, 0.3)]


@pytest.mark.parametrize("name", ["pgd_l1", "mim", "iter_fgsm", "iter_ll_fgsm"])
@pytest.mark.parametrize("which,eps1,eps_inf", MODELS)
def test_fixed_budget_attacks_agree_with_their_oracles(request, mnist_test, name, which, eps1, eps_inf):
    """Robust accuracy within 2 points of torchattacks (MIM, BIM, LL) or Foolbox (sparse l_1)."""
    model = request.getfixturevalue(f"mnist_{which}")
    x, y = _data(mnist_test)
    ours, oracle = _fixed_pairs(eps1, eps_inf)[name]
    a_ours = rt.evaluate.accuracy(model, ours(model, x, y), y)
    a_theirs = rt.evaluate.accuracy(model, oracle(model, x, y), y)
    if name != "iter_ll_fgsm":  # the least-likely target is a weak attack by design
        assert a_theirs < rt.evaluate.accuracy(model, x, y) - 0.1, "the attack must bite"
    assert abs(a_ours - a_theirs) <= 0.02, (a_ours, a_theirs)


@pytest.mark.parametrize("name", ["pgd_l1", "mim"])
def test_a_broken_step_size_is_caught_by_the_oracle(mnist_standard, mnist_test, name):
    """The agreement test can fail: the same attacks with a step size 10x too small."""
    x, y = _data(mnist_test)
    ours, oracle = _fixed_pairs(10.0, 0.1, weaken=10.0)[name]
    a_ours = rt.evaluate.accuracy(mnist_standard, ours(mnist_standard, x, y), y)
    a_theirs = rt.evaluate.accuracy(mnist_standard, oracle(mnist_standard, x, y), y)
    assert a_ours - a_theirs > 0.02, (a_ours, a_theirs)


MINIMAL_PAIRS = {
    "deepfool": (lambda m, x, y: deepfool(m, x, y, steps=50, overshoot=0.02),
                 lambda: fb.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02)),
    "ddn": (lambda m, x, y: ddn(m, x, y, steps=50),
            lambda: fb.attacks.DDNAttack(steps=50, init_epsilon=1.0, gamma=0.05)),
    "cw_l2": (lambda m, x, y: cw_l2(m, x, y, steps=50, search_steps=3, step_size=0.05, c=1.0),
              lambda: fb.attacks.L2CarliniWagnerAttack(binary_search_steps=3, steps=50, stepsize=0.05,
                                                       initial_const=1.0, abort_early=False)),
}


@pytest.mark.parametrize("name", MINIMAL_PAIRS)
@pytest.mark.parametrize("which", ["standard", "robust"])
def test_minimal_attacks_agree_with_foolbox(request, mnist_test, name, which):
    """Median ||delta||_2 within 10 % of Foolbox's implementation with the same settings."""
    model = request.getfixturevalue(f"mnist_{which}")
    x, y = _data(mnist_test, N_MINIMAL)
    ours, oracle = MINIMAL_PAIRS[name]
    m_ours = _median_norm(model, x, y, ours(model, x, y))
    m_theirs = _median_norm(model, x, y, _foolbox(model, oracle(), x, y, None))
    assert math.isfinite(m_theirs) and m_theirs > 0.5
    assert abs(m_ours / m_theirs - 1) <= 0.10, (m_ours, m_theirs)


def test_a_broken_deepfool_overshoot_is_caught_by_the_oracle(mnist_standard, mnist_test):
    """DeepFool whose steps are scaled by 2 (overshoot 1.0 instead of 0.02) finds perturbations
    about 50 % larger than the oracle's on the quick model; the 10 % bound catches it."""
    x, y = _data(mnist_test, N_MINIMAL)
    broken = _median_norm(mnist_standard, x, y, deepfool(mnist_standard, x, y, overshoot=1.0))
    oracle = _median_norm(mnist_standard, x, y, _foolbox(
        mnist_standard, MINIMAL_PAIRS["deepfool"][1](), x, y, None))
    assert broken / oracle - 1 > 0.10, (broken, oracle)


# ---------------------------------------------------------------- the library wrappers

def test_autoattack_is_at_least_as_strong_as_pgd(mnist_robust, mnist_test):
    x, y = mnist_test[0][:20], mnist_test[1][:20]  # AutoAttack's budget is per example: keep n small
    x_aa = rt.attacks.autoattack(mnist_robust, x, y, eps=0.3)
    _inside(x, x_aa, 0.3, "linf")
    a_aa = rt.evaluate.accuracy(mnist_robust, x_aa, y)
    a_pgd = rt.evaluate.robust_accuracy(mnist_robust, x, y, pgd, eps=0.3, steps=40)
    assert a_aa <= a_pgd + 1e-6, (a_aa, a_pgd)


@pytest.mark.parametrize("norm,eps", [("linf", 0.3), ("l2", 3.0)])
def test_square_fools_a_standard_model_without_gradients(mnist_standard, mnist_test, norm, eps):
    x, y = mnist_test[0][:100], mnist_test[1][:100]
    mnist_standard.train()
    x_sq = rt.attacks.square(mnist_standard, x, y, eps=eps, norm=norm, steps=300)
    assert mnist_standard.training  # restored
    mnist_standard.eval()
    _inside(x, x_sq, eps, norm)
    assert rt.evaluate.accuracy(mnist_standard, x_sq, y) < rt.evaluate.accuracy(mnist_standard, x, y) - 0.3
