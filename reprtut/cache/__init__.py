"""The model cache: trained models keyed by a hash of their recipe and the profile.

A :class:`ModelSpec` says everything that determines a trained model — data, architecture,
method and training configuration, and the trained model it starts from (``init``, itself a
spec) with what of it is copied (``load``) and frozen (``freeze``). :func:`get` returns the
model, training it on first use and storing it under ``$REPRTUT_CACHE`` (default
``$REPRTUT_HOME/models``); chapters and tests that ask for the same spec share one training run.
Interrupted training resumes from the last completed epoch. Files are read with
``torch.load(weights_only=True)``. Training draws from a forked random stream, so what the
caller draws after :func:`get` does not depend on whether the model was trained or loaded.

The specs form a graph: frozen-feature transfer starts from a source model and freezes its
feature map (``init=source, load=("features",), freeze=("features",)``); the low-rank model
fine-tunes a trained classifier (``init=classifier``). :func:`get` resolves ``init`` first,
recursively: a model's starting point is trained (or loaded) before its own file lock is taken.

What the cache serves is verified: each model file ``<name>-<key>.pt`` has a sidecar
``<name>-<key>.pt.sha256`` with the SHA-256 of its bytes, written after the file itself. A file
whose checksum is missing or differs, or that cannot be read, is reported (a
:class:`CacheWarning` naming the path), deleted and trained again: never served. A run that
diverges (non-finite loss or weights, see :func:`reprtut.train.fit`) raises and stores nothing.
Concurrent requests for the same model (two notebooks, pytest workers) take a file lock
``<name>-<key>.pt.lock``: the first trains, the others wait and then load its result. Temporary
files left by killed writers (``.<file>.<pid>.tmp``) are removed at cache access once their process is gone.

A model can come trained: with ``$REPRTUT_MODELS_URL`` set, :func:`get` first fetches a missing
file from that bundle, checked against the SHA-256 its manifest lists (:mod:`.hub`), and trains
it only when that fails. ``python -m reprtut.cache export`` writes such a bundle
(:mod:`.bundle`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Annotated

import torch
import torch.nn as nn
from filelock import FileLock

from .. import data as data_mod
from .. import declare, ledger, methods, models, profiles, validate
from ..attacks import Threat
from ..device import default_device
from ..methods.base import Objective
from ..nn import under
from ..declare import Instance, Spec, checked
from ..train import Diverged, History, TrainConfig, fit, load_checkpoint, save_atomic
from . import hub
from .files import checksum_path, sha256_of, write_checksum

CACHE_ENV = "REPRTUT_CACHE"
# Part of every key: raised when a change to the package (a model, a method, the loop) makes
# models trained by earlier versions stale, so that they are trained again.
VERSION = 3


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
    init: ModelSpec | None = None  # the trained model whose weights start this one
    load: tuple[str, ...] = ()     # prefixes of init's weights copied in; () copies all of them
    freeze: tuple[str, ...] = ()   # parameter-name prefixes that are not trained, e.g. "features"

    def __post_init__(self):
        # A bad spec fails here, where it is written, with the field's name.
        if not isinstance(self.name, str) or not self.name or "/" in self.name or \
                os.sep in self.name or self.name.startswith("."):
            raise ValueError(f"name must be a non-empty file-name prefix (no '/', not starting "
                             f"with '.'), got {self.name!r}")
        if not isinstance(self.dataset, str) or self.dataset not in data_mod.INFO:
            raise ValueError(f"unknown dataset {self.dataset!r}; dataset must be one of "
                             f"{', '.join(data_mod.INFO)}")
        if not isinstance(self.arch, str) or self.arch not in models.ARCHS:
            raise ValueError(f"unknown architecture {self.arch!r}; arch must be one of "
                             f"{', '.join(models.ARCHS)}")
        if not isinstance(self.method, str) or self.method not in methods.METHODS:
            raise ValueError(f"unknown method {self.method!r}; method must be one of "
                             f"{', '.join(methods.METHODS)}")
        if not isinstance(self.train, TrainConfig):
            raise validate.ArgumentTypeError(f"train must be a TrainConfig, got {type(self.train).__name__}")
        for field_name in ("arch_kwargs", "method_kwargs"):
            if not isinstance(getattr(self, field_name), dict):
                raise validate.ArgumentTypeError(f"{field_name} must be a dict, got "
                                                 f"{getattr(self, field_name)!r}")
        validate.count(self.n_train, "n_train", min=1, allow_none=True)
        validate.count(self.n_eval, "n_eval", min=0)
        validate.flag(self.augment, "augment")
        if self.init is not None and not isinstance(self.init, ModelSpec):
            raise validate.ArgumentTypeError(f"init must be a ModelSpec or None, got "
                                             f"{type(self.init).__name__}")
        self.load, self.freeze = _prefixes(self.load, "load"), _prefixes(self.freeze, "freeze")
        if self.load and self.init is None:
            raise ValueError(f"load={self.load} copies weights from init, but init is None")
        # The keywords against the builder's and the objective's signatures, the training
        # budget against the data's range: a misspelt keyword or an eps of 8 (not 8/255)
        # fails here, not when the model is built or trained.
        declare.check_keywords(models.ARCHS[self.arch], self.arch_kwargs, "arch_kwargs",
                               f"architecture {self.arch!r}")
        declare.check_keywords(methods.METHODS[self.method], self.method_kwargs, "method_kwargs",
                               f"method {self.method!r}")
        if "eps" in self.method_kwargs:
            keys = ("eps", "norm", "steps", "step_size", "loss")
            Threat(**{k: self.method_kwargs[k] for k in keys if k in self.method_kwargs}
                   ).check_fits(data_mod.INFO[self.dataset].shape)
        if self.n_train is not None and self.n_train < self.train.batch_size:
            raise ValueError(f"n_train={self.n_train} is smaller than batch_size="
                             f"{self.train.batch_size}: the loader drops the last incomplete "
                             f"batch, so an epoch would have zero steps")

    def key(self) -> str:
        """12 hex digits of the SHA-256 of the spec (its ``init`` included, nested), the
        profile, the run's seed (:func:`reprtut.profiles.seed`), the data source kind and the
        cache :data:`VERSION`."""
        blob = json.dumps({"spec": asdict(self), "profile": profiles.name(), "version": VERSION,
                           "seed": profiles.seed(),
                           "data": "mirror" if os.environ.get(data_mod.DATA_ENV) else "torchvision"},
                          sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _prefixes(v, name: str) -> tuple[str, ...]:
    if isinstance(v, str) or not isinstance(v, (tuple, list)) or \
            not all(isinstance(p, str) and p for p in v):
        raise validate.ArgumentTypeError(f"{name} must be a tuple of parameter-name prefixes "
                                         f"such as ('features',), got {v!r}")
    return tuple(v)


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


def build(spec: ModelSpec, start: nn.Module | None = None) -> Objective:
    """The untrained objective (and model) of a spec, seeded by :func:`train_config`, with
    ``spec.freeze`` frozen (:meth:`reprtut.methods.Objective.freeze`) and, when ``start`` (the
    classifier of ``spec.init``) is given, its weights copied in by :func:`copy_weights`."""
    torch.manual_seed(train_config(spec).seed)
    model = models.build(spec.arch, spec.dataset, **spec.arch_kwargs)
    objective = methods.build(spec.method, model, **spec.method_kwargs)
    if start is not None:
        copy_weights(objective.model, start, spec.load)
    objective.freeze(spec.freeze)
    return objective


def copy_weights(model: nn.Module, source: nn.Module, prefixes: tuple[str, ...] = ()) -> None:
    """Copy the weights (parameters and buffers) of classifier ``source`` into ``model``.

    With no ``prefixes``, all of them, strictly: both models must have the same entries with
    the same shapes. With ``prefixes`` (e.g. ``("features",)``), a partial load: only the
    entries under them (:func:`reprtut.nn.under`) are copied, each must exist in both models
    with one shape, and the rest of ``model`` keeps its fresh initialisation (a new head C_T
    on a copied feature map F). Raises ``ValueError`` naming the entries that do not match.
    """
    state = source.state_dict()
    if prefixes:
        state = {k: v for k, v in state.items() if under(k, prefixes)}
        missing = [p for p in prefixes if not any(under(k, (p,)) for k in state)]
        if missing:
            raise ValueError(f"load: {missing} name no weights of the init model")
    own = model.state_dict()
    bad = sorted(set(state) ^ set(own)) if not prefixes else [k for k in state if k not in own]
    bad += [k for k in state if k in own and own[k].shape != state[k].shape]
    if bad:
        raise ValueError(f"the init model's weights do not fit this model: {bad[:5]} differ in "
                         f"name or shape")
    model.load_state_dict(state, strict=not prefixes)


def path_of(spec: ModelSpec) -> Path:
    return cache_dir() / f"{spec.name}-{spec.key()}.pt"


class CacheWarning(UserWarning):
    """A cached file was unusable (corrupt, truncated, unverifiable) and is trained again."""


def store(obj, path: Path) -> None:
    """Save ``obj`` atomically to ``path`` and then its SHA-256 to the sidecar (also atomic):
    a file without a matching sidecar is never served."""
    checksum_path(path).unlink(missing_ok=True)
    save_atomic(obj, path)
    write_checksum(path, sha256_of(path))


def verified_load(path: Path, map_location=None) -> dict:
    """The checkpoint at ``path`` after checking it against its SHA-256 sidecar.

    Raises ``RuntimeError`` naming the path when the sidecar is missing or differs, or the
    file cannot be read.
    """
    side = checksum_path(path)
    if not side.is_file():
        raise RuntimeError(f"{path} has no checksum file {side.name}, so it cannot be verified")
    expected = side.read_text().strip()
    actual = sha256_of(path)
    if actual != expected:
        raise RuntimeError(f"{path} is corrupt: its SHA-256 is {actual[:16]}..., the checksum "
                           f"written with it says {expected[:16]}...")
    state = load_checkpoint(path, map_location=map_location)
    if not isinstance(state, dict) or "objective" not in state or "history" not in state:
        raise RuntimeError(f"{path} does not hold a cached model (no 'objective'/'history')")
    return state


_TMP = re.compile(r"^\..+\.(\d+)\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_orphans(folder: Path | None = None) -> list[Path]:
    """Delete temporary files ``.<file>.<pid>.tmp`` whose writing process is gone (killed
    during :func:`reprtut.train.save_atomic`); returns the paths removed."""
    folder = cache_dir() if folder is None else Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.glob(".*.tmp"):
        m = _TMP.match(p.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _discard(path: Path, why: Exception) -> None:
    warnings.warn(f"model cache: {why}; deleting it and training the model again", CacheWarning,
                  stacklevel=3)
    path.unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)


class _Device(Spec):
    """A device: a ``torch.device``, or what ``torch.device(...)`` reads (``"cpu"``,
    ``"cuda:1"``, a CUDA index); passed on as given."""
    def example(self):
        return "cpu"

    def check(self, v, name, args, reads, specs):
        if isinstance(v, torch.device):
            return v
        if isinstance(v, (str, int)) and not isinstance(v, bool):
            try:
                torch.device(v)
                return v
            except (RuntimeError, ValueError, TypeError):
                pass
        raise validate.ArgumentTypeError(f"{name} must be a torch.device or a device name such as "
                                         f"'cpu', 'cuda' or 'mps', got {validate._show(v)}")


Device = Annotated[torch.device | str, _Device()]


@checked
def get(spec: Annotated[ModelSpec, Instance(ModelSpec, what="a ModelSpec (see reprtut.recipes)")], *,
        device: Device | None = None, progress: bool = True, retrain: bool = False) -> Trained:
    """Load the model of ``spec`` from the cache, training (or resuming) it first if needed.

    Returns a :class:`Trained` in eval mode on ``device`` (default: the fastest available). A
    model not in the cache is first fetched from ``$REPRTUT_MODELS_URL`` when that is set
    (:func:`reprtut.cache.hub.fetch`: checked by SHA-256, else a
    :class:`~reprtut.cache.hub.FetchWarning` and trained as without it). A cached file that
    fails its checksum or cannot be read is reported with a :class:`CacheWarning` and trained
    again. Holds the spec's file lock while it checks and trains, so concurrent calls train a
    model once. A spec with an ``init`` that must be trained first gets that model from
    :func:`get` (recursively) before taking its own lock, copies its weights in (``spec.load``)
    and trains with ``spec.freeze`` frozen; a model already in the cache is loaded without its
    ``init``. Raises :class:`reprtut.train.Diverged` (nothing stored) when training diverges.
    """
    device = torch.device(device) if device is not None else default_device()
    path = path_of(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_orphans(path.parent)
    if not retrain and not path.exists() and hub.base_url():
        with FileLock(str(path) + ".lock"):  # one process downloads; the others then load
            t0 = time.perf_counter()
            if hub.fetch(path):  # checked against the bundle's manifest, or nothing written
                ledger.record(path.parent, name=spec.name, key=spec.key(), event="fetch",
                              seconds=time.perf_counter() - t0)
    # The starting point is fetched before this spec's lock is taken: its training may take
    # long. Only when a cached file proves unusable is it fetched under the lock; init chains
    # have no cycles, so nested locks are always taken in the same order, outer first.
    start = _start(spec, device) if retrain or not path.exists() else None
    t_ask = time.perf_counter()
    with FileLock(str(path) + ".lock"):
        t0, state = time.perf_counter(), None
        if path.exists() and not retrain:
            objective = build(spec)
            try:
                state = verified_load(path, map_location=device)
                objective.load_state_dict(state["objective"])
            except Exception as err:  # corrupt, truncated, unverifiable or mismatched
                _discard(path, err)
                state = None
        if state is not None:
            history = History(state["history"])
        else:
            if start is None:  # the file was there before the lock, and is unusable or gone
                start = _start(spec, device)
            objective = build(spec, start)
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                history = _train(spec, objective, start, path, device, progress, retrain)
        ledger.record(path.parent, name=spec.name, key=spec.key(), seconds=time.perf_counter() - t0,
                      event="load" if state is not None else "train", waited=t0 - t_ask)
    if state is not None:
        _record_needs(spec.init, path.parent)
    objective.to(device).eval()
    return Trained(objective.model, objective, history, spec, path)


def _record_needs(init: ModelSpec | None, folder: Path) -> None:
    """Ledger lines for the starting points of a model loaded from the cache: a cold run
    trains them first, so the time table charges them to whoever asked for the model."""
    while init is not None:
        ledger.record(folder, name=init.name, key=init.key(), event="needs", seconds=0.0)
        init = init.init


def _start(spec: ModelSpec, device) -> nn.Module | None:
    """The classifier of ``spec.init`` from the cache (trained first if need be), or None."""
    return None if spec.init is None else get(spec.init, device=device, progress=False).model


def _train(spec: ModelSpec, objective: Objective, start: nn.Module | None, path: Path, device,
           progress: bool, retrain: bool) -> History:
    """Train (or resume) ``objective``, built from ``start`` (the classifier of ``spec.init``),
    and store it with its checksum; called under the lock."""
    train = data_mod.load(spec.dataset, "train", n=spec.n_train)
    test = data_mod.load(spec.dataset, "test", n=spec.n_eval)
    cfg = train_config(spec)
    loader = data_mod.TensorLoader(train, cfg.batch_size, augment=spec.augment,
                                   seed=cfg.seed, device=device, drop_last=True)
    eval_data = (test.images(device), test.y.to(device)) if spec.n_eval else None
    ckpt = path.with_suffix(".ckpt")
    if retrain:
        ckpt.unlink(missing_ok=True)
    try:
        history = fit(objective, loader, cfg, eval_data=eval_data, checkpoint=ckpt,
                      progress=progress)
    except Diverged:
        ckpt.unlink(missing_ok=True)  # resuming would diverge again: start afresh next time
        raise
    except RuntimeError as err:
        if not str(err).startswith("could not read checkpoint"):
            raise
        _discard(ckpt, err)  # an unreadable resume checkpoint: train from the start
        objective.load_state_dict(build(spec, start).state_dict())
        history = fit(objective, loader, cfg, eval_data=eval_data, checkpoint=ckpt,
                      progress=progress)
    store({"objective": objective.state_dict(), "history": dict(history),
           "spec": json.loads(json.dumps(asdict(spec), default=str))}, path)
    ckpt.unlink(missing_ok=True)
    return history
