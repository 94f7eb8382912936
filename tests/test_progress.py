"""Training progress leaves one summary line per epoch behind, in a terminal and in a notebook."""

from __future__ import annotations

import sys
import types

import torch

import reprtut as rt
from reprtut import progress
from reprtut.train import TrainConfig, fit


def _run(epochs=2):
    torch.manual_seed(0)
    objective = rt.methods.build("standard", rt.models.mnist_cnn(width=2, hidden=8))
    loader = rt.data.TensorLoader(rt.data.load("mnist", "train", n=256), batch_size=64, device="cpu")
    return fit(objective, loader, TrainConfig(epochs=epochs, lr=0.01), progress=True, log_every=1)


def test_terminal_prints_one_summary_per_epoch(capsys):
    _run()
    out = capsys.readouterr().out.splitlines()
    assert [line.split(" |")[0] for line in out] == ["epoch 1", "epoch 2"]
    assert all("train_loss" in line for line in out)


class _Handle:
    """What IPython's display(..., display_id=True) returns: a handle updated in place."""

    def __init__(self, log, obj):
        self.log = log
        log.append(repr(obj))

    def update(self, obj):
        self.log[-1] = repr(obj)  # an update replaces the output it was created with


def test_in_a_notebook_each_epoch_keeps_only_its_summary(monkeypatch, capsys):
    shown: list[str] = []

    class ZMQInteractiveShell:  # the kernel's shell class, as in_kernel() recognises it
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()
    display_mod = types.ModuleType("IPython.display")
    display_mod.display = lambda obj, display_id=False: _Handle(shown, obj)
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "IPython.display", display_mod)
    assert progress.in_kernel()
    _run()
    assert len(shown) == 2 and [s.split(" |")[0] for s in shown] == ["epoch 1", "epoch 2"]
    assert not any("steps" in s or "%|" in s for s in shown), shown  # no frozen progress bar
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_disabled_progress_shows_nothing(capsys):
    torch.manual_seed(0)
    objective = rt.methods.build("standard", rt.models.mnist_cnn(width=2, hidden=8))
    loader = rt.data.TensorLoader(rt.data.load("mnist", "train", n=128), batch_size=64, device="cpu")
    fit(objective, loader, TrainConfig(epochs=1, lr=0.01), progress=False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
