"""Datasets as uint8 tensors, and a loader that serves them from GPU memory.

Where the images come from, in order:

1. ``$REPRTUT_DATA`` names a folder: torchvision's own layout there if present, else
   ``<folder>/npz/<name>-<split>.npz`` with ``x`` uint8 (N, H, W, C) and ``y`` int64 (the
   offline mirror's format).
2. Otherwise torchvision downloads the dataset into ``$REPRTUT_HOME/data`` (default
   ``~/.cache/reprtut/data``); torchvision checks every downloaded file against its MD5.

The small datasets of the book fit in GPU memory many times over, so :class:`TensorLoader`
keeps them there as uint8 and builds each batch with tensor ops on the device: no worker
processes, no per-sample Python.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Literal

import numpy as np
import torch

from . import validate
from .declare import Choice, Count, Instance, checked
from .device import default_device, to_device_layout

DATA_ENV = "REPRTUT_DATA"
HOME_ENV = "REPRTUT_HOME"
# Seconds a download may wait for the server before giving up (per socket operation), so a
# network that drops packets fails the chapter with a clear error instead of hanging it.
TIMEOUT_ENV = "REPRTUT_DOWNLOAD_TIMEOUT"
DEFAULT_TIMEOUT = 60.0

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_CLASSES = ("T-shirt/top", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle boot")
DIGITS = tuple(str(i) for i in range(10))


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset: classes, image shape and channel stats."""

    name: str
    classes: tuple[str, ...]
    shape: tuple[int, int, int]  # (C, H, W)
    mean: tuple[float, ...]      # per-channel mean of the training images, in [0, 1]
    std: tuple[float, ...]       # per-channel standard deviation, in [0, 1]


INFO = {
    "mnist": DatasetInfo("mnist", DIGITS, (1, 28, 28), (0.1307,), (0.3081,)),
    "fashion_mnist": DatasetInfo("fashion_mnist", FASHION_CLASSES, (1, 28, 28), (0.2860,), (0.3530,)),
    "cifar10": DatasetInfo("cifar10", CIFAR10_CLASSES, (3, 32, 32),
                           (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "svhn": DatasetInfo("svhn", DIGITS, (3, 32, 32), (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    # CelebA: the 40 binary attributes are the labels; images are centre-cropped to 178x178
    # and resized to 64x64 as in the perceptual-regularization paper (appendix B.1).
    "celeba": DatasetInfo("celeba", ("0", "1"), (3, 64, 64), (0.5063, 0.4258, 0.3832), (0.3106, 0.2904, 0.2897)),
}


@dataclass
class Dataset:
    """Images and labels held as tensors.

    x: uint8 (N, C, H, W) in [0, 255]; y: int64 (N,) class indices, or (N, 40) for CelebA.
    """

    x: torch.Tensor
    y: torch.Tensor
    info: DatasetInfo
    source: str  # "mirror:<path>" or "torchvision:<path>"

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int | None) -> "Dataset":
        """The first ``n`` examples (all of them when ``n`` is None or too large); n >= 0."""
        n = validate.count(n, "n", min=0, allow_none=True)
        if n is None or n >= len(self):
            return self
        return Dataset(self.x[:n], self.y[:n], self.info, self.source)

    def images(self, device: torch.device | str | None = None) -> torch.Tensor:
        """All images as float (N, C, H, W) in [0, 1] on ``device``."""
        device = torch.device(device) if device is not None else default_device()
        return self.x.to(device).float().div_(255)


def home() -> Path:
    """The folder for downloads and trained models: ``$REPRTUT_HOME`` or ``~/.cache/reprtut``."""
    return Path(os.environ.get(HOME_ENV, Path.home() / ".cache" / "reprtut")).expanduser()


# Derived datasets: name -> builder(split, download) -> Dataset, built from other datasets
# (a stand-in composed of MNIST digits, a balanced subset of CelebA). See register_derived.
DERIVED: dict[str, Callable[[str, bool], Dataset]] = {}


class _DatasetName(Choice):
    """A dataset's name: a key of :data:`INFO` as it is when the call is made (derived
    datasets register themselves there), compared exactly."""
    fold_case = False

    def __init__(self):
        pass

    @property
    def options(self) -> tuple[str, ...]:
        return tuple(INFO)

    def check(self, v, name, args, reads, specs):
        if isinstance(v, str) and v in INFO:
            return v
        if isinstance(v, str):
            raise ValueError(f"unknown dataset {v!r}; {name} must be one of {', '.join(INFO)}")
        raise validate.ArgumentTypeError(f"{name} must be a dataset name, one of "
                                         f"{', '.join(INFO)}; got {validate._show(v)}")


DatasetName = Annotated[str, _DatasetName()]


@checked
def register_derived(info: Annotated[DatasetInfo, Instance(DatasetInfo)]):
    """Decorator: make ``builder(split, download) -> Dataset`` loadable as ``load(info.name)``.

    The builder loads its sources with :func:`load` (passing ``download`` on) and returns
    uint8 images; :func:`load` memoises the result like any other dataset.
    """
    def wrap(builder):
        INFO[info.name] = info
        DERIVED[info.name] = builder
        return builder
    return wrap


@checked
def load(name: DatasetName, split: Literal["train", "test"] = "train", *,
         n: Annotated[int, Count(0)] | None = None, download: bool = True) -> Dataset:
    """Load a dataset split as uint8 tensors; ``n`` keeps the first ``n`` examples.

    ``name`` is one of ``mnist``, ``fashion_mnist``, ``cifar10``, ``svhn``, ``celeba`` or a
    derived dataset (:data:`DERIVED`); ``split`` is ``train`` or ``test``. Results are
    memoised, so chapters that load the same split share one copy. Raises ``ValueError`` for
    unknown names and ``FileNotFoundError`` (saying what to set) when the data is neither
    local nor downloadable.
    """
    mirror = os.environ.get(DATA_ENV) or None
    if name in DERIVED:
        return _load_derived(name, split, mirror, download).subset(n)
    return _load(name, split, mirror, download).subset(n)


@checked
def available(name: DatasetName, *, download: bool = False) -> bool:
    """Whether :func:`load` can serve both splits of ``name`` (downloading only if asked).

    A failed download (no network, a mirror's quota exceeded) counts as not available.
    """
    try:
        load(name, "train", download=download)
        load(name, "test", download=download)
    except (FileNotFoundError, RuntimeError, OSError):
        return False
    return True


@functools.lru_cache(maxsize=16)
def _load_derived(name: str, split: str, mirror: str | None, download: bool) -> Dataset:
    # mirror is part of the memo key only: the builder's own load() calls read the environment.
    return DERIVED[name](split, download)


@functools.lru_cache(maxsize=16)
def _load(name: str, split: str, mirror: str | None, download: bool) -> Dataset:
    if mirror is not None:
        root = Path(mirror).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"{DATA_ENV}={mirror!r} is not a folder")
        found = _from_torchvision(name, split, root, download=False)
        if found is None:
            found = _from_npz(name, split, root / "npz" / f"{name}-{split}.npz")
        if found is None:
            raise FileNotFoundError(
                f"{DATA_ENV}={mirror!r} holds neither torchvision's {name} files nor "
                f"npz/{name}-{split}.npz; point {DATA_ENV} at a folder that has one of them, "
                f"or unset it to download {name} through torchvision")
        return found
    root = home() / "data"
    cached = _from_npz(name, split, root / "npz" / f"{name}-{split}.npz")
    if cached is not None:  # decoded earlier (CelebA), or placed there by hand
        return cached
    found = _from_torchvision(name, split, root, download=download)
    if found is None:
        raise FileNotFoundError(
            f"{name} ({split}) is not in {root} and could not be downloaded. Connect to the "
            f"internet, or set {DATA_ENV} to a folder with torchvision's files or "
            f"npz/{name}-{split}.npz (x uint8 (N,H,W,C), y int64), e.g. {DATA_ENV}=../shared/data")
    return found


def _from_npz(name: str, split: str, path: Path) -> Dataset | None:
    """The npz mirror's file, checked: x uint8 (N, H, W, C) of the dataset's size, N >= 1,
    y integer class indices in [0, K), (N,) (or (N, T) for multi-label datasets)."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as f:
            if "x" not in f or "y" not in f:
                raise ValueError(f"{path} must hold arrays 'x' (N,H,W,C) uint8 and 'y' int64")
            x, y = f["x"], f["y"]
    except ValueError:
        raise
    except Exception as err:  # a truncated or corrupt file: zipfile, pickle and OS errors
        raise ValueError(f"{path} is not a readable npz file ({type(err).__name__}: {err}); "
                         f"delete it or copy it again") from err
    info = INFO[name]
    c, h, w = info.shape
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] != c or len(x) != len(y):
        raise ValueError(f"{path}: expected x uint8 (N,H,W,{c}) and y of length N, "
                         f"got x {x.dtype} {x.shape} and y {y.shape}")
    if x.shape[1:3] != (h, w):
        raise ValueError(f"{path}: {name} images are {h}x{w}, got x of shape {x.shape}")
    if len(x) == 0:
        raise ValueError(f"{path}: holds zero images; expected at least one")
    k = len(info.classes)
    if not np.issubdtype(y.dtype, np.integer) or y.ndim not in (1, 2) or \
            y.min() < 0 or y.max() >= k:
        raise ValueError(f"{path}: y must hold integer class indices in [0, {k}) for {name}, "
                         f"got {y.dtype} {y.shape} with values in [{y.min()}, {y.max()}]")
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    return Dataset(x, torch.from_numpy(y.astype(np.int64)), info, f"mirror:{path}")


def _from_torchvision(name: str, split: str, root: Path, download: bool) -> Dataset | None:
    """Read a torchvision dataset into tensors; None when its files are absent."""
    import torchvision.datasets as tvd

    train = split == "train"
    timeout = download_timeout()
    try:
        with _socket_timeout(timeout):
            return _read_torchvision(tvd, name, split, train, root, download)
    except TimeoutError as err:  # socket.timeout: the server stopped answering
        raise FileNotFoundError(
            f"downloading {name} ({split}) into {root} timed out: no answer for {timeout:g} s "
            f"({TIMEOUT_ENV}). Retry on a better network, or set {DATA_ENV} to a folder with "
            f"the files") from err


def download_timeout() -> float:
    """Seconds a download waits for the server: ``$REPRTUT_DOWNLOAD_TIMEOUT`` (default 60)."""
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_TIMEOUT
    try:
        t = float(value)
    except ValueError:
        t = math.nan
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"{TIMEOUT_ENV}={value!r} must be a number of seconds > 0")
    return t


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """socket's default timeout set for the block (torchvision's downloads use urllib without
    one, which waits forever on a silent server), then restored."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


def _read_torchvision(tvd, name, split, train, root, download):
    try:
        if name in ("mnist", "fashion_mnist"):
            cls = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
            ds = cls(root, train=train, download=download)
            x, y = ds.data.unsqueeze(1), ds.targets
        elif name == "cifar10":
            ds = tvd.CIFAR10(root, train=train, download=download)
            x, y = torch.from_numpy(ds.data).permute(0, 3, 1, 2), torch.tensor(ds.targets)
        elif name == "svhn":
            ds = tvd.SVHN(root, split=split, download=download)
            x, y = torch.from_numpy(ds.data), torch.from_numpy(ds.labels)
        else:
            return _celeba(root, split, download)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        if "not found" in str(err).lower() or "download" in str(err).lower():
            return None
        raise
    except TimeoutError:
        raise
    except OSError as err:  # no network while downloading
        if isinstance(getattr(err, "reason", None), TimeoutError):  # urllib's URLError(timeout)
            raise TimeoutError(str(err)) from err
        return None
    return Dataset(x.contiguous(), y.long(), INFO[name], f"torchvision:{root}")


def _celeba(root: Path, split: str, download: bool) -> Dataset | None:
    """CelebA at 64x64 with its 40 attributes; decoded once, then kept as an npz."""
    import torchvision.datasets as tvd
    import torchvision.transforms.v2 as T

    tf = T.Compose([T.CenterCrop(178), T.Resize(64, antialias=True), T.PILToTensor()])
    ds = tvd.CelebA(root, split="valid" if split == "test" else split, target_type="attr",
                    transform=tf, download=download)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    y = ds.attr.long()
    out = root / "npz" / f"celeba-{split}.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez(tmp, x=x.permute(0, 2, 3, 1).numpy(), y=y.numpy())
    os.replace(tmp, out)
    return Dataset(x, y, INFO["celeba"], f"torchvision:{root}")


def random_crop_flip(x: torch.Tensor, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Whole-batch augmentation: random translation by up to ``pad`` pixels and h-flips.

    x: float (B, C, H, W). The image is reflect-padded and cropped back with two gathers, so
    every image gets its own shift without a Python loop.
    """
    b, c, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b, 1), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), device=x.device)
    rows = (torch.arange(h, device=x.device) + dy)[:, None, :, None].expand(b, c, h, w + 2 * pad)
    xp = xp.gather(2, rows)
    cols = (torch.arange(w, device=x.device) + dx)[:, None, None, :].expand(b, c, h, w)
    out = xp.gather(3, cols)
    if flip:
        mask = torch.rand(b, 1, 1, 1, device=x.device) < 0.5
        out = torch.where(mask, out.flip(3), out)
    return out


class TensorLoader:
    """Batches of a :class:`Dataset` held on the device as uint8.

    Yields ``(x, y)`` with x float (B, C, H, W) in [0, 1] (channels_last on CUDA) and y the
    labels. The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run sees the
    same batches as an uninterrupted one; call :meth:`set_epoch` before iterating.
    """

    def __init__(self, data: Dataset, batch_size: int, *, shuffle: bool = True,
                 drop_last: bool = False, augment: bool = False, seed: int = 0,
                 device: torch.device | str | None = None):
        if not isinstance(data, Dataset):
            raise validate.ArgumentTypeError(f"data must be a reprtut.data.Dataset (from load), "
                                             f"got {type(data).__name__}")
        batch_size = validate.count(batch_size, "batch_size", min=1)
        seed = validate.count(seed, "seed", min=0)
        shuffle, drop_last = validate.flag(shuffle, "shuffle"), validate.flag(drop_last, "drop_last")
        augment = validate.flag(augment, "augment")
        self.device = torch.device(device) if device is not None else default_device()
        self.x = data.x.to(self.device)
        self.y = data.y.to(self.device)
        self.info = data.info
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augment, self.seed, self.epoch = augment, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.y) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __iter__(self):
        n = len(self.y)
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=g).to(self.device)
        else:
            order = torch.arange(n, device=self.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.x[idx].float().div_(255)
            if self.augment:
                x = random_crop_flip(x)
            yield to_device_layout(x, self.device), self.y[idx]
