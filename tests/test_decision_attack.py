"""The decision-based Boundary attack (rt.attacks.boundary): its contract (ball, box, state,
bad arguments) and that, with labels only, it fools an undefended model far more often than
random noise of the same size does."""

from __future__ import annotations

import pytest
import torch

import reprtut as rt
from reprtut.attacks import boundary, norm_of


def _inside(x, x_adv, eps, tol=1e-5):
    assert x_adv.shape == x.shape and x_adv.dtype == x.dtype
    assert x_adv.min() >= 0 and x_adv.max() <= 1, "left the [0, 1] box"
    assert (norm_of(x_adv - x, "l2") <= eps + tol).all(), "left the eps-ball"


@pytest.mark.parametrize("eps", [0.1, 2.0, 30.0])
def test_stays_in_ball_and_box_and_restores_the_model(tiny_model, eps):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 28, 28, generator=g)
    x[:2] = x[:2].round()  # pixels already at the box's faces
    y = torch.randint(0, 10, (8,), generator=g)
    tiny_model.train()
    x_adv = boundary(tiny_model, x, y, eps=eps, steps=20)
    assert tiny_model.training and all(p.requires_grad for p in tiny_model.parameters())
    _inside(x, x_adv, eps)


def test_eps_zero_and_misclassified_inputs_are_returned_unchanged(tiny_model):
    x = torch.rand(6, 1, 28, 28)
    assert torch.equal(boundary(tiny_model, x, torch.zeros(6, dtype=torch.long), eps=0.0), x)
    wrong = (rt.evaluate.predict(tiny_model, x).argmax(1) + 1) % 10  # every label is wrong
    assert torch.equal(boundary(tiny_model, x, wrong, eps=2.0, steps=20), x)


@pytest.mark.parametrize("kwargs,name", [({"norm": "linf"}, "norm"), ({"steps": 0}, "steps"),
                                          ({"eps": -1.0}, "eps"), ({"source_step": 1.5}, "source_step"),
                                          ({"spherical_step": 0.0}, "spherical_step"),
                                          ({"draws": 0}, "draws"), ({"targeted": True}, "targeted")])
def test_bad_arguments_are_named(tiny_model, kwargs, name):
    x, y = torch.rand(2, 1, 28, 28), torch.tensor([0, 1])
    with pytest.raises((ValueError, TypeError), match=name):
        boundary(tiny_model, x, y, **{"eps": 2.0, "steps": 5, **kwargs})


def test_same_seed_same_result(mnist_standard, mnist_test):
    x, y = mnist_test[0][:4], mnist_test[1][:4]
    a = boundary(mnist_standard, x, y, eps=2.0, steps=30, seed=3)
    b = boundary(mnist_standard, x, y, eps=2.0, steps=30, seed=3)
    assert torch.equal(a, b)


def test_labels_alone_fool_an_undefended_model_more_than_noise_or_a_short_walk(mnist_standard,
                                                                              mnist_test):
    """With labels only, the walk along the boundary finds misclassified points inside the ball
    that random directions of the same l2 size do not, and that its own start (a walk of one
    step, projected onto the ball) does not: a broken walk that never moved towards x would
    do no better than either."""
    x, y = mnist_test[0][:10], mnist_test[1][:10]
    eps = 3.0
    clean = rt.evaluate.accuracy(mnist_standard, x, y)
    x_adv = boundary(mnist_standard, x, y, eps=eps, steps=3000)
    _inside(x, x_adv, eps)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    x_noise = (x + rt.attacks.project(noise * 100, eps, "l2")).clamp(0, 1)
    x_start = boundary(mnist_standard, x, y, eps=eps, steps=1)
    attacked = rt.evaluate.accuracy(mnist_standard, x_adv, y)
    noisy = rt.evaluate.accuracy(mnist_standard, x_noise, y)
    start = rt.evaluate.accuracy(mnist_standard, x_start, y)
    assert noisy > clean - 0.2, (clean, noisy)      # noise of this size hardly fools it
    assert attacked < noisy - 0.3, (attacked, noisy)
    assert attacked < start - 0.2, (attacked, start)
