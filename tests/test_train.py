"""The training loop: it learns, it checkpoints atomically, and a killed run resumes exactly."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import reprtut as rt
from reprtut.train import TrainConfig, fit, load_checkpoint


def _setup(seed: int = 0):
    """A small PGD-trained MNIST run: attacks consume random numbers, which resume must replay."""
    torch.manual_seed(seed)
    model = rt.models.mnist_cnn(width=4, hidden=32)
    objective = rt.methods.build("pgd", model, eps=0.1, steps=2)
    data = rt.data.load("mnist", "train", n=640)
    loader = rt.data.TensorLoader(data, batch_size=64, seed=seed, device="cpu")
    cfg = TrainConfig(epochs=3, optimizer="sgd", lr=0.05, schedule="onecycle", seed=seed)
    return objective, loader, cfg


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_train import _setup
    from reprtut.train import fit
    objective, loader, cfg = _setup()
    def kill(epoch, step):
        if epoch == 1 and step == 4:  # mid-way through the second epoch
            os.kill(os.getpid(), signal.SIGKILL)
    fit(objective, loader, cfg, checkpoint={ckpt!r}, progress=False, on_step=kill)
""")


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    reference, loader, cfg = _setup()
    fit(reference, loader, cfg, checkpoint=tmp_path / "ref.ckpt", progress=False)

    ckpt = tmp_path / "run.ckpt"
    script = KILL_SCRIPT.format(tests=str(__import__("pathlib").Path(__file__).parent), ckpt=str(ckpt))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr  # really killed, not finished
    assert load_checkpoint(ckpt)["epoch"] == 1, "the first epoch's checkpoint survived the kill"

    resumed, loader, cfg = _setup()
    history = fit(resumed, loader, cfg, checkpoint=ckpt, progress=False)
    assert history["epoch"] == [1, 2, 3]
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resuming"


def test_a_different_seed_gives_different_weights(tmp_path):
    """The resume test can fail: runs that differ only in their seed end elsewhere."""
    a, loader, cfg = _setup(0)
    fit(a, loader, cfg, progress=False)
    b, loader, cfg = _setup(1)
    fit(b, loader, cfg, progress=False)
    assert not torch.equal(a.model.head.weight, b.model.head.weight)


def test_fit_learns_and_records_history():
    torch.manual_seed(0)
    model = rt.models.mnist_cnn(width=8, hidden=64)
    objective = rt.methods.build("standard", model)
    train = rt.data.load("mnist", "train", n=3000)
    test = rt.data.load("mnist", "test", n=500)
    loader = rt.data.TensorLoader(train, 64, device="cpu")
    history = fit(objective, loader, TrainConfig(epochs=2, optimizer="adam", lr=3e-3, weight_decay=0),
                  eval_data=(test.images("cpu"), test.y), progress=False)
    assert history["test_acc"][-1] > 0.85
    assert history["train_loss"][1] < history["train_loss"][0]
    assert {"seconds", "images_per_s", "lr", "train_acc"} <= set(history)
    assert not objective.training, "fit leaves the model in eval mode"


def test_checkpoint_is_written_atomically_and_read_weights_only(tmp_path):
    objective, loader, cfg = _setup()
    cfg.epochs = 1
    fit(objective, loader, cfg, checkpoint=tmp_path / "a.ckpt", progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["a.ckpt"], "no temporary files left behind"
    state = torch.load(tmp_path / "a.ckpt", weights_only=True)
    assert state["epoch"] == 1 and "objective" in state and "optimizers" in state


def test_corrupt_checkpoint_gives_a_clear_error(tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="could not read checkpoint"):
        load_checkpoint(bad)


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"lr": -1.0}, {"optimizer": "lbfgs"},
                                    {"schedule": "warmup"}, {"batch_size": 0}])
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)
