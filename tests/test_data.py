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


@pytest.mark.parametrize("arrays,words", [
    ({"x": np.zeros((4, 28, 28, 1), np.uint8), "y": np.array([0, 1, 2, 10])}, r"class indices in \[0, 10\)"),
    ({"x": np.zeros((4, 28, 28, 1), np.uint8), "y": np.array([0, -1, 2, 3])}, r"class indices in \[0, 10\)"),
    ({"x": np.zeros((4, 32, 32, 1), np.uint8), "y": np.zeros(4, np.int64)}, "28x28"),
    ({"x": np.zeros((0, 28, 28, 1), np.uint8), "y": np.zeros(0, np.int64)}, "zero images"),
    (b"PK\x03\x04 not a zip", "not a readable npz"),
])
def test_bad_npz_files_are_refused_naming_the_file(monkeypatch, tmp_path, arrays, words):
    (tmp_path / "npz").mkdir()
    path = tmp_path / "npz" / "mnist-test.npz"
    if isinstance(arrays, bytes):
        path.write_bytes(arrays)
    else:
        np.savez(path, **arrays)
    monkeypatch.setenv(rt.data.DATA_ENV, str(tmp_path))
    with pytest.raises(ValueError, match=words) as err:
        load("mnist", "test")
    assert str(path) in str(err.value)


@pytest.mark.parametrize("n", [-5, 2.5, "10", True])
def test_load_refuses_a_bad_count(n):
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        load("mnist", "test", n=n)


def test_a_silent_server_times_out_instead_of_hanging(monkeypatch, tmp_path):
    """A server that accepts the connection and never answers (a network dropping packets):
    torchvision's download, which passes no timeout to urllib, gives up after
    $REPRTUT_DOWNLOAD_TIMEOUT seconds with an error saying so."""
    import socket
    import time
    import urllib.request

    import torchvision.datasets as tvd

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # the kernel completes the handshake; nobody ever reads or writes
    url = f"http://127.0.0.1:{server.getsockname()[1]}/train-images-idx3-ubyte.gz"

    class SilentMNIST:  # what torchvision.datasets.MNIST does on download, minus the mirrors
        def __init__(self, root, train=True, download=False):
            urllib.request.urlopen(url).read()

    monkeypatch.setattr(tvd, "MNIST", SilentMNIST)
    monkeypatch.delenv(rt.data.DATA_ENV, raising=False)
    monkeypatch.setenv(rt.data.HOME_ENV, str(tmp_path))
    monkeypatch.setenv(rt.data.TIMEOUT_ENV, "0.5")
    start = time.perf_counter()
    try:
        with pytest.raises(FileNotFoundError, match="timed out"):
            load("mnist", "train", download=True)
    finally:
        server.close()
    assert time.perf_counter() - start < 30
    assert socket.getdefaulttimeout() is None, "the timeout is restored after the download"


def test_validation_split_is_the_tail_of_the_training_set_and_refuses_models_that_saw_it():
    train = rt.data.load("mnist", "train")
    val = rt.splits.validation("mnist", 500, trained_on=[12_000, len(train) - 500])
    assert len(val) == 500 and torch.equal(val.x, train.x[-500:]) and torch.equal(val.y, train.y[-500:])
    for seen in ([None], [len(train) - 499]):
        with pytest.raises(ValueError, match="has seen the validation split"):
            rt.splits.validation("mnist", 500, trained_on=seen)
    with pytest.raises(TypeError, match="trained_on must be a list or tuple"):
        rt.splits.validation("mnist", 500, trained_on=12_000)
    with pytest.raises(ValueError, match="n must be"):
        rt.splits.validation("mnist", len(train))
