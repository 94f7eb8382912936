"""The colab, full and paper profiles cannot crash for reasons a CPU can see: every recipe's spec
builds, and its model (with its training objective) does one forward and backward pass.

The GPU profiles are never trained here; this catches what would otherwise surface only on a
GPU an hour into a build: a typo in a ``pick(full=...)`` branch, an architecture that does not
fit its dataset's image shape, an objective whose loss does not reach every parameter.
"""

from __future__ import annotations

import pytest
import torch

import reprtut as rt
from reprtut import recipes
from reprtut.cache import ModelSpec
from reprtut.derived import CELEBA_TASKS, FLANKED_TASKS
from reprtut.recipes import catalog

PROFILES = ("colab", "full", "paper")


@pytest.fixture(autouse=True)
def _no_downloads(monkeypatch):
    # Recipes read nothing, but a full-profile run asks whether SVHN and CelebA can be
    # downloaded (reprtut.derived); offline, answer at once (the specs of the real datasets
    # are built explicitly through catalog.examples()).
    monkeypatch.setattr(rt.data, "available", lambda name, download=False: False)


def _specs(profile: str, monkeypatch) -> list[tuple[str, ModelSpec]]:
    monkeypatch.setenv("REPRTUT_PROFILE", profile)
    return catalog.specs()


def _batch(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    info = rt.data.INFO[dataset]
    x = torch.rand(2, *info.shape)
    n_tasks = len(CELEBA_TASKS) if dataset.startswith("celeba") else len(FLANKED_TASKS)
    shape = (2, n_tasks) if dataset.endswith("_all") else (2,)
    return x, torch.randint(0, len(info.classes), shape)


def test_every_recipe_that_takes_arguments_has_examples():
    assert set(catalog.examples()) <= set(catalog.functions()), "examples() names a recipe that is gone"


@pytest.mark.parametrize("profile", PROFILES)
def test_every_recipe_spec_builds(profile, monkeypatch):
    specs = _specs(profile, monkeypatch)
    assert len(specs) >= len(catalog.functions())
    for label, spec in specs:
        assert spec.dataset in rt.data.INFO, f"{label}: unknown dataset {spec.dataset}"
        assert spec.arch in rt.models.ARCHS, f"{label}: unknown architecture {spec.arch}"
        assert spec.method in rt.methods.METHODS, f"{label}: unknown method {spec.method}"
        assert len(spec.key()) == 12
    assert rt.profiles.name() == profile


@pytest.mark.parametrize("profile", PROFILES)
def test_every_recipe_model_does_a_forward_and_backward_pass(profile, monkeypatch):
    torch.manual_seed(0)
    seen = set()
    for label, spec in _specs(profile, monkeypatch):
        what = (spec.arch, spec.dataset, repr(sorted(spec.arch_kwargs.items())), spec.method,
                repr(sorted(spec.method_kwargs.items())), spec.freeze)
        if what in seen:   # the same network and objective under another name or lambda
            continue
        seen.add(what)
        # Built as the cache builds it, with spec.freeze frozen; the weights of spec.init
        # (a trained model) do not matter for one pass.
        objective = rt.cache.build(spec).train()
        model = objective.model
        x, y = _batch(spec.dataset)
        loss, _ = objective.loss(x, y)
        params = [p for p in objective.parameters() if p.requires_grad]
        assert loss.dim() == 0 and torch.isfinite(loss), f"{label}: loss {loss}"
        loss.backward()
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in params), \
            f"{label}: no gradient reaches the parameters"
        assert model(x).shape[0] == 2


def test_a_broken_full_profile_recipe_is_caught(monkeypatch):
    """The tests above can fail: a recipe whose full-profile branch misspells a method's
    argument ("epsilon" for "eps") is caught without training anything."""
    def mnist_standard() -> ModelSpec:
        return ModelSpec(name="broken", dataset="mnist", arch="mnist_cnn", method="pgd",
                         method_kwargs={"epsilon": 0.3})

    mnist_standard.__module__ = recipes.__name__
    monkeypatch.setattr(recipes, "mnist_standard", mnist_standard)
    with pytest.raises(ValueError, match="method 'pgd' takes no keyword 'epsilon'; it takes eps"):
        test_every_recipe_model_does_a_forward_and_backward_pass("full", monkeypatch)
