"""Chapter 5 (Kim, Seo & Jeon, 2019): adversarial robustness and gradient interpretability.

The science at CPU scale, each claim next to a broken variant on which it must not hold:
d_π of adversarial examples shrinks with adversarial training and its ε; the toy's boundary
tilt shrinks with ε; μ_ROAR of g_G is larger for an adversarially trained model; a
correlation over three models never passes the chapter's permutation criterion for the
accuracy–interpretability trade-off (with the paper's budgets in the book's units the trade-off
over six models is a verdict of the page, not a test). The models are the chapter's cached
recipes.
"""

from __future__ import annotations

import pytest
import torch
from scipy import stats

import reprtut as rt
from reprtut import attribution as at
from reprtut import manifold, toy
from reprtut.attacks import margin_loss_sum

R = rt.recipes


@pytest.fixture(scope="module")
def mnist_test():
    test = rt.data.load("mnist", "test")
    return test.images("cpu"), test.y


def _model(spec):
    return rt.cache.get(spec, progress=False, device="cpu").model


# ------------------------------------------------------------------ package invariants

def test_captum_maps_match_the_hand_written_ones(mnist_test):
    x, y = mnist_test[0][:16], mnist_test[1][:16]
    torch.manual_seed(0)
    model = rt.models.build("mnist_cnn", "mnist", width=4, hidden=16).eval()
    for method in ("G", "GX"):
        ours = at.attribute(model, x, y, method)
        theirs = at.attribute(model, x, y, method, backend="captum")
        assert torch.allclose(ours, theirs, atol=1e-6, rtol=1e-4), method
    # GX is the gradient times the image in the paper's [-1, 1] range: zero at mid-grey.
    g = at.attribute(model, x, y, "G")
    assert torch.allclose(at.attribute(model, x, y, "GX"), (2 * x - 1) * g / 2)
    # Gpred is g_G at the model's own label: y does not enter it.
    y_hat = model(x).argmax(1)
    assert torch.equal(at.attribute(model, x, y, "Gpred"), at.attribute(model, x, y_hat, "G"))
    assert torch.equal(at.attribute(model, x, y, "Gpred"), at.attribute(model, x, (y + 1) % 10, "Gpred"))
    assert not torch.allclose(at.attribute(model, x, y, "Gpred"), g), "the labels differ somewhere"


def test_occlude_replaces_the_most_or_least_important_pixels():
    x = torch.full((1, 1, 2, 2), 9.0)
    score = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
    assert at.occlude(x, score, 0.25, "roar").flatten().tolist() == [0, 9, 9, 9]
    assert at.occlude(x, score, 0.5, "kar", fill=1.0).flatten().tolist() == [9, 9, 1, 1]
    # A per-pixel fill (C, H, W): each replaced pixel takes its own value.
    image = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert at.occlude(x, score, 0.5, "roar", fill=image).flatten().tolist() == [1, 2, 9, 9]
    with pytest.raises(ValueError, match="fill"):
        at.occlude(x, score, 0.5, "roar", fill=torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="fraction"):
        at.occlude(x, score, 1.5)


def test_scores_are_areas_relative_to_the_random_baseline():
    f = (0.1, 0.5, 0.9)
    mu = at.scores(f, {"rand": [0.9, 0.8, 0.5], "G": [0.8, 0.6, 0.1]},
                   {"rand": [0.9, 0.8, 0.5], "G": [0.9, 0.9, 0.9]})
    # trapezoids over [0.1, 0.9], divided by 0.8: mean accuracies 0.75 (rand), 0.525 (G)
    assert mu["roar"]["G"] == pytest.approx(0.225)
    assert mu["kar"]["G"] == pytest.approx(0.15)


def test_cw_margin_and_pgd_loss_option_keep_old_cache_keys():
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0]])
    assert margin_loss_sum(logits, torch.tensor([0, 2])).item() == pytest.approx(-1.0 + 2.0)
    assert "loss" not in R.mnist_pgd().method_kwargs  # defaults unchanged: same keys
    assert "loss" not in R.interp_mnist("l2", 1.0).method_kwargs
    assert R.interp_mnist("l2", 1.0, loss="margin").method_kwargs["loss"] == "margin"
    with pytest.raises(ValueError, match="loss"):
        rt.methods.build("pgd", rt.models.build("mnist_cnn", "mnist", width=2, hidden=4),
                         eps=1.0, loss="hinge")


def test_vaegan_objective_has_three_optimizers_and_projects_to_images():
    vae = rt.models.build("vaegan", "mnist", zdim=3, width=4, hidden=8)
    obj = rt.methods.build("vaegan", vae)
    assert set(obj.param_groups()) == {"encoder", "decoder", "discriminator"}
    x = torch.rand(5, 1, 28, 28)
    p = manifold.project(vae, x)
    assert p.shape == x.shape and 0 <= p.min() and p.max() <= 1
    # CIFAR-10's VAE-GAN: 32x32 colour images, Miyato et al.'s decoder and SN discriminator.
    vae = rt.models.build("vaegan", "cifar10", zdim=6, width=4)
    obj = rt.methods.build("vaegan", vae, lr=2e-4, betas=(0.0, 0.9), n_critic=3)
    calls = []
    obj.step(torch.rand(4, 3, 32, 32), torch.zeros(4, dtype=torch.long),
             lambda name, loss: calls.append((name, loss.isfinite().item())))
    assert calls == [("encoder", True), ("decoder", True)] + [("discriminator", True)] * 3
    x = torch.rand(5, 3, 32, 32)
    assert manifold.project(vae, x).shape == x.shape and manifold.distance(vae, x).shape == (5,)
    with pytest.raises(ValueError, match="28x28 or 32x32"):
        rt.models.build("vaegan", "celeba")
    with pytest.raises(ValueError, match="n_critic"):
        rt.methods.build("vaegan", vae, n_critic=0)


# ------------------------------------------------------------------ the paper's claims

@pytest.mark.slow
def test_adversarial_examples_of_robust_models_lie_closer_to_the_manifold(mnist_test):
    """Section 2.1 / Figure 1: at matched perturbation length (mean d_π / ||δ|| of the l2
    adversarial examples, budget 6 on [0, 1] images), the examples of an adversarially
    trained model lie closer to the manifold, and closer still for a larger training eps."""
    x, y = mnist_test[0][:200], mnist_test[1][:200]
    vae = _model(R.vaegan_mnist())
    small, large = R.interp_eps("l2")[0], R.interp_eps("l2")[-1]
    # Broken variant: the same VAE-GAN untrained, a projection that knows no manifold.
    untrained = rt.cache.build(R.vaegan_mnist()).model.eval()
    ratio, ratio_broken = {}, {}
    for name, spec in (("standard", R.interp_mnist()), ("small", R.interp_mnist("l2", small)),
                       ("large", R.interp_mnist("l2", large))):
        model = _model(spec)
        d, x_adv = manifold.adversarial_distances(model, vae, x, y, steps=20)
        delta = manifold.fooled_perturbations(model, x, x_adv, y)
        ratio[name] = (d / delta).mean().item()
        fooled = model(x_adv).argmax(1) != y
        ratio_broken[name] = (manifold.distance(untrained, x_adv[fooled]) / delta).mean().item()
    ordered = lambda m: m["standard"] > 1.02 * m["small"] > 1.02 * 1.02 * m["large"]  # noqa: E731
    assert ordered(ratio), ratio
    assert not ordered(ratio_broken), ratio_broken


def test_toy_tilt_shrinks_with_training_eps():
    """Section 2.2 / Figure 3: the boundary's normal turns towards the clouds' long axis."""
    x_test, _ = toy.sample(seed=1)
    tilt = {eps: toy.tilt(toy.train(eps), x_test).median().item() for eps in (0.0, 0.25, 0.5)}
    assert tilt[0.0] > 60 and tilt[0.0] > tilt[0.25] + 10 > tilt[0.5] + 15, tilt


def test_toy_tilt_does_not_shrink_without_the_adversary(monkeypatch):
    """Broken variant: an "attack" that returns the points unchanged leaves the tilt."""
    monkeypatch.setattr(toy, "_pgd", lambda model, x, y, eps, steps: x)
    x_test, _ = toy.sample(seed=1)
    tilt = {eps: toy.tilt(toy.train(eps), x_test).median().item() for eps in (0.0, 0.5)}
    assert not tilt[0.0] > tilt[0.5] + 15, tilt


def _mu(spec, methods=("G",)):
    curves = at.roar_kar(spec, R.roar_classifier(), R.roar_fractions(), methods,
                         fill=R.roar_fill())
    return at.scores(R.roar_fractions(), curves["roar"], curves["kar"])


def _roar_gain(spec) -> float:
    """μ_ROAR of g_G for ``spec``'s model minus the standard model's (black fill)."""
    return _mu(spec)["roar"]["G"] - _mu(R.interp_mnist())["roar"]["G"]


@pytest.mark.slow
def test_roar_of_the_loss_gradient_is_higher_for_adversarial_training():
    """Section 3.2 / Figure 4: removing the pixels g_G ranks first hurts a retrained classifier
    more when g_G comes from an adversarially trained model."""
    assert _roar_gain(R.interp_mnist("l2", R.interp_eps("l2")[-1])) > 0.03


@pytest.mark.slow
def test_roar_gain_needs_the_adversary():
    """Broken variant: the same PGD training with the adversary's budget cut a hundredfold
    (practically no adversary) must not show the gain."""
    broken = R.interp_mnist("l2", R.interp_eps("l2")[-1] / 100)
    assert not _roar_gain(broken) > 0.03


def _trade_off(acc, mu) -> bool:
    """The chapter's criterion for Figure 5's trade-off: Spearman's ρ < -0.5 with a one-sided
    permutation p-value below 0.05 (exact over the pairings of a handful of models)."""
    rho, p = rt.stats.spearman_test(acc, mu, alternative="less")
    return rho < -0.5 and p < 0.05


def test_the_trade_off_criterion_needs_more_than_three_models():
    """Broken variant of the evidence: a perfectly anti-ordered ladder of three models (one norm,
    Figure 4's points) cannot pass, since the smallest exact p over 3! pairings is 1/6; the
    asymptotic p-value of ``spearmanr`` (0 for ρ = -1) would let it through."""
    acc, mu = [0.99, 0.97, 0.95], [0.01, 0.05, 0.09]
    assert stats.spearmanr(acc, mu)[1] < 0.05  # what the broken, asymptotic test would accept
    assert not _trade_off(acc, mu)
    assert _trade_off(acc + [0.93, 0.91, 0.89], mu + [0.10, 0.12, 0.15])  # six models: p = 1/720
