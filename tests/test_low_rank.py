"""Chapter 7 (Sanyal et al., 2018): the LR layer's projections and the science of low-rank
representations at CPU scale. The trained models are the chapter's (shared model cache);
each claim is also shown to fail on a broken variant."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

import reprtut as rt
from reprtut import low_rank_analysis as lra
from reprtut.attacks import deepfool, iter_fgsm
from reprtut.methods.base import register
from reprtut.methods.low_rank import LowRank, nystrom_project, svd_project
from reprtut.nn import capture


def _spsd(m: int = 256, r: int = 10, noise: float = 1e-3, seed: int = 0) -> torch.Tensor:
    return lra.spsd(m, r, noise, generator=torch.Generator().manual_seed(seed))


def _psd(W, tol=1e-6):
    """PSD up to float32 round-off, relative to the largest eigenvalue."""
    lam = torch.linalg.eigvalsh(W.double())
    return lam.min().item() >= -tol * lam.abs().max().item()


def _rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_spsd_has_the_spectrum_it_promises():
    W = _spsd(64, r=5, noise=1e-3)
    torch.testing.assert_close(W, W.T, atol=1e-5, rtol=0)
    lam = torch.linalg.eigvalsh(W.double()).flip(0)
    torch.testing.assert_close(lam[:5], torch.linspace(10, 1, 5, dtype=torch.float64), atol=1e-4, rtol=0)
    assert lam[5:].max() < 1e-3 and lam[5:].min() > -1e-4
    assert torch.equal(_spsd(64, 5, seed=1), _spsd(64, 5, seed=1)) and not torch.equal(_spsd(64, 5), _spsd(64, 5, seed=1))
    for kwargs, match in [({"m": 0}, r"\bm\b"), ({"m": 8, "r": 9}, r"\br\b"), ({"m": 16, "tail": -1.0}, "tail"),
                          ({"m": 16, "generator": 0}, "generator")]:
        with pytest.raises((ValueError, TypeError), match=match):
            lra.spsd(**kwargs)


def test_svd_projection_is_the_best_rank_r_matrix():
    W = _spsd()
    W_r = svd_project(W, 10)
    assert torch.linalg.matrix_rank(W_r, atol=1e-4).item() == 10
    assert _rel(W_r, W) < 1e-2


def test_nystrom_is_symmetric_psd_and_close_to_svd():
    torch.manual_seed(0)
    W = _spsd()
    W_n, W_s = nystrom_project(W, 10, t=3), svd_project(W, 10)
    assert torch.allclose(W_n, W_n.T, atol=1e-6)
    assert _psd(W_n)
    assert _rel(W_n, W_s) < 0.05
    # On a matrix that is not SPSD the output is still symmetric PSD (lemma 1 via smoothing).
    B = torch.randn(64, 64)
    W_b = nystrom_project(B + B.T, 5)
    assert _psd(W_b)


def test_nystrom_ensemble_is_cut_back_to_rank_r():
    """An average of t rank-r runs has rank up to t r; the truncated ensemble has rank r
    (the broken variant, truncate=False, keeps the larger rank and is caught)."""
    W = _spsd(noise=0.1)

    def rank(M):
        lam = torch.linalg.eigvalsh(M.double())
        return int((lam > 1e-4 * lam.max()).sum())

    torch.manual_seed(0)
    assert rank(nystrom_project(W, 10, t=3)) == 10
    torch.manual_seed(0)
    assert rank(nystrom_project(W, 10, t=3, truncate=False)) > 10


def test_nystrom_with_too_few_columns_is_not_close_to_svd():
    """Broken variant: l = r / 2 sampled columns cannot span the rank-r part."""
    torch.manual_seed(0)
    W = _spsd()
    assert _rel(nystrom_project(W, 10, l=5, t=3), svd_project(W, 10)) > 0.2


def test_lr_layer_keeps_activations_and_projects_w():
    model = rt.models.build("small_cnn", "cifar10", width=8).eval()
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 10, (16,))
    with torch.no_grad():
        before = model(x)
    obj = LowRank(model, layers=["features"], ranks=[3], lam1=1.0, lam2=0.1)
    opt = torch.optim.SGD(obj.parameters(), lr=0.01)

    def update(name, loss):
        opt.zero_grad()
        loss.backward()
        opt.step()

    with torch.no_grad(), capture(model, ["features"]) as cap:
        after = model(x)
    assert torch.allclose(after, before) and cap.outputs["features"].shape == (16, 32)  # virtual layer
    model.train()
    metrics = obj.step(x, y, update)
    assert set(metrics) >= {"loss", "L_c", "L_N", "acc"}
    W = obj.lr_layers[0].W.detach()
    assert torch.allclose(W, W.T) and torch.linalg.matrix_rank(W, atol=1e-5).item() <= 3
    with pytest.raises(ValueError, match="layer"):
        LowRank(model, layers=["nope"])
    with pytest.raises(ValueError, match="lam1"):
        LowRank(model, lam1=-1.0)


def test_each_lr_layer_has_its_own_lambdas():
    """2-LR weighs its layers apart: the loss is CE + sum_l (lam1_l L_c,l + lam2_l L_N,l)."""
    torch.manual_seed(0)
    model = rt.models.build("small_cnn", "cifar10", width=8)
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    layers = ["features.14", "features"]
    obj = LowRank(model, layers=layers, ranks=[4, 3], lam1=[0.5, 2.0], lam2=[0.25, 4.0])
    with capture(model, layers) as cap:
        ce = torch.nn.functional.cross_entropy(model(x), y)
    parts = [lr.losses(cap.outputs[n]) for n, lr in zip(layers, obj.lr_layers)]
    loss, _ = obj.loss(x, y)
    want = ce + 0.5 * parts[0][0] + 0.25 * parts[0][1] + 2.0 * parts[1][0] + 4.0 * parts[1][1]
    assert torch.allclose(loss, want)
    # One number is the weight of every layer, as before.
    assert LowRank(model, layers=layers, ranks=[4, 3], lam1=0.5).lam1 == [0.5, 0.5]
    with pytest.raises(ValueError, match="lam1 must be one number or one per layer"):
        LowRank(model, layers=layers, ranks=[4, 3], lam1=[0.5])
    with pytest.raises(ValueError, match="lam2"):
        LowRank(model, layers=layers, ranks=[4, 3], lam2=[0.5, -1.0])


def test_2lr_weighs_the_block_layer_by_its_scale():
    spec = rt.recipes.cifar_low_rank(0.03, 0.003, two=True, block_scale=0.0251)
    assert spec.method_kwargs["lam1"] == pytest.approx([0.03 * 0.025, 0.03])
    assert spec.method_kwargs["lam2"] == pytest.approx([0.003 * 0.025 ** 0.5, 0.003])
    assert rt.recipes.cifar_low_rank().method_kwargs["lam1"] == 0.03   # 1-LR: one layer, one number


def test_pretraining_switch_waits_for_the_target_accuracy():
    model = rt.models.build("small_cnn", "cifar10", width=8)
    obj = LowRank(model, pretrain_acc=0.99)
    loss, m = obj.loss(torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,)))
    assert m["lr_on"].item() == 0.0
    assert LowRank(model, pretrain_acc=0.0).lr_on.item() == 1.0


def test_median_fooling_rho_counts_only_the_examples_the_attack_fools(tiny_model):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 28, 28, generator=g)
    pred = rt.evaluate.predict(tiny_model, x).argmax(1)
    y = pred.clone()
    y[:4] = (pred[:4] + 1) % 10                              # 4 examples the model gets wrong
    x_adv = (x + 0.5 * torch.rand(x.shape, generator=g)).clamp(0, 1)
    x_adv[8:] = x[8:]                                        # these are not moved, hence not fooled
    fooled = (pred == y) & (rt.evaluate.predict(tiny_model, x_adv).argmax(1) != y)
    got = lra.median_fooling_rho(tiny_model, x, y, x_adv)
    if fooled.any():
        assert got == pytest.approx(lra.rho(x_adv, x)[fooled].median().item())
        # the unmoved and the misclassified examples would pull the median down (rho 0, or the
        # rho of a perturbation that fooled nothing)
        assert got != pytest.approx(lra.rho(x_adv, x).median().item())
    assert math.isnan(lra.median_fooling_rho(tiny_model, x, y, x))  # nothing fooled
    with pytest.raises(ValueError, match="x_adv"):
        lra.median_fooling_rho(tiny_model, x, y, x_adv[:3])
    with pytest.raises(ValueError, match=r"\by\b"):
        lra.median_fooling_rho(tiny_model, x, y[:3], x_adv)


def test_one_pass_gives_each_layer_what_its_own_pass_gives(tiny_model):
    x = torch.rand(7, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    inner = next(n for n, m in tiny_model.named_modules() if isinstance(m, torch.nn.Conv2d))
    both = lra.activations_at(tiny_model, x, ("features", inner), batch_size=3)  # 3 batches
    for layer in ("features", inner):
        assert torch.equal(both[layer], lra.activations(tiny_model, x, layer, batch_size=3))
    assert both[inner].shape[0] == 7 and both[inner].dtype == torch.float32
    for bad in ("features", (), ("features", 3)):
        with pytest.raises(ValueError, match="layers"):
            lra.activations_at(tiny_model, x, bad)
    with pytest.raises(ValueError, match="nope"):
        lra.activations_at(tiny_model, x, ("features", "nope"))


def test_appendix_a_relu_raises_the_rank():
    A = torch.tensor([[1.0, -1, 1], [-1, 1, -1]])
    assert torch.linalg.matrix_rank(A).item() == 1
    assert torch.linalg.matrix_rank(torch.relu(A)).item() == 2


# ------------------------------------------------------------------- trained models (cache)

@pytest.fixture(scope="module")
def cifar():
    test = rt.data.load("cifar10", "test", n=500)
    models = {name: rt.cache.get(spec, progress=False).model
              for name, spec in {"nlr": rt.recipes.cifar_low_rank(0.0, 0.0),
                                 "lr": rt.recipes.cifar_low_rank(),
                                 "strong": rt.recipes.cifar_low_rank(*rt.recipes.LOW_RANK_STRONG)}.items()}
    return models, test.images(), test.y


def _vr(model, x, k=3):
    return lra.variance_ratio(lra.activations(model, x))[:k]


def vr_claim(lr, nlr, x, y) -> bool:
    """Figure 1: at equal accuracy (3 points), LR raises VR_1..3 over N-LR (VR_1 by 0.015)."""
    same_acc = abs(rt.evaluate.accuracy(lr, x, y) - rt.evaluate.accuracy(nlr, x, y)) < 0.03
    vr_lr, vr_nlr = _vr(lr, x), _vr(nlr, x)
    return bool(same_acc and (vr_lr > vr_nlr + 0.005).all() and vr_lr[0] > vr_nlr[0] + 0.015)


def test_lr_raises_vr_k_at_equal_accuracy(cifar):
    models, x, y = cifar
    assert vr_claim(models["lr"], models["nlr"], x, y)


def _deepfool_rho(model, x, y):
    return lra.median_fooling_rho(model, x, y, rt.evaluate.perturb(model, x, y, deepfool, candidates=4))


def _ifgsm_rho(model, x, y):
    return lra.min_fooling_budget(model, x, y, iter_fgsm, [8 / 255, 16 / 255, 32 / 255],
                                  steps=10, step_size_of_eps=0.25)["rho"]


def rho_claim(lr, nlr, x, y) -> bool:
    """Table 3 / figure 2: LR needs larger perturbations, DeepFool's median rho by 10 % and
    Iter-FGSM's smallest fooling rho by 5 %."""
    x, y = x[:100], y[:100]
    return (_deepfool_rho(lr, x, y) > 1.1 * _deepfool_rho(nlr, x, y)
            and _ifgsm_rho(lr, x, y) > 1.05 * _ifgsm_rho(nlr, x, y))


def test_a_stronger_lr_term_needs_a_larger_rho(cifar):
    """The LR models need larger perturbations (DeepFool median rho and Iter-FGSM's table-3
    rho). At CPU scale this holds for the stronger lambda (LOW_RANK_STRONG, at a cost in
    accuracy), not for the recipe's: see chapter 7."""
    models, x, y = cifar
    assert rho_claim(models["strong"], models["nlr"], x, y)


@register("low_rank_detached")
class _DetachedLowRank(LowRank):
    """Broken variant: L_c and L_N see detached activations, so W still fits them but the
    network never feels the LR term (the bug of a hook that copies its input)."""

    def __init__(self, model, **kwargs):
        super().__init__(model, **kwargs)
        for lr in self.lr_layers:
            lr.losses = (lambda f: lambda a: f(a.detach()))(lr.losses)


@pytest.mark.slow
def test_vr_and_rho_claims_fail_when_the_lr_term_never_reaches_the_network(cifar):
    """The stronger-lambda LR model trained with the broken objective: neither claim holds
    (its network ends where the N-LR control's does, since only W learned)."""
    models, x, y = cifar
    spec = rt.recipes.cifar_low_rank(*rt.recipes.LOW_RANK_STRONG)
    broken = rt.cache.get(replace(spec, name="cifar-1lr-detached", method="low_rank_detached"),
                          progress=False).model
    assert not vr_claim(broken, models["nlr"], x, y)
    assert not rho_claim(broken, models["nlr"], x, y)


def _rises(curve):
    return max(b - a for a, b in zip(curve, curve[1:]))


def test_instantaneous_accuracy_can_rise_while_cumulative_cannot(cifar):
    models, x, y = cifar
    a_i, a_c = rt.evaluate.accuracy_over_iterations(models["lr"], x[:100], y[:100], eps=0.1, steps=20,
                                                    step_size=0.01, loss_fn=rt.attacks.least_likely_loss)
    assert _rises(a_c) <= 0
    assert _rises(a_i) > 0
    # The counterpart that does not rise: untargeted Iter-FGSM keeps pushing away from the
    # label, so an example it fooled stays fooled and a_I equals a_C.
    a_i, a_c = rt.evaluate.accuracy_over_iterations(models["lr"], x[:100], y[:100], eps=0.1, steps=20,
                                                    step_size=0.01)
    assert _rises(a_i) <= 0 and a_i == a_c


def test_paper_verdict_follows_the_intervals():
    from reprtut.stats import compare_proportions, paper_verdict
    assert paper_verdict(compare_proportions(0.9, 0.1, 100).order, "higher") == "agrees with the paper"
    assert paper_verdict(compare_proportions(0.1, 0.9, 100).order, "higher") == "does not agree with the paper"
    assert paper_verdict(compare_proportions(0.5, 0.45, 20).order, "higher").startswith("is inconclusive")
    with pytest.raises(ValueError, match="paper"):
        paper_verdict("higher", "tied")


def test_w_and_its_gradient_are_the_symmetrized_ones_exactly():
    """W = (W_s + W_s^T) / 2 by contiguous transposes: the same numbers as the plain
    expression, forward and backward (the fast path must not change a trained model)."""
    from reprtut.methods.low_rank import _Symmetrize
    torch.manual_seed(0)
    A = torch.randn(300, 300, requires_grad=True)
    B = A.detach().clone().requires_grad_()
    G = torch.randn(300, 300)
    ((A + A.T) / 2).backward(G)
    W = _Symmetrize.apply(B)
    W.backward(G)
    assert torch.equal(W, (A + A.T).detach() / 2) and torch.equal(B.grad, A.grad)
