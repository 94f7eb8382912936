"""Shared fixtures: small data and the trained models that chapter 1 also uses."""

from __future__ import annotations

import pytest
import torch

import reprtut as rt


@pytest.fixture(scope="session")
def mnist_test():
    """The first 1,000 MNIST test images (N, 1, 28, 28) in [0, 1] and their labels, on the CPU."""
    test = rt.data.load("mnist", "test", n=1000)
    return test.images("cpu"), test.y


@pytest.fixture(scope="session")
def mnist_standard():
    return rt.cache.get(rt.recipes.mnist_standard(), device="cpu", progress=False).model


@pytest.fixture(scope="session")
def mnist_robust():
    return rt.cache.get(rt.recipes.mnist_pgd(), device="cpu", progress=False).model


@pytest.fixture
def tiny_model():
    """An untrained MNIST-shaped classifier, for properties that hold for any model."""
    torch.manual_seed(0)
    return rt.models.mnist_cnn(width=4, hidden=16).eval()
