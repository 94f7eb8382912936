"""The offline mirror, clear errors without data, and the GPU-resident loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reprtut as rt
from reprtut.data import TensorLoader, load, random_crop_flip


def test_mirror_loads_real_images_as_uint8():
    train = load("mnist", "train")
    assert train.source.startswith("mirror:")
    assert train.x.dtype == torch.uint8 and train.x.shape[1:] == (1, 28, 28)
    assert train.y.dtype == torch.long and set(train.y.unique().tolist()) == set(range(10))
    cifar = load("cifar10", "test", n=100)
    assert cifar.x.shape == (100, 3, 32, 32) and cifar.info.classes[0] == "airplane"
    # real digits: a dark background and bright strokes, not noise
    mean = train.x[:1000].float().mean() / 255
    assert 0.08 < mean < 0.2


def test_subset_and_images():
    test = load("mnist", "test", n=10)
    x = test.images("cpu")
    assert len(test) == 10 and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1


def test_empty_mirror_folder_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.data.DATA_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="REPRTUT_DATA"):
        load("mnist", "train")


def test_missing_mirror_folder_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.data.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load("mnist", "train")


def test_offline_without_mirror_says_what_to_set(monkeypatch, tmp_path):
    monkeypatch.delenv(rt.data.DATA_ENV, raising=False)
    monkeypatch.setenv(rt.data.HOME_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="set REPRTUT_DATA"):
        load("cifar10", "test", download=False)


def test_malformed_npz_is_rejected(monkeypatch, tmp_path):
    (tmp_path / "npz").mkdir()
    np.savez(tmp_path / "npz" / "mnist-test.npz", x=np.zeros((4, 28, 28), np.float32), y=np.zeros(4))
    monkeypatch.setenv(rt.data.DATA_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="expected x uint8"):
        load("mnist", "test")


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown dataset"):
        load("imagenet")
    with pytest.raises(ValueError, match="split"):
        load("mnist", "valid")


def test_loader_visits_every_example_once_in_a_seeded_order():
    data = load("mnist", "test", n=1000)
    loader = TensorLoader(data, batch_size=128, seed=3, device="cpu")
    loader.set_epoch(0)
    first = torch.cat([y for _, y in loader])
    x0, _ = next(iter(loader))
    assert len(loader) == 8 and len(first) == 1000
    assert torch.equal(first.sort().values, data.y.sort().values)
    assert x0.dtype == torch.float32 and x0.shape == (128, 1, 28, 28) and x0.max() <= 1
    assert torch.equal(torch.cat([y for _, y in loader]), first), "same (seed, epoch), same order"
    loader.set_epoch(1)
    assert not torch.equal(torch.cat([y for _, y in loader]), first)
    assert len(TensorLoader(data, 128, drop_last=True, device="cpu")) == 7


def test_crop_flip_keeps_shape_and_pixels():
    x = torch.rand(8, 3, 32, 32)
    out = random_crop_flip(x)
    assert out.shape == x.shape
    # every output pixel is some input pixel of the same image (crops and flips only move pixels)
    for i in range(8):
        assert torch.isin(out[i].flatten(), x[i].flatten()).all()
