"""The one training loop of the book.

:func:`fit` trains any :class:`~reprtut.methods.Objective` — standard training, PGD
adversarial training, TRADES, perceptual regularization, AFD, the low-rank layer — and takes
care of what they share: device placement, mixed precision (bf16 on recent GPUs, fp16 with a
gradient scaler on older ones), channels-last batches on GPUs (the classifiers compute
channels-last everywhere: :class:`reprtut.models.Normalize`), learning-rate schedules, progress bars,
per-epoch checkpoints written atomically, and resuming a run where it stopped.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Callable

import torch
import torch.nn as nn

from . import validate
from .declare import Count, File, Function, Instance, checked
from .data import TensorLoader
from .device import autocast, grad_scaler
from .methods.base import Objective
from .progress import EpochProgress


@dataclass
class TrainConfig:
    """Hyperparameters of one training run (saved with the weights)."""

    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"        # "sgd" (Nesterov momentum) or "adam"
    lr: float = 0.1               # peak learning rate
    momentum: float = 0.9         # SGD only
    weight_decay: float = 5e-4    # L2 penalty, applied by the optimizer
    schedule: str = "onecycle"    # "onecycle" (linear warm-up, then decay), "cosine", "step" or "constant"
    milestones: tuple[int, ...] = ()  # epochs at which "step" divides the learning rate by 10
    grad_clip: float | None = None    # max global gradient norm, None for no clipping
    seed: int = 0
    amp: bool = True              # mixed precision where it pays (see reprtut.device.amp_dtype)
    compile: bool = False         # torch.compile the model (worth it on GPUs for long runs)

    def __post_init__(self):
        # Checked here, so a bad recipe fails when it is written, not minutes into training.
        # lr may not be inf: the weights would be NaN after one step (fit catches that too).
        # Values are checked, not converted: the cache key hashes them as given.
        validate.count(self.epochs, "epochs", min=1)
        validate.count(self.batch_size, "batch_size", min=1)
        if self.optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', not {self.optimizer!r}")
        validate.real(self.lr, "lr", low=0.0, low_open=True)
        validate.real(self.momentum, "momentum", low=0.0, high=1.0, high_open=True)
        validate.real(self.weight_decay, "weight_decay", low=0.0)
        if self.schedule not in ("onecycle", "cosine", "step", "constant"):
            raise ValueError(f"unknown schedule {self.schedule!r}; schedule must be one of "
                             f"'onecycle', 'cosine', 'step', 'constant'")
        if isinstance(self.milestones, (str, bytes)) or not hasattr(self.milestones, "__iter__"):
            raise validate.ArgumentTypeError(f"milestones must be a sequence of epochs, got "
                                             f"{self.milestones!r}")
        self.milestones = tuple(validate.count(m, "milestones", min=1) for m in self.milestones)
        late = [m for m in self.milestones if m >= self.epochs]
        if late:
            raise ValueError(f"milestones {late} fall at or after the last of epochs={self.epochs}: "
                             f"the learning rate would never drop there")
        validate.real(self.grad_clip, "grad_clip", low=0.0, low_open=True, allow_none=True)
        validate.count(self.seed, "seed", min=0)
        validate.flag(self.amp, "amp")
        validate.flag(self.compile, "compile")


class History(dict):
    """Per-epoch records: ``history["test_acc"][e]`` is the value after epoch e + 1."""

    def append(self, row: dict) -> None:
        for key, value in row.items():
            self.setdefault(key, []).append(value)

    def plot(self, keys=None, ax=None):
        """One panel of the given columns (default: every accuracy) against the epoch."""
        from .viz import plot_history
        return plot_history(self, keys, ax=ax)


FilePath = Annotated[str | os.PathLike, File()]


def make_optimizer(params, cfg: TrainConfig, **overrides) -> torch.optim.Optimizer:
    """SGD with Nesterov momentum or Adam(W), as ``cfg`` says; ``overrides`` replace its fields."""
    lr = overrides.get("lr", cfg.lr)
    wd = overrides.get("weight_decay", cfg.weight_decay)
    if overrides.get("optimizer", cfg.optimizer) == "adam":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd, betas=overrides.get("betas", (0.9, 0.999)))
    return torch.optim.SGD(params, lr=lr, momentum=overrides.get("momentum", cfg.momentum),
                           nesterov=True, weight_decay=wd)


def make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A per-step learning-rate schedule over ``cfg.epochs`` epochs."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        warm = max(1, round(0.25 * total))  # a quarter of the steps warm up from lr/10 to lr

        def one_cycle(step: int) -> float:
            if step < warm:
                return 0.1 + 0.9 * step / warm
            return max(0.01, 1.0 - (step - warm) / max(1, total - warm))  # then decay to lr/100

        return torch.optim.lr_scheduler.LambdaLR(opt, one_cycle)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if cfg.schedule == "step":
        bounds = [m * steps_per_epoch for m in cfg.milestones]
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=bounds, gamma=0.1)
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


@checked
def save_atomic(obj, path: FilePath) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@checked
def load_checkpoint(path: FilePath, map_location=None) -> dict:
    """torch.load with ``weights_only=True``: tensors and plain containers only, no code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling errors come in many types; say which file is bad
        raise RuntimeError(f"could not read checkpoint {path}: {err}. Delete it to start over.") from err


class Diverged(FloatingPointError, ValueError):
    """Training produced a non-finite loss, metric or weight (also a ``ValueError``: the
    configuration's values, usually the learning rate, made it diverge)."""


def _check_finite(means: dict[str, float], epoch: int, step: int | None, cfg: TrainConfig) -> None:
    bad = {k: v for k, v in means.items() if not math.isfinite(v)}
    if bad:
        where = f"epoch {epoch + 1}" + (f", step {step}" if step is not None else "")
        raise Diverged(f"training diverged at {where}: running {', '.join(f'{k}={v}' for k, v in bad.items())} "
                       f"(lr={cfg.lr}, optimizer={cfg.optimizer!r}); lower lr or set grad_clip. "
                       f"Nothing was saved for this epoch.")


def _check_weights(objective: nn.Module, epoch: int, cfg: TrainConfig) -> None:
    """One host sync per epoch: are all parameters and buffers finite?"""
    tensors = [t for t in [*objective.parameters(), *objective.buffers()] if t.is_floating_point()]
    if not tensors:
        return
    finite = torch.stack([torch.isfinite(t).all() for t in tensors])
    if not bool(finite.all()):
        names = [n for n, t in [*objective.named_parameters(), *objective.named_buffers()]
                 if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        raise Diverged(f"training diverged at epoch {epoch + 1}: non-finite weights in "
                       f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''} (lr={cfg.lr}); "
                       f"lower lr or set grad_clip. Nothing was saved for this epoch.")


@checked
def fit(objective: Annotated[Objective, Instance(Objective, what="a reprtut.methods.Objective (e.g. "
                                                          "methods.build('standard', model))")],
        loader: Annotated[TensorLoader, Instance(TensorLoader, what="a reprtut.data.TensorLoader")],
        cfg: Annotated[TrainConfig, Instance(TrainConfig, what="a reprtut.train.TrainConfig")], *,
        eval_data: tuple[torch.Tensor, torch.Tensor] | None = None,
        checkpoint: FilePath | None = None, progress: bool = True,
        on_step: Annotated[Callable[[int, int], None], Function("a function on_step(epoch, step)")] | None = None,
        log_every: Annotated[int, Count(1)] = 50) -> History:
    """Train ``objective`` for ``cfg.epochs`` epochs over ``loader``; return the history.

    eval_data: optional (x, y) on the loader's device, x in [0, 1]; after every epoch the
    objective's ``evaluate(x, y)`` metrics (default: clean accuracy, ``test_acc``) are
    recorded. checkpoint: a file path; after every epoch the weights, optimizers, schedules
    and history are written there atomically, and a later call with the same path resumes
    after the last completed epoch. Epoch e is seeded with
    (cfg.seed, e), so a resumed run ends with the same weights as an uninterrupted one.
    on_step(epoch, step) is called after every step (for tests and custom logging).
    Metrics stay on the device and are read back every ``log_every`` steps and per epoch.

    Raises ``ValueError`` when the loader yields no batch (fewer examples than
    ``batch_size`` with ``drop_last``), and :class:`Diverged` (a ``FloatingPointError``) when
    the running metrics (checked every ``log_every`` steps and per epoch) or the weights
    (checked per epoch, before the checkpoint is written) stop being finite: a diverged run
    is never checkpointed or returned as if it had trained.
    """
    if len(loader) == 0:
        raise ValueError(f"an epoch would have zero steps: the loader holds {len(loader.y)} "
                         f"examples, fewer than batch_size={loader.batch_size}, and drops the last "
                         f"incomplete batch (drop_last=True); use a smaller batch_size or more "
                         f"training examples (n_train >= batch_size)")
    device = loader.device
    objective.to(device)
    if device.type == "cuda":
        objective.to(memory_format=torch.channels_last)
    if cfg.compile:
        objective.model.compile()

    optimizers = {name: make_optimizer(params, cfg, **over)
                  for name, (params, over) in objective.param_groups().items()}
    schedules = {name: make_schedule(opt, cfg, len(loader)) for name, opt in optimizers.items()}
    scaler = grad_scaler(device, cfg.amp)
    history, start = History(), 0

    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, map_location=device)
        objective.load_state_dict(state["objective"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
            schedules[name].load_state_dict(state["schedules"][name])
        scaler.load_state_dict(state["scaler"])
        history = History(state["history"])
        start = state["epoch"]

    def update(name: str, loss: torch.Tensor) -> None:
        opt = optimizers[name]
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip is not None:
            scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        scaler.step(opt)

    for epoch in range(start, cfg.epochs):
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # attack starts, dropout, augmentation
        loader.set_epoch(epoch)
        objective.train()
        sums: dict[str, torch.Tensor] = {}
        seen = 0
        lr = next(iter(optimizers.values())).param_groups[0]["lr"]  # at the start of the epoch
        t0 = time.perf_counter()
        bar = EpochProgress(loader, f"epoch {epoch + 1}/{cfg.epochs}", enabled=progress)
        for step, (x, y) in enumerate(bar):
            with autocast(device, cfg.amp):
                metrics = objective.step(x, y, update)
            scaler.update()
            for sched in schedules.values():
                sched.step()
            for key, value in metrics.items():  # running sums stay on the device
                sums[key] = sums.get(key, 0) + value.detach().float() * len(y)
            seen += len(y)
            if sums and step % log_every == 0:  # the only host sync inside an epoch
                means = dict(zip(sums, (torch.stack(list(sums.values())) / seen).tolist()))
                _check_finite(means, epoch, step, cfg)
                bar.postfix(means)
            if on_step is not None:
                on_step(epoch, step)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        row = {"epoch": epoch + 1, "seconds": seconds, "images_per_s": seen / seconds, "lr": lr}
        row.update({f"train_{k}": (v / seen).item() for k, v in sums.items()})
        _check_finite({k[6:]: v for k, v in row.items() if k.startswith("train_")}, epoch, None, cfg)
        _check_weights(objective, epoch, cfg)
        if eval_data is not None:
            objective.eval()
            row.update({k: v.item() for k, v in objective.evaluate(*eval_data).items()})
        history.append(row)
        bar.finish(" | ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in row.items()))
        if checkpoint is not None:
            save_atomic({"epoch": epoch + 1, "objective": objective.state_dict(),
                         "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                         "schedules": {n: s.state_dict() for n, s in schedules.items()},
                         "scaler": scaler.state_dict(), "history": dict(history),
                         "config": asdict(cfg)}, checkpoint)
    objective.eval()
    return history
