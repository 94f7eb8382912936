"""The model cache: trained models keyed by a hash of their recipe and the profile.

A :class:`ModelSpec` says everything that determines a trained model — data, architecture,
method and training configuration. :func:`get` returns the model, training it on first use
and storing it under ``$REPRTUT_CACHE`` (default ``$REPRTUT_HOME/models``); chapters and tests
that ask for the same spec share one training run. Interrupted training resumes from the
last completed epoch. Files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn

from . import data as data_mod
from . import methods, models, profiles
from .device import default_device
from .methods.base import Objective
from .train import History, TrainConfig, fit, load_checkpoint, save_atomic

CACHE_ENV = "REPRTUT_CACHE"
# Part of every key: raised when a change to the package (a model, a method, the loop) makes
# models trained by earlier versions stale, so that they are trained again.
VERSION = 1


@dataclass
class ModelSpec:
    """A recipe for a trained model; its hash (with the profile) names the cached file."""

    name: str                      # readable prefix of the file name, e.g. "mnist-pgd"
    dataset: str                   # a key of reprtut.data.INFO
    arch: str                      # a key of reprtut.models.ARCHS
    method: str = "standard"       # a key of reprtut.methods.METHODS
    train: TrainConfig = field(default_factory=TrainConfig)
    arch_kwargs: dict = field(default_factory=dict)
    method_kwargs: dict = field(default_factory=dict)
    n_train: int | None = None     # first n training images; None for all
    n_eval: int = 1000             # test images evaluated after each epoch (0: none)
    augment: bool = False          # random crops and flips (reprtut.data.random_crop_flip)

    def key(self) -> str:
        """12 hex digits of the SHA-256 of the spec, the profile, the run's seed
        (:func:`reprtut.profiles.seed`), the data source kind and the cache :data:`VERSION`."""
        blob = json.dumps({"spec": asdict(self), "profile": profiles.name(), "version": VERSION,
                           "seed": profiles.seed(),
                           "data": "mirror" if os.environ.get(data_mod.DATA_ENV) else "torchvision"},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


@dataclass
class Trained:
    """A cached model: the classifier, its objective (with any modules the method owns),
    the training history and the spec that produced it."""

    model: nn.Module
    objective: Objective
    history: History
    spec: ModelSpec
    path: Path


def cache_dir() -> Path:
    """``$REPRTUT_CACHE``, else ``$REPRTUT_HOME/models`` (``~/.cache/reprtut/models``)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else data_mod.home() / "models"


def train_config(spec: ModelSpec) -> TrainConfig:
    """The spec's training configuration with the run's seed (``$REPRTUT_SEED``) added to its own."""
    return replace(spec.train, seed=spec.train.seed + profiles.seed())


def build(spec: ModelSpec) -> Objective:
    """The untrained objective (and model) of a spec, seeded by :func:`train_config`."""
    torch.manual_seed(train_config(spec).seed)
    model = models.build(spec.arch, spec.dataset, **spec.arch_kwargs)
    return methods.build(spec.method, model, **spec.method_kwargs)


def path_of(spec: ModelSpec) -> Path:
    return cache_dir() / f"{spec.name}-{spec.key()}.pt"


def get(spec: ModelSpec, *, device: torch.device | str | None = None, progress: bool = True,
        retrain: bool = False) -> Trained:
    """Load the model of ``spec`` from the cache, training (or resuming) it first if needed.

    Returns a :class:`Trained` in eval mode on ``device`` (default: the fastest available).
    """
    device = torch.device(device) if device is not None else default_device()
    path = path_of(spec)
    objective = build(spec)
    if path.exists() and not retrain:
        state = load_checkpoint(path, map_location=device)
        objective.load_state_dict(state["objective"])
        history = History(state["history"])
    else:
        train = data_mod.load(spec.dataset, "train", n=spec.n_train)
        test = data_mod.load(spec.dataset, "test", n=spec.n_eval)
        cfg = train_config(spec)
        loader = data_mod.TensorLoader(train, cfg.batch_size, augment=spec.augment,
                                       seed=cfg.seed, device=device, drop_last=True)
        eval_data = (test.images(device), test.y.to(device)) if spec.n_eval else None
        ckpt = path.with_suffix(".ckpt")
        if retrain:
            ckpt.unlink(missing_ok=True)
        history = fit(objective, loader, cfg, eval_data=eval_data, checkpoint=ckpt,
                      progress=progress)
        save_atomic({"objective": objective.state_dict(), "history": dict(history),
                     "spec": json.loads(json.dumps(asdict(spec), default=str))}, path)
        ckpt.unlink(missing_ok=True)
    objective.to(device).eval()
    return Trained(objective.model, objective, history, spec, path)
