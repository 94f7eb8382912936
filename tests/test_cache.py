"""The model cache: keys, train-once semantics, and profiles."""

from __future__ import annotations

import pytest

import reprtut as rt
from reprtut.cache import ModelSpec
from reprtut.train import TrainConfig


def _spec(**kw):
    base = dict(name="tiny", dataset="mnist", arch="mnist_cnn", arch_kwargs={"width": 4, "hidden": 16},
                n_train=256, n_eval=100, train=TrainConfig(epochs=1, batch_size=64, lr=0.05))
    base.update(kw)
    return ModelSpec(**base)


def test_key_depends_on_spec_and_profile(monkeypatch):
    monkeypatch.setenv("REPRTUT_PROFILE", "quick")
    a = _spec().key()
    assert a == _spec().key()
    assert a != _spec(train=TrainConfig(epochs=2, batch_size=64, lr=0.05)).key()
    assert a != _spec(method="pgd", method_kwargs={"eps": 0.1}).key()
    monkeypatch.setenv("REPRTUT_PROFILE", "full")
    assert a != _spec().key()


def test_get_trains_once_then_loads(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    first = rt.cache.get(_spec(), device="cpu", progress=False)
    assert first.path.exists() and first.path.parent == tmp_path
    assert not list(tmp_path.glob("*.ckpt")), "the resume checkpoint is removed once training ends"

    def no_training(*args, **kwargs):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(rt.cache, "fit", no_training)
    second = rt.cache.get(_spec(), device="cpu", progress=False)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert (a == b).all()
    assert second.history == first.history and not second.model.training


def test_unknown_parts_are_rejected(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="unknown architecture"):
        rt.cache.get(_spec(arch="vgg99"), device="cpu")
    with pytest.raises(ValueError, match="unknown method"):
        rt.cache.get(_spec(method="magic"), device="cpu")


def test_profiles(monkeypatch):
    monkeypatch.setenv("REPRTUT_PROFILE", "paper")
    assert rt.profiles.pick(quick=1, full=2, paper=3) == 3
    assert rt.profiles.pick(quick=1, full=2) == 2
    monkeypatch.setenv("REPRTUT_PROFILE", "quick")
    assert rt.profiles.pick(quick=1, full=2, paper=3) == 1
    monkeypatch.setenv("REPRTUT_PROFILE", "huge")
    with pytest.raises(ValueError, match="not a profile"):
        rt.profiles.name()
