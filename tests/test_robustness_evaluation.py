"""The evaluation toolkit (normalized AUC, minimum-perturbation statistics, white-box vs
black-box transfer, instantaneous vs cumulative accuracy) and the gradient-masking checklist,
on the trained MNIST models that chapters 1 and 2 share."""

from __future__ import annotations

import math

import pytest
import torch

import reprtut as rt
from reprtut import masking
from reprtut.attacks import ddn, iter_fgsm, pgd
from reprtut.evaluate import MinPerturbation, normalized_auc

N = 100  # test images per science check


@pytest.fixture(scope="module")
def data(mnist_test):
    return mnist_test[0][:N], mnist_test[1][:N]


# ------------------------------------------------------------------------- normalized AUC

def test_normalized_auc_of_known_curves():
    assert normalized_auc([0, 0.1, 0.3], [1, 1, 1]) == pytest.approx(1.0)
    assert normalized_auc([0, 0.5, 1.0], [1, 0.5, 0]) == pytest.approx(0.5)
    assert normalized_auc([0, 0.1, 0.3, 0.5], [1, 0.9, 0.1, 0.1]) == pytest.approx(0.43)
    # the units of eps do not matter: the same curve in 1/255 steps
    assert normalized_auc([0, 2, 8], [1, 0.6, 0.2]) == pytest.approx(normalized_auc([0, 2 / 255, 8 / 255], [1, 0.6, 0.2]))
    # a grid that starts above 0 is normalised by its own range
    assert normalized_auc([1, 2, 5], [0.5, 0.5, 0.5]) == pytest.approx(0.5)


@pytest.mark.parametrize("eps,acc,match", [
    ([0.1], [0.5], "eps_values must hold at least 2 numbers"),
    ([0, 0.1], [1.0], "accuracies must hold at least 2 numbers"),
    ([0, 0.1, 0.2], [1.0, 0.5], "one accuracy per eps, got 2 for 3 eps_values"),
    ([0, 0.3, 0.1], [1, 0.5, 0.2], "must increase"),
    ([0, 0.1], [1.0, 1.5], r"\[0, 1\]"),
])
def test_normalized_auc_rejects_bad_input(eps, acc, match):
    with pytest.raises(ValueError, match=match):
        normalized_auc(eps, acc)


# ------------------------------------------------------------- minimum-perturbation stats

def test_accuracy_from_minimum_norms():
    mp = MinPerturbation(norm=torch.tensor([0.0, 0.5, 1.0, math.inf]), rho=torch.zeros(4),
                         fooled=torch.tensor([True, True, True, False]))
    assert mp.accuracy_at([0, 0.75, 2.0]) == [0.75, 0.5, 0.25]
    s = mp.summary()
    assert s["success_rate"] == 0.75 and s["median_norm"] == pytest.approx(0.5)


def test_robust_model_needs_larger_minimum_perturbations(mnist_standard, mnist_robust, data):
    """DDN: the PGD-trained model's median ||delta||_2 is at least 1.3x the standard one's
    (1.7x on the quick models), and the curve at eps = 0 is the clean accuracy."""
    x, y = data
    res = {name: rt.evaluate.min_perturbation(m, x, y, ddn, steps=50)
           for name, m in (("standard", mnist_standard), ("robust", mnist_robust))}
    med = {k: v.summary()["median_norm"] for k, v in res.items()}
    assert med["robust"] > 1.3 * med["standard"], med
    for name, m in (("standard", mnist_standard), ("robust", mnist_robust)):
        assert res[name].accuracy_at([0.0])[0] == pytest.approx(rt.evaluate.accuracy(m, x, y))
        assert (res[name].rho * rt.attacks.norm_of(x, "l2") - res[name].norm).abs()[res[name].fooled].max() < 1e-4


def test_sweep_runs_minimum_perturbation_attacks_once_and_reads_the_curve_off(mnist_standard, data):
    x, y = data
    grid = [0, 1, 2, 5]
    curves = rt.evaluate.sweep(mnist_standard, x, y, {"DDN": (ddn, grid, {"steps": 20}),
                                                      "PGD-l2": (pgd, grid, {"norm": "l2", "steps": 5})})
    assert list(curves) == ["DDN", "PGD-l2"]
    for c in curves.values():
        assert c["eps"] == [0.0, 1.0, 2.0, 5.0] and len(c["accuracy"]) == len(grid)
        assert c["auc"] == pytest.approx(normalized_auc(grid, c["accuracy"]))
        assert c["accuracy"][0] == pytest.approx(rt.evaluate.accuracy(mnist_standard, x, y))
    mp = rt.evaluate.min_perturbation(mnist_standard, x, y, ddn, steps=20)  # deterministic
    assert curves["DDN"]["accuracy"] == mp.accuracy_at(grid)
    assert torch.equal(curves["DDN"]["min_perturbation"].norm, mp.norm)
    assert "min_perturbation" not in curves["PGD-l2"]
    # A DDN run once, unbounded, is not PGD: had sweep passed each eps to DDN (eps=0 returns x
    # unchanged), its curve would be flat at the clean accuracy.
    assert curves["DDN"]["accuracy"][-1] < curves["DDN"]["accuracy"][0] - 0.5


@pytest.mark.parametrize("attacks, match", [
    ({}, "attacks must be a non-empty dict"),
    ({"PGD": (pgd, [0, 0.1])}, r"attacks\['PGD'\] must be a tuple"),
    ({"PGD": ("pgd", [0, 0.1], {})}, "attack must be a function"),
    ({"PGD": (pgd, [0, -0.1], {})}, r"eps_values\[1\]"),
])
def test_sweep_rejects_bad_entries_before_attacking(tiny_model, attacks, match):
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([3, 7])
    with pytest.raises((ValueError, TypeError), match=match):
        rt.evaluate.sweep(tiny_model, x, y, attacks)


# --------------------------------------------------------- where the loss gradient points

def test_stroke_energy_share_of_known_gradients():
    x = torch.zeros(2, 1, 4, 4)
    x[:, :, 1:3, 1:3] = 0.8                                      # a 2x2 "stroke": 4 of 16 pixels
    on = (x > 0.1).float()
    assert rt.evaluate.stroke_energy_share(on * 3.0, x) == pytest.approx(1.0)
    assert rt.evaluate.stroke_energy_share(1 - on, x) == pytest.approx(0.0)
    assert rt.evaluate.stroke_energy_share(torch.ones_like(x), x) == pytest.approx(4 / 16)
    # the share is per image, then averaged; and the threshold decides what a stroke is
    g = torch.stack([on[0], torch.ones_like(x[0])])
    assert rt.evaluate.stroke_energy_share(g, x) == pytest.approx((1 + 4 / 16) / 2)
    assert rt.evaluate.stroke_energy_share(torch.ones_like(x), x, threshold=0.9) == 0.0


def test_robust_gradients_put_more_energy_on_the_strokes(mnist_standard, mnist_robust, data):
    x, y = data
    share = {name: rt.evaluate.stroke_energy_share(rt.representation.saliency(m, x, y), x)
             for name, m in (("standard", mnist_standard), ("robust", mnist_robust))}
    assert share["robust"] > share["standard"] + 0.2, share
    # Broken variant: the gradient of another image carries no information on x's strokes.
    g = rt.representation.saliency(mnist_robust, x, y)
    assert rt.evaluate.stroke_energy_share(g.roll(1, 0), x) < share["robust"] - 0.2, share


@pytest.mark.parametrize("grad, x, threshold, match", [
    (torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 5), 0.1, r"grad must have the shape of x \(2, 1, 4, 5\)"),
    (torch.ones(2, 1, 4, 4, dtype=torch.int64), torch.zeros(2, 1, 4, 4), 0.1, "grad must be"),
    ("grad", torch.zeros(2, 1, 4, 4), 0.1, "grad must be"),
    (torch.ones(2, 1, 4, 4), torch.full((2, 1, 4, 4), 2.0), 0.1, "x"),
    (torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), 1.0, "threshold"),
    (torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), "0.1", "threshold"),
])
def test_stroke_energy_share_names_its_bad_arguments(grad, x, threshold, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rt.evaluate.stroke_energy_share(grad, x, threshold)


# ------------------------------------------------------------------ white box, black box

def test_transfer_from_a_standard_surrogate_is_weaker(mnist_standard, mnist_robust, data):
    x, y = data
    r = rt.evaluate.transfer(mnist_robust, mnist_standard, x, y, pgd, eps=0.3, steps=10)
    assert r["white_box"] < r["clean"] - 0.1
    assert r["black_box"] > r["white_box"] + 0.1, r


# ------------------------------------------------------------ accuracy over the iterations

def test_instantaneous_and_cumulative_accuracy_match_their_definitions(mnist_standard, data):
    """a_C(k) and a_I(k) against two direct runs: with early stopping (the first fooling
    iterate is kept, so the result is fooled iff some iterate was) and without (last iterate)."""
    x, y = data
    kw = {"eps": 0.15, "steps": 10, "step_size": 0.02}
    inst, cum = rt.evaluate.accuracy_over_iterations(mnist_standard, x, y, **kw)
    assert len(inst) == len(cum) == 11 and inst[0] == cum[0] == 1.0
    assert all(b <= a for a, b in zip(cum, cum[1:])) and all(c <= i for c, i in zip(cum, inst))
    pred0 = rt.evaluate.predict(mnist_standard, x).argmax(1)
    assert torch.equal(pred0, y), "the identities below need y_a(x; 0) = y"
    same = lambda x_adv: (rt.evaluate.predict(mnist_standard, x_adv).argmax(1) == pred0).float().mean().item()  # noqa: E731
    assert inst[-1] == pytest.approx(same(iter_fgsm(mnist_standard, x, y, **kw)))
    assert cum[-1] == pytest.approx(same(iter_fgsm(mnist_standard, x, y, early_stop=True, **kw)))
    assert cum[-1] < 0.8  # the attack bites


# ------------------------------------------------------------------- gradient masking

def test_saturated_logits_keep_predictions_and_kill_gradients(mnist_standard, data):
    x, y = data
    masked = masking.SaturatedLogits(mnist_standard)
    assert torch.equal(rt.evaluate.predict(masked, x).argmax(1), rt.evaluate.predict(mnist_standard, x).argmax(1))
    grad, _ = rt.attacks.input_gradient(masked.eval(), x, y)
    assert (grad.flatten(1).abs().sum(1) == 0).float().mean() > 0.8


def test_checklist_flags_a_masked_model_and_passes_a_robust_one(mnist_standard, mnist_robust, data):
    x, y = data
    kw = {"eps": 0.3, "large_eps": 0.5, "steps": 10, "queries": 300}
    robust = {c.name: c for c in masking.checklist(mnist_robust, x, y, surrogate=mnist_standard, **kw)}
    masked = {c.name: c for c in masking.checklist(masking.SaturatedLogits(mnist_standard), x, y,
                                                   surrogate=mnist_robust, **kw)}
    assert len(robust) == len(masked) == 5
    for name in ("black-box weaker than white-box", "gradient-free weaker than gradient",
                 "accuracy -> 0 as eps grows"):
        assert not masked[name].passed, masked[name]
    for name in ("black-box weaker than white-box", "gradient-free weaker than gradient",
                 "iterative >= single-step", "accuracy -> 0 as eps grows"):
        assert robust[name].passed, robust[name]


def test_softmax_saturation_flags_saturated_logits_and_passes_a_robust_model(mnist_standard, mnist_robust, data):
    x, y = data
    kw = {"eps": 0.3, "steps": 10, "n": 50, "square_n": 10, "queries": 100, "autoattack_n": 0}
    masked = masking.softmax_saturation(masking.SaturatedLogits(mnist_standard), x, y, **kw)
    robust = masking.softmax_saturation(mnist_robust, x, y, **kw)
    assert not masked.passed, masked
    assert masked.values["PGD (CE)"] > masked.values["PGD (margin)"] + 0.5, masked
    assert masked.values["logit margin"] > 100 * robust.values["logit margin"] > 0, (masked, robust)
    assert robust.passed, robust
    assert set(robust.values) == {"logit margin", "PGD (CE)", "PGD (margin)", "Square"}
    z = rt.evaluate.predict(mnist_robust, x).topk(2, 1).values
    assert robust.values["logit margin"] == pytest.approx((z[:, 0] - z[:, 1]).median().item())
    assert "Square" not in masking.softmax_saturation(mnist_robust, x, y, eps=0.3, steps=2, n=5).values


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": -0.1}, "eps"), ({"steps": 0}, "steps"), ({"n": 0}, r"\bn\b"), ({"n": 3}, r"\bn\b"),
    ({"square_n": 3}, "square_n"), ({"autoattack_n": -1}, "autoattack_n"), ({"queries": 0}, "queries"),
    ({"tol": float("nan")}, "tol"), ({"norm": "l3"}, "norm"),
])
def test_softmax_saturation_names_its_bad_arguments(tiny_model, kwargs, match):
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([3, 7])
    with pytest.raises((ValueError, TypeError), match=match):
        masking.softmax_saturation(tiny_model, x, y, **{"eps": 0.1, "steps": 2, **kwargs})


def test_worst_case_over_restarts_is_no_better_than_one_run(mnist_robust, data):
    x, y = data
    torch.manual_seed(0)
    one = masking.worst_case_accuracy(mnist_robust, x, y, pgd, restarts=1, eps=0.3, steps=5)
    torch.manual_seed(0)
    three = masking.worst_case_accuracy(mnist_robust, x, y, pgd, restarts=3, eps=0.3, steps=5)
    assert three <= one
