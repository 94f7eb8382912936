"""FGSM and PGD (l_inf, l_2): constraints, edge cases, strength, bad input, and agreement with
torchattacks, an independent implementation, on the same trained models."""

from __future__ import annotations

import re

import pytest
import torch
import torchattacks

import reprtut as rt
from reprtut.attacks import fgsm, norm_of, pgd

NORMS = ["linf", "l2"]


def _inside(x, x_adv, eps, norm, tol=1e-5):
    assert x_adv.shape == x.shape and x_adv.device == x.device
    assert x_adv.min() >= 0 and x_adv.max() <= 1, "left the [0, 1] box"
    assert (norm_of(x_adv - x, norm) <= eps + tol).all(), "left the eps-ball"


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("seed", range(4))
def test_outputs_stay_in_ball_and_box(tiny_model, norm, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(16, 1, 28, 28, generator=g)
    x[:4] = x[:4].round()  # pixels already at the box's faces
    y = torch.randint(0, 10, (16,), generator=g)
    eps = {"linf": [0.01, 0.3, 1.0], "l2": [0.1, 2.0, 30.0]}[norm][seed % 3]
    for attack in (fgsm, pgd):
        _inside(x, attack(tiny_model, x, y, eps=eps, norm=norm), eps, norm)
    _inside(x, pgd(tiny_model, x, y, eps=eps, norm=norm, steps=3, random_start=False), eps, norm)


@pytest.mark.parametrize("norm", NORMS)
def test_eps_zero_returns_input_and_batch_of_one_works(tiny_model, norm):
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    for attack in (fgsm, pgd):
        assert torch.equal(attack(tiny_model, x, y, eps=0.0, norm=norm), x)
    x_adv = pgd(tiny_model, x[:1], y[:1], eps=0.1, norm=norm, steps=2)
    assert x_adv.shape == (1, 1, 28, 28)


def test_model_state_is_restored(tiny_model):
    tiny_model.train()
    pgd(tiny_model, torch.rand(2, 1, 28, 28), torch.tensor([0, 1]), eps=0.1, steps=2)
    assert tiny_model.training and all(p.requires_grad for p in tiny_model.parameters())


@pytest.mark.parametrize("norm,eps", [("linf", 0.2), ("l2", 3.0)])
def test_targeted_pgd_raises_the_target_logit(mnist_standard, mnist_test, norm, eps):
    x, y = mnist_test[0][:200], mnist_test[1][:200]
    target = (y + 1) % 10
    x_adv = pgd(mnist_standard, x, target, eps=eps, norm=norm, steps=20, targeted=True)
    before = rt.evaluate.predict(mnist_standard, x).gather(1, target[:, None])
    after = rt.evaluate.predict(mnist_standard, x_adv).gather(1, target[:, None])
    assert (after > before).float().mean() > 0.95
    hit = (rt.evaluate.predict(mnist_standard, x_adv).argmax(1) == target).float().mean()
    assert hit > 0.5, f"only {hit:.0%} of images reached their target class"


def test_pgd_is_at_least_as_strong_as_fgsm(mnist_standard, mnist_robust, mnist_test):
    x, y = mnist_test[0][:500], mnist_test[1][:500]
    for model, eps in ((mnist_standard, 0.1), (mnist_robust, 0.3)):
        acc_fgsm = rt.evaluate.robust_accuracy(model, x, y, fgsm, eps=eps)
        acc_pgd = rt.evaluate.robust_accuracy(model, x, y, pgd, eps=eps, steps=20)
        assert acc_pgd <= acc_fgsm + 0.01, (eps, acc_pgd, acc_fgsm)


def _oracle(model, norm, eps, steps, alpha, random_start):
    cls = torchattacks.PGD if norm == "linf" else torchattacks.PGDL2
    return cls(model, eps=eps, alpha=alpha, steps=steps, random_start=random_start)


CONFIGS = [("standard", "linf", 0.1, 0.01), ("robust", "linf", 0.3, 0.025),
           ("standard", "l2", 1.5, 0.15), ("robust", "l2", 2.5, 0.25)]


def _agreement(request, mnist_test, which, norm, eps, alpha, random_start, n):
    model = request.getfixturevalue(f"mnist_{which}")
    x, y = mnist_test[0][:n], mnist_test[1][:n]
    ours = rt.evaluate.robust_accuracy(model, x, y, pgd, eps=eps, norm=norm, steps=20,
                                       step_size=alpha, random_start=random_start)
    oracle = _oracle(model, norm, eps, 20, alpha, random_start)
    theirs = rt.evaluate.accuracy(model, torch.cat([oracle(x[i:i + 500], y[i:i + 500])
                                                    for i in range(0, n, 500)]), y)
    clean = rt.evaluate.accuracy(model, x, y)
    assert theirs < clean - 0.1, "the comparison is only meaningful where the attack bites"
    assert abs(ours - theirs) <= 0.02, (ours, theirs)


@pytest.mark.parametrize("which,norm,eps,alpha", CONFIGS)
def test_pgd_agrees_with_torchattacks(request, mnist_test, which, norm, eps, alpha):
    """From the clean image, both implementations run the same algorithm: within 2 points."""
    _agreement(request, mnist_test, which, norm, eps, alpha, random_start=False, n=500)


@pytest.mark.parametrize("which,norm,eps,alpha", CONFIGS[1::2])
def test_pgd_with_random_start_agrees_with_torchattacks(request, mnist_test, which, norm, eps, alpha):
    """With random starts the runs differ by chance only: still within 2 points on 1,000 images."""
    _agreement(request, mnist_test, which, norm, eps, alpha, random_start=True, n=1000)


def test_a_broken_step_size_is_caught_by_the_oracle(mnist_robust, mnist_test):
    """The agreement test can fail: PGD with a step size 20x too small is far weaker."""
    x, y = mnist_test[0][:500], mnist_test[1][:500]
    weak = rt.evaluate.robust_accuracy(mnist_robust, x, y, pgd, eps=0.3, steps=20,
                                       step_size=0.00125, random_start=False)
    theirs = rt.evaluate.accuracy(mnist_robust, _oracle(mnist_robust, "linf", 0.3, 20, 0.025, False)(x, y), y)
    assert weak - theirs > 0.02, (weak, theirs)


@pytest.mark.parametrize("kwargs,match", [
    ({"eps": -0.1}, "eps must be"),
    ({"eps": float("nan")}, "eps must be"),
    ({"eps": 0.1, "norm": "l3"}, "unknown norm"),
    ({"eps": 0.1, "steps": 0}, "steps must be"),
    ({"eps": 0.1, "step_size": -1.0}, "step_size must be"),
])
def test_bad_arguments_raise_clear_errors(tiny_model, kwargs, match):
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([0, 1])
    with pytest.raises(ValueError, match=match):
        pgd(tiny_model, x, y, **kwargs)


@pytest.mark.parametrize("x,y,match", [
    (torch.rand(2, 1, 28, 28) * 255, torch.tensor([0, 1]), r"pixels must lie in \[0, 1\]"),
    (torch.rand(2, 1, 28, 28) - 0.5, torch.tensor([0, 1]), r"pixels must lie in \[0, 1\]"),
    (torch.rand(2, 1, 28, 28), torch.tensor([0, 1, 2]), "labels"),
    (torch.rand(2, 1, 28, 28), torch.tensor([[0], [1]]), "labels"),
    (torch.rand(2, 1, 28, 28), torch.tensor([0.0, 1.0]), "int64"),
    (torch.randint(0, 255, (2, 1, 28, 28), dtype=torch.uint8), torch.tensor([0, 1]), "float tensor"),
])
def test_bad_inputs_raise_clear_errors(tiny_model, x, y, match):
    for attack in (fgsm, pgd):
        with pytest.raises(ValueError, match=match):
            attack(tiny_model, x, y, eps=0.1)


@pytest.mark.parametrize("field, value", [("eps", -0.1), ("eps", float("nan")), ("eps", "0.3"),
                                          ("norm", "l3"), ("norm", None), ("steps", 0),
                                          ("steps", 2.5), ("step_size", 0.0), ("step_size", -1.0),
                                          ("loss", "cw"), ("loss", "ce")])
def test_threat_refuses_bad_fields_naming_field_and_value(field, value):
    with pytest.raises((ValueError, TypeError), match=rf"^{field}\b.*{re.escape(str(value))}"):
        rt.attacks.Threat(**{"eps": 0.3, field: value})


def test_threat_defaults_and_step_size():
    t = rt.attacks.Threat(0.3)
    assert (t.norm, t.steps, t.step_size, t.loss) == ("linf", 10, None, "xent")
    assert t.alpha == 2.5 * 0.3 / 10  # Madry et al.'s rule, bit for bit
    assert rt.attacks.Threat(0.3, steps=3, step_size=0.15).alpha == 0.15
    assert rt.attacks.Threat(0.3, loss="margin").loss_fn is rt.attacks.margin_loss_sum
    # Stored as Python numbers: hashable, and asdict gives JSON for cache keys.
    import dataclasses, json, numpy as np
    t = rt.attacks.Threat(np.float32(0.5), "l2", np.int64(4))
    assert type(t.eps) is float and type(t.steps) is int
    assert hash(t) == hash(rt.attacks.Threat(0.5, "l2", 4))
    assert json.loads(json.dumps(dataclasses.asdict(t))) == {
        "eps": 0.5, "norm": "l2", "steps": 4, "step_size": None, "loss": "xent"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.eps = 1.0


@pytest.mark.parametrize("norm, eps", [("linf", 0.1), ("linf", 1.0), ("l2", 2.0), ("l1", 10.0)])
@pytest.mark.parametrize("loss", ["xent", "margin"])
def test_threat_perturb_stays_in_ball_and_box_and_is_pgd(tiny_model, norm, eps, loss):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 28, 28, generator=g)
    x[:2] = x[:2].round()
    y = torch.randint(0, 10, (8,), generator=g)
    t = rt.attacks.Threat(eps, norm, steps=3, loss=loss)
    torch.manual_seed(1)
    x_adv = t.perturb(tiny_model, x, y)
    _inside(x, x_adv, eps, norm)
    torch.manual_seed(1)
    ref = pgd(tiny_model, x, y, eps=eps, norm=norm, steps=3, step_size=2.5 * eps / 3,
              loss_fn=t.loss_fn)
    assert torch.equal(x_adv, ref), "perturb is PGD with the threat's budget and random start"
