"""Chapter 4 (Engstrom et al., 2019): the representation tools and the science of robust R.

Two layers. The unit tests check invariants of every tool in reprtut.representation on a
small untrained network: shapes, the l2 ball and the [0, 1] box, that each optimisation moves
its objective the right way, agreement with direct computations, and ValueErrors for bad
input. The science tests train (or load from the model cache) the chapter's standard and
l2-robust CIFAR-10 models and the held-out judge, and check the paper's claims at CPU scale.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import convolve2d

import reprtut as rt
from reprtut import representation as rep
from reprtut.attacks import norm_of

TOL = 1e-5


@pytest.fixture
def net():
    """An untrained CIFAR-shaped Classifier with an 8-dimensional R, in eval mode."""
    torch.manual_seed(0)
    return rt.models.small_cnn("cifar10", width=2).eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 32, 32, generator=g)
    x[:2] = x[:2].round()  # pixels on the faces of the box
    return x


def _inside(x0, x, eps):
    assert x.shape == x0.shape and x.device == x0.device
    assert x.min() >= 0 and x.max() <= 1, "left the [0, 1] box"
    assert (norm_of(x - x0, "l2") <= eps + TOL).all(), "left the eps-ball"


# ------------------------------------------------------------------------------ R(x)

def test_representation_is_the_penultimate_layer_batch_independent(net, images):
    net.train()  # representation() must use eval mode (running statistics) and restore train
    r = rep.representation(net, images, batch_size=4)
    assert net.training
    net.eval()
    assert r.shape == (6, net.dim) and r.dtype == torch.float32
    torch.testing.assert_close(r, net.features(images).detach())
    torch.testing.assert_close(net.head(r), net(images).detach())
    torch.testing.assert_close(rep.representation(net, images[3:4]), r[3:4])


# ------------------------------------------------------------------------------ invert (eq. 5)

@pytest.mark.parametrize("eps", [0.3, 2.0, math.inf])
def test_invert_stays_in_ball_and_box_and_approaches_target(net, images, eps):
    x0, r_t = images[:3], rep.representation(net, images[3:])
    x = rep.invert(net, x0, r_t, eps=eps, steps=20, step_size=0.1)
    _inside(x0, x, eps)
    before = (rep.representation(net, x0) - r_t).norm(dim=1)
    after = (rep.representation(net, x) - r_t).norm(dim=1)
    assert (after < before).all()


def test_invert_own_representation_is_a_fixed_point(net, images):
    # The gradient of ||R(x) - R(x0)|| is 0 at x0: nothing moves.
    x = rep.invert(net, images, rep.representation(net, images), eps=1.0, steps=5, step_size=0.1)
    torch.testing.assert_close(x, images)


def test_invert_does_not_change_its_inputs(net, images):
    x0, r_t = images.clone(), rep.representation(net, images.flip(0))
    rep.invert(net, x0, r_t, eps=1.0, steps=3, step_size=0.1)
    assert torch.equal(x0, images)


# ------------------------------------------------------------------------------ maximize (eq. 4)

@pytest.mark.parametrize("eps", [0.5, math.inf])
def test_maximize_raises_its_coordinate_inside_ball_and_box(net, images, eps):
    i = torch.arange(6) % net.dim
    x = rep.maximize(net, images, i, eps=eps, steps=15, step_size=0.2)
    _inside(images, x, eps)
    before = rep.representation(net, images).gather(1, i[:, None])
    after = rep.representation(net, x).gather(1, i[:, None])
    assert (after > before).all()


def test_maximize_one_int_means_the_same_coordinate_for_all(net, images):
    a = rep.maximize(net, images, 3, eps=1.0, steps=4, step_size=0.2)
    b = rep.maximize(net, images, torch.full((6,), 3), eps=1.0, steps=4, step_size=0.2)
    torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------ add_feature (eq. 7)

def test_add_feature_rows_are_the_iterates_of_maximize(net, images):
    rows = rep.add_feature(net, images, 2, eps=1.0, steps=9, step_size=0.15, rows=3)
    assert rows.shape == (3, *images.shape)
    for r, steps in enumerate((3, 6, 9)):
        torch.testing.assert_close(rows[r], rep.maximize(net, images, 2, eps=1.0, steps=steps,
                                                         step_size=0.15))
        _inside(images, rows[r], 1.0)


# ------------------------------------------------------------------------------ eq. 8

def test_top_features_match_a_direct_ranking(net, images):
    idx, scores = rep.top_features(net, images, 3)
    r = net.features(images).detach()
    c = net.head(r).argmax(1)
    contrib = r * net.head.weight.detach()[c]                     # R(x)_i W_ic, (B, d)
    for b in range(len(images)):
        order = np.argsort(-contrib[b].numpy(), kind="stable")[:3]
        assert set(idx[b].tolist()) == set(order.tolist())
        torch.testing.assert_close(scores[b], contrib[b][idx[b]])
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    given = torch.zeros(6, dtype=torch.long)
    idx0, _ = rep.top_features(net, images, 3, c=given)
    assert torch.equal(idx0, (r * net.head.weight.detach()[0]).topk(3, dim=1).indices)


def test_accentuate_raises_the_top_features_inside_the_ball(net, images):
    x, idx = rep.accentuate(net, images, 2, eps=0.8, steps=10, step_size=0.2)
    _inside(images, x, 0.8)
    before = rep.representation(net, images).gather(1, idx).sum(1)
    after = rep.representation(net, x).gather(1, idx).sum(1)
    assert (after > before).all()


# ------------------------------------------------------------------------------ eq. 6

def test_blend_and_interpolate_shapes_and_endpoints(net, images):
    x1, x2 = images[:3], images[3:]
    mix = rep.blend(x1, x2, [0.0, 0.25, 1.0])
    assert mix.shape == (3, 3, 3, 32, 32)
    torch.testing.assert_close(mix[:, 0], x1)
    torch.testing.assert_close(mix[:, 1], 0.75 * x1 + 0.25 * x2)
    torch.testing.assert_close(mix[:, 2], x2)
    path = rep.interpolate(net, x1, x2, [0.0, 0.5, 1.0], eps=math.inf, steps=5, step_size=0.1)
    assert path.shape == (3, 3, 3, 32, 32) and path.min() >= 0 and path.max() <= 1
    # At the ends the seed already has the target representation: a fixed point.
    torch.testing.assert_close(path[:, 0], x1)
    torch.testing.assert_close(path[:, 2], x2)


# ------------------------------------------------------------------------------ seeds, targets, measures

def test_seeds_and_out_of_distribution_targets():
    g = torch.Generator().manual_seed(0)
    s = rep.noise(5, generator=g)
    assert s.shape == (5, 3, 32, 32) and s.min() >= 0 and s.max() <= 1
    assert abs(s.mean().item() - 0.5) < 0.02
    k = rep.kaleidoscope(4, generator=g)
    assert k.shape == (4, 3, 32, 32) and k.min() >= 0 and k.max() <= 1
    for sym in (k.flip(2), k.flip(3), k.transpose(2, 3)):
        torch.testing.assert_close(sym, k)
    digits = torch.rand(2, 1, 28, 28)
    p = rep.pad_to(digits)
    assert p.shape == (2, 3, 32, 32)
    torch.testing.assert_close(p[:, 1:2, 2:30, 2:30], digits)
    assert p[:, :, :2].abs().sum() == 0 and p[:, :, :, 30:].abs().sum() == 0


def _ssim_reference(a: np.ndarray, b: np.ndarray, window=7, sigma=1.5) -> float:
    """SSIM of two (C, H, W) images written out with scipy's 2-D convolution."""
    t = np.arange(window) - (window - 1) / 2
    g = np.exp(-t ** 2 / (2 * sigma ** 2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    vals = []
    for ca, cb in zip(a, b):
        f = lambda z: convolve2d(z, w, mode="valid")  # noqa: E731
        ma, mb = f(ca), f(cb)
        va, vb, cab = f(ca * ca) - ma ** 2, f(cb * cb) - mb ** 2, f(ca * cb) - ma * mb
        s = ((2 * ma * mb + 1e-4) * (2 * cab + 9e-4)) / ((ma ** 2 + mb ** 2 + 1e-4) * (va + vb + 9e-4))
        vals.append(s.mean())
    return float(np.mean(vals))


def test_ssim_agrees_with_a_reference_and_behaves(images):
    x, y = images[:3].double(), images[3:].double()
    got = rep.ssim(x, y)
    want = [_ssim_reference(x[i].numpy(), y[i].numpy()) for i in range(3)]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(rep.ssim(x, x), torch.ones(3, dtype=x.dtype))
    torch.testing.assert_close(rep.ssim(x, y), rep.ssim(y, x))
    g = torch.Generator().manual_seed(1)
    noisy = [(x + s * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1) for s in (0.05, 0.2)]
    assert (rep.ssim(x, noisy[0]) > rep.ssim(x, noisy[1])).all()


def test_saliency_is_the_loss_gradient(net, images):
    y = torch.arange(6) % 10
    g = rep.saliency(net, images, y)
    x = images.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(net(x), y, reduction="sum").backward()
    torch.testing.assert_close(g, x.grad)
    shown = rep.signed_image(g)
    assert shown.min() >= 0 and shown.max() <= 1
    torch.testing.assert_close(rep.signed_image(torch.zeros(1, 3, 4, 4)), torch.full((1, 3, 4, 4), 0.5))


def test_match_moves_x1_towards_x2s_representation_within_eps(net, images):
    x1, x2 = images[:3], images[3:]
    x1p, rho = rep.match(net, x1, x2, eps=0.5, steps=20)
    _inside(x1, x1p, 0.5)
    assert rho.shape == (3,) and (rho < 1).all() and (rho >= 0).all()
    r1, r2 = rep.representation(net, x1), rep.representation(net, x2)
    want = (rep.representation(net, x1p) - r2).norm(dim=1) / (r1 - r2).norm(dim=1)
    torch.testing.assert_close(rho, want)
    # the same optimisation as invert from x1 with the default step size 2.5 eps / steps
    torch.testing.assert_close(x1p, rep.invert(net, x1, r2, eps=0.5, steps=20, step_size=2.5 * 0.5 / 20))
    # a larger ball leaves less of the distance
    _, rho_large = rep.match(net, x1, x2, eps=4.0, steps=20)
    assert rho_large.mean() < rho.mean()


@pytest.mark.parametrize("kwargs, match", [
    ({"eps": 0.0}, "eps"), ({"eps": float("inf")}, "eps"), ({"steps": 0}, "steps"),
    ({"step_size": -1.0}, "step_size"),
])
def test_match_names_its_bad_arguments(net, images, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        rep.match(net, images[:3], images[3:], **{"eps": 0.5, "steps": 2, **kwargs})
    with pytest.raises(ValueError, match="x2 must have the shape of x1"):
        rep.match(net, images[:3], images[3:5], eps=0.5, steps=2)
    with pytest.raises(ValueError, match="x1"):
        rep.match(net, images[:3] * 2, images[3:], eps=0.5, steps=2)


def test_budget_scales_the_papers_settings():
    for tool in ("maximize", "invert", "interpolate", "add_feature", "accentuate"):
        b = rep.budget(tool)
        assert set(b) == {"eps", "steps", "step_size"} and b["steps"] >= 1 and b["step_size"] > 0
    assert rep.budget("accentuate")["eps"] == pytest.approx(40 * 32 / 224)


# ------------------------------------------------------------------------------ bad input

def test_bad_input_raises_value_errors_that_say_what_is_wrong(net, images):
    r = rep.representation(net, images)
    kw = {"eps": 1.0, "steps": 2, "step_size": 0.1}
    cases = [
        (lambda: rep.invert(net, images * 2, r, **kw), "[0, 1]"),
        (lambda: rep.invert(net, images[0], r[:1], **kw), "(B, C, H, W)"),
        (lambda: rep.invert(net, images, r[:, :3], **kw), "r_target"),
        (lambda: rep.invert(net, images, r, eps=0.0, steps=2, step_size=0.1), "eps"),
        (lambda: rep.invert(net, images, r, eps=-1.0, steps=2, step_size=0.1), "eps"),
        (lambda: rep.invert(net, images, r, eps=1.0, steps=0, step_size=0.1), "steps"),
        (lambda: rep.invert(net, images, r, eps=1.0, steps=2, step_size=0.0), "step_size"),
        (lambda: rep.invert(torch.nn.Linear(3, 3), images, r, **kw), "Classifier"),
        (lambda: rep.maximize(net, images, net.dim, **kw), "coordinates"),
        (lambda: rep.maximize(net, images, -1, **kw), "coordinates"),
        (lambda: rep.maximize(net, images, torch.arange(4), **kw), "one per image"),
        (lambda: rep.maximize(net, images, 0.5, **kw), "int"),
        (lambda: rep.add_feature(net, images, 0, eps=1.0, steps=5, step_size=0.1, rows=2), "rows"),
        (lambda: rep.top_features(net, images, 0), "k"),
        (lambda: rep.top_features(net, images, net.dim + 1), "k"),
        (lambda: rep.top_features(net, images, 2, c=torch.zeros(3, dtype=torch.long)), "class"),
        (lambda: rep.accentuate(net, images, 2, eps=math.nan, steps=2, step_size=0.1), "eps"),
        (lambda: rep.blend(images[:2], images[:3], [0.5]), "x2 must have the shape of x1"),
        (lambda: rep.blend(images, images, [0.5, 1.5]), "alphas"),
        (lambda: rep.interpolate(net, images, images - 1, [0.5], **kw), "x2"),
        (lambda: rep.extremes(r, net.dim, 2), "0 <= i < d"),
        (lambda: rep.pad_to(torch.rand(2, 2, 28, 28)), "(B, 1 or 3"),
        (lambda: rep.ssim(images, images[:, :, :5, :5]), "y must have the shape of x"),
        (lambda: rep.budget("dream"), "unknown tool"),
    ]
    for call, words in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert words in str(err.value), (words, str(err.value))


def test_pixel_distance_and_coarse_share():
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(3, 3, 32, 32, generator=g), torch.rand(3, 3, 32, 32, generator=g)
    torch.testing.assert_close(rep.pixel_distance(x, y), norm_of(x - y, "l2"))
    pooled = torch.nn.functional.avg_pool2d(x - y, 4).flatten(1).norm(dim=1)
    torch.testing.assert_close(rep.pixel_distance(x, y, pool=4), pooled)
    flat = torch.ones(2, 3, 32, 32) * torch.rand(2, 3, 1, 1, generator=g)  # one colour per image
    torch.testing.assert_close(rep.coarse_share(flat), torch.ones(2))
    checker = ((torch.arange(32)[:, None] + torch.arange(32)[None, :]) % 2 * 2 - 1).float()
    torch.testing.assert_close(rep.coarse_share(checker.expand(1, 3, 32, 32)), torch.zeros(1))
    share = rep.coarse_share(x - y)
    assert ((share > 0) & (share < 0.2)).all()  # white noise keeps about 1/16 of its energy
    with pytest.raises(ValueError, match="divisible"):
        rep.pixel_distance(x[:, :, :30], y[:, :, :30], pool=4)


# ------------------------------------------------------------------------------ the science
# The chapter's three CIFAR-10 models from the model cache (trained once per cache, shared
# with book/04_robust_representations.md). Each measurement is a function of a seed that picks
# the images, noise and coordinates; the margins below hold for seeds 0-4 (see each test),
# and the tests run seed 0.

SEED = 0


@pytest.fixture(scope="module")
def cifar():
    get = lambda spec: rt.cache.get(spec, device="cpu", progress=False).model  # noqa: E731
    test = rt.data.load("cifar10", "test")
    return {"standard": get(rt.recipes.cifar_standard()), "robust": get(rt.recipes.cifar_l2()),
            "judge": get(rt.recipes.cifar_judge()), "x": test.images("cpu"), "y": test.y}


def match_within_eps(cifar, seed: int, eps: float, n: int = 16, steps: int = 40) -> dict:
    """Mean remaining distance rho = ||R(x1') - R(x2)|| / ||R(x1) - R(x2)|| per model, for n
    random pairs and x1' within eps of x1 (section 2 of the paper)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(cifar["x"]), generator=g)
    x1, x2 = cifar["x"][perm[:n]], cifar["x"][perm[n:2 * n]]
    out = {}
    for name in ("standard", "robust"):
        x1p, rho = rep.match(cifar[name], x1, x2, eps=eps, steps=steps)
        _inside(x1, x1p, eps)
        out[name] = rho.mean().item()
    return out


def invert_from_noise(cifar, seed: int, n: int = 40) -> dict:
    """Per model: the R gap, the 8x8-thumbnail distance to the target as a fraction of the
    seed's, and the held-out judge's agreement with (and probability of) the target's label."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(cifar["x"]), generator=g)[:n]
    x_t, y_t = cifar["x"][idx], cifar["y"][idx]
    x0 = rep.noise(n, generator=g)
    out = {}
    for name in ("standard", "robust"):
        f = cifar[name]
        r_t = rep.representation(f, x_t)
        x = rep.invert(f, x0, r_t, **rep.budget("invert"))
        p = rt.evaluate.predict(cifar["judge"], x).softmax(1)
        out[name] = {
            "gap": ((rep.representation(f, x) - r_t).norm(dim=1) / r_t.norm(dim=1)).mean().item(),
            "thumb": (rep.pixel_distance(x, x_t, 4) / rep.pixel_distance(x0, x_t, 4)).mean().item(),
            "agree": (p.argmax(1) == y_t).float().mean().item(),
            "prob": p.gather(1, y_t[:, None]).mean().item()}
    return out


def maximize_coordinates(cifar, seed: int, n: int = 32) -> dict:
    """Per model, maximising n random coordinates from two noise seeds each: the mean l2
    distance moved and the mean cosine between the two changes made for one coordinate."""
    g = torch.Generator().manual_seed(seed)
    x0 = rep.noise(2 * n, generator=g)
    out = {}
    for name in ("standard", "robust"):
        f = cifar[name]
        i = torch.randperm(f.dim, generator=g)[:n].repeat(2)
        before = rep.representation(f, x0).gather(1, i[:, None])
        x = rep.maximize(f, x0, i, **rep.budget("maximize"))
        after = rep.representation(f, x).gather(1, i[:, None])
        d = (x - x0).flatten(1)
        out[name] = {"moved": d.norm(dim=1).mean().item(),
                     "cos": torch.cosine_similarity(d[:n], d[n:]).mean().item(),
                     "raised": (after > before).float().mean().item(),
                     "lowered": (after < before - 1e-4).any().item()}
    return out


@pytest.mark.slow
def test_standard_representation_is_matched_within_eps_robust_is_not(cifar):
    # Seeds 0-5: eps 0.5 -> standard 0.62-0.64, robust 0.90-0.92; eps 2 -> 0.20-0.22, 0.63-0.68.
    small = match_within_eps(cifar, SEED, eps=0.5)
    assert small["standard"] + 0.15 < small["robust"], small
    large = match_within_eps(cifar, SEED, eps=2.0)
    assert large["standard"] < 0.35 and large["robust"] > 0.5, large


@pytest.mark.slow
def test_inversion_from_noise_lands_closer_to_the_target_for_the_robust_model(cifar):
    # Seeds 0-5: both R gaps 0.06-0.09; thumbnail ratio standard 0.98-0.99, robust 0.84-0.91
    # (smallest gap 0.08); judge agreement standard 0.08-0.18, robust 0.33-0.55 (smallest gap
    # 0.18); judge probability 0.12-0.17, 0.31-0.42 (smallest gap 0.15).
    s = invert_from_noise(cifar, SEED)
    std, rob = s["standard"], s["robust"]
    assert std["gap"] < 0.2 and rob["gap"] < 0.2, s  # both optimisations matched R
    assert rob["thumb"] < std["thumb"] - 0.04, s
    assert rob["agree"] > std["agree"] + 0.1, s
    assert rob["prob"] > std["prob"] + 0.08, s


@pytest.mark.slow
def test_maximizing_a_robust_coordinate_changes_the_image_more_consistently(cifar):
    # Complete mirror, seeds 0-2: cosine standard 0.07-0.12, robust 0.21-0.35. How far the
    # image moves is not part of the claim: standard 4.7-6.8, robust 5.6-6.5, so neither model
    # moves it reliably further (chapter 4 reports it with intervals).
    s = maximize_coordinates(cifar, SEED)
    std, rob = s["standard"], s["robust"]
    # The ascent works for both: no coordinate goes down, and most go up (seeds 0-4: standard
    # 0.81-0.91, robust 0.66-0.84; the rest are zero around the noise seed, ReLU units with
    # no gradient to follow).
    assert not std["lowered"] and not rob["lowered"], s
    assert std["raised"] > 0.5 and rob["raised"] > 0.5, s
    assert rob["cos"] > std["cos"] + 0.07, s
