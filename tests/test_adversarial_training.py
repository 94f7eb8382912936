"""Chapter 1's science at CPU scale: PGD adversarial training buys robustness at eps = 0.3."""

from __future__ import annotations

import reprtut as rt
from reprtut.attacks import fgsm, pgd


def test_both_models_classify_clean_digits(mnist_standard, mnist_robust, mnist_test):
    x, y = mnist_test
    assert rt.evaluate.accuracy(mnist_standard, x, y) > 0.95
    assert rt.evaluate.accuracy(mnist_robust, x, y) > 0.90


def test_adversarial_training_is_far_more_robust_at_eps_03(mnist_standard, mnist_robust, mnist_test):
    x, y = mnist_test[0][:500], mnist_test[1][:500]
    standard = rt.evaluate.robust_accuracy(mnist_standard, x, y, pgd, eps=0.3, steps=20)
    robust = rt.evaluate.robust_accuracy(mnist_robust, x, y, pgd, eps=0.3, steps=20)
    assert standard < 0.05, "a standard MNIST model is broken at eps = 0.3"
    assert robust > standard + 0.3, (robust, standard)


def test_robust_model_resists_fgsm_better_than_pgd(mnist_robust, mnist_test):
    """A robust (not gradient-masked) model: FGSM at most as strong as PGD, both far from 0."""
    x, y = mnist_test[0][:500], mnist_test[1][:500]
    acc_fgsm = rt.evaluate.robust_accuracy(mnist_robust, x, y, fgsm, eps=0.3)
    acc_pgd = rt.evaluate.robust_accuracy(mnist_robust, x, y, pgd, eps=0.3, steps=20)
    assert acc_pgd <= acc_fgsm and acc_pgd > 0.3


def test_robust_gradients_concentrate_on_the_strokes(mnist_standard, mnist_robust, mnist_test):
    x, y = mnist_test[0][:200], mnist_test[1][:200]

    def share_on_strokes(model):
        return rt.evaluate.stroke_energy_share(rt.representation.saliency(model, x, y), x)

    assert share_on_strokes(mnist_robust) > share_on_strokes(mnist_standard) + 0.2
