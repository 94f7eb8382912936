"""Time to accuracy: seconds until the book's MNIST classifier reaches 99 % test accuracy.

The recipe is :func:`reprtut.recipes.mnist_standard` of the active profile (architecture,
optimizer, learning rate, schedule, batch size, training-set size), trained by
:func:`reprtut.train.fit`; the run stops as soon as the accuracy on the whole MNIST test set
reaches ``target``, checked every ``every`` steps and at the end of each epoch (the only
host syncs). The clock runs from the start of ``fit`` (model already built, data already on the
device) to the evaluation that reaches the target, evaluations included. On GPUs a short
warm-up run first initialises the CUDA context and cuDNN's algorithm choice.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from .. import cache, data, recipes
from ..device import autocast
from ..train import fit
from .common import Profiled, sync


class _Reached(Exception):
    """Raised from fit's on_step hook to stop training once the target is reached."""


def run(device: torch.device, *, target: float = 0.99, max_epochs: int | None = None,
        every: int = 100, warmup: bool | None = None, compile: bool = False,
        profile: bool = False) -> dict:
    """Seconds (and steps, epochs) to ``target`` test accuracy, or None if not reached."""
    if not 0 < target <= 1:
        raise ValueError(f"target must be in (0, 1], got {target}")
    if every < 1:
        raise ValueError(f"every must be positive, got {every}")
    spec = recipes.mnist_standard()
    cfg = dataclasses.replace(cache.train_config(spec), compile=compile,
                              epochs=max_epochs or spec.train.epochs)
    train = data.load("mnist", "train", n=spec.n_train)
    test = data.load("mnist", "test")
    x_test, y_test = test.images(device), test.y.to(device)
    loader = data.TensorLoader(train, cfg.batch_size, seed=cfg.seed, device=device, drop_last=True)
    warmup = device.type == "cuda" if warmup is None else warmup
    if warmup:                                     # CUDA context, cuDNN autotuning, compile
        loader_w = data.TensorLoader(train.subset(cfg.batch_size * 20), cfg.batch_size, device=device)
        fit(cache.build(spec), loader_w, dataclasses.replace(cfg, epochs=1), progress=False)

    objective = cache.build(spec)
    evals: list[tuple[int, float, float]] = []      # (step, seconds, accuracy)
    t0 = 0.0

    def check(epoch: int, step: int) -> None:
        global_step = epoch * len(loader) + step + 1
        if (step + 1) % every and step + 1 != len(loader):
            return
        objective.eval()
        with autocast(device, cfg.amp):
            acc = objective.evaluate(x_test, y_test)["test_acc"].item()   # the sync
        objective.train()
        evals.append((global_step, time.perf_counter() - t0, acc))
        if acc >= target:
            raise _Reached

    prof = Profiled(profile, device)
    reached = False
    with prof:
        sync(device)
        t0 = time.perf_counter()
        try:
            fit(objective, loader, cfg, progress=False, on_step=check)
        except _Reached:
            reached = True
    steps, seconds, acc = evals[-1] if evals else (0, None, None)
    out = {"recipe": spec.name, "arch": spec.arch, "arch_kwargs": spec.arch_kwargs,
           "train_config": dataclasses.asdict(cfg), "n_train": len(train), "n_test": len(test),
           "synthetic_data": False, "target": target, "reached": reached,
           "seconds_to_target": seconds if reached else None, "steps": steps,
           "epochs": steps / len(loader), "final_test_acc": acc, "eval_every_steps": every,
           "warmup": warmup, "evaluations": [{"step": s, "seconds": t, "test_acc": a} for s, t, a in evals]}
    if prof.table is not None:
        out["profile_table"] = prof.table
    return out
