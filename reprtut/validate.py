"""Argument checks shared by every public entry point of the package.

Each check raises an error that names the parameter, shows the value received and says what
would be accepted, so a wrong call fails at once with a message that says what to fix
instead of deep inside torch, or worse, returning a wrong number. Wrong types raise
:class:`ArgumentTypeError` (a ``TypeError`` that is also a ``ValueError``, so callers may
catch either); wrong values raise ``ValueError``.

What is accepted:

* images: a floating-point tensor (B, C, H, W), B >= 1, every pixel finite and in [0, 1]
  (normalisation is the model's first layer). float16, bfloat16 and float32 are accepted;
  **float64 is refused**, not cast: the models hold float32 weights, a silent cast would change
  the dtype of what an attack returns, and ``x.float()`` says the same thing explicitly.
  uint8 images (0-255) are refused with a hint to divide by 255.
* labels: an int64 tensor of shape (B,) with values in [0, K), K the model's number of
  classes, which the caller passes (:func:`reprtut.nn.num_classes` reads it off a model).
* real numbers: Python ints and floats, numpy scalars and 0-d tensors (not bools), finite
  unless ``allow_inf``; counts: Python or numpy integers (not bools).

The image and label checks read the batch back from the device once (a single small
transfer at the entry of a call), never inside a loop.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable

import numpy as np
import torch
import torch.nn as nn

IMAGE_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (catchable as ``TypeError`` or ``ValueError``)."""


def _show(v) -> str:
    """A short description of a value for an error message."""
    if torch.is_tensor(v):
        return f"a {v.dtype} tensor of shape {tuple(v.shape)}"
    if isinstance(v, np.ndarray):
        return f"a numpy {v.dtype} array of shape {v.shape}"
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


# ------------------------------------------------------------------------------ numbers

def real(v, name: str, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False, allow_inf: bool = False,
         allow_none: bool = False) -> float | None:
    """``v`` as a Python float, checked to be a real number in [low, high].

    Accepts ints, floats, numpy scalars and 0-d (or one-element) tensors; refuses bools,
    strings and NaN always, and infinities unless ``allow_inf``. ``low_open`` / ``high_open``
    make the bounds strict. ``allow_none`` passes None through.
    """
    if v is None and allow_none:
        return None
    if torch.is_tensor(v) and v.numel() == 1 and not v.dtype == torch.bool:
        v = v.item()
    elif isinstance(v, np.ndarray) and v.ndim == 0:
        v = v.item()
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a real number{_range(low, high, low_open, high_open).format(name=name)}"
                                f"{' or None' if allow_none else ''}, got {_show(v)}")
    f = float(v)
    bad = math.isnan(f) or (math.isinf(f) and not allow_inf)
    if low is not None:
        bad = bad or (f <= low if low_open else f < low)
    if high is not None:
        bad = bad or (f >= high if high_open else f > high)
    if bad:
        finite = "" if allow_inf else "finite "
        raise ValueError(f"{name} must be a {finite}number{_range(low, high, low_open, high_open).format(name=name)}, "
                         f"got {_show(v)}")
    return f


def _range(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f" with {{name}} {'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f" with {{name}} {'<' if high_open else '<='} {high:g}"
    return ""


def count(n, name: str, *, min: int | None = 0, max: int | None = None,
          allow_none: bool = False) -> int | None:
    """``n`` as a Python int in [min, max] (min None: no lower bound); accepts Python and numpy
    integers (and integral 0-d integer tensors), refuses bools, floats (even 2.0) and strings."""
    if n is None and allow_none:
        return None
    if torch.is_tensor(n) and n.numel() == 1 and not n.is_floating_point() and n.dtype != torch.bool:
        n = n.item()
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral):
        bound = "" if min is None else f" >= {min}" if max is None else f" in [{min}, {max}]"
        raise ArgumentTypeError(f"{name} must be an integer{bound}{' or None' if allow_none else ''}, "
                                f"got {_show(n)}")
    n = int(n)
    if (min is not None and n < min) or (max is not None and n > max):
        bound = f">= {min}" if max is None else f"in [{min}, {max}]"
        raise ValueError(f"{name} must be an integer {bound}, got {n}")
    return n


def choice(v, name: str, options: Iterable[str]) -> str:
    """``v`` if it is one of ``options`` (strings), else a ValueError listing them."""
    options = tuple(options)
    if not isinstance(v, str) or v not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}, got {_show(v)}")
    return v


def flag(v, name: str) -> bool:
    """``v`` if it is a bool (Python or numpy)."""
    if not isinstance(v, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {_show(v)}")
    return bool(v)


def module(m, name: str = "model") -> nn.Module:
    """``m`` if it is a torch ``nn.Module``."""
    if not isinstance(m, nn.Module):
        raise ArgumentTypeError(f"{name} must be a torch.nn.Module (a classifier taking images in "
                                f"[0, 1]), got {_show(m)}")
    return m


# ------------------------------------------------------------------------------ tensors

def images(x, name: str = "x", *, ndim: int = 4, check_range: bool = True,
           allow_double: bool = False) -> torch.Tensor:
    """``x`` if it is a non-empty float batch (B, C, H, W) of finite pixels in [0, 1].

    ``ndim`` other than 4 accepts batches of other rank (e.g. (B, d) vectors). The range
    check reads two numbers back from the device (one sync); ``check_range=False`` skips it.
    ``allow_double`` admits float64 where no model is involved (image measures such as SSIM).
    """
    if not torch.is_tensor(x):
        hint = " (torch.as_tensor(x) / 255 for a numpy uint8 image)" if isinstance(x, np.ndarray) else ""
        raise ArgumentTypeError(f"{name} must be a torch tensor of images in [0, 1] with shape "
                                f"(B, C, H, W), got {_show(x)}{hint}")
    if not x.is_floating_point():
        hint = "; for 0-255 images use x.float() / 255" if x.dtype == torch.uint8 else ""
        raise ArgumentTypeError(f"{name} must be a float tensor of images in [0, 1], got {_show(x)}{hint}")
    if x.dtype not in IMAGE_DTYPES and not (allow_double and x.dtype == torch.float64):
        raise ArgumentTypeError(f"{name} must be float32 (or float16/bfloat16) like the models' "
                                f"weights, got {_show(x)}; pass {name}.float()")
    if x.dim() != ndim:
        shape = "(B, C, H, W)" if ndim == 4 else f"{ndim}-D (B, ...)"
        hint = f"; for one image use {name}[None]" if ndim == 4 and x.dim() == 3 else ""
        raise ValueError(f"{name} must be a batch of shape {shape}, got shape {tuple(x.shape)}{hint}")
    if x.shape[0] == 0 or x.numel() == 0:
        raise ValueError(f"{name} must hold at least one image, got shape {tuple(x.shape)}")
    if check_range:
        check_ranges(x, name)
    return x


def check_ranges(x: torch.Tensor | None, x_name: str = "x", *, y: torch.Tensor | None = None,
                 num_classes: int | None = None, y_name: str = "y") -> None:
    """The value checks of :func:`images` (finite pixels in [0, 1]) and :func:`labels`
    (indices in [0, num_classes)) for tensors whose types and shapes are already checked,
    with one read back from the device for both."""
    parts = []
    if x is not None:
        mm = torch.aminmax(x.detach())
        parts += [mm.min.float(), mm.max.float()]
    if y is not None and y.numel():
        mm = torch.aminmax(y)
        parts += [mm.min.float(), mm.max.float()]
    if not parts:
        return
    values = torch.stack(parts).tolist()
    if x is not None:
        lo, hi = values[:2]
        values = values[2:]
        if not (0.0 <= lo and hi <= 1.0):  # NaN fails both comparisons, so it is caught here
            what = "NaN" if math.isnan(lo) or math.isnan(hi) else f"values in [{lo:.3g}, {hi:.3g}]"
            hint = "; for 0-255 images divide by 255" if 1.0 < hi <= 255 else ""
            raise ValueError(f"{x_name}: pixels must lie in [0, 1] and be finite (normalisation "
                             f"belongs inside the model), got {what}{hint}")
    if values:
        lo, hi = values
        if lo < 0 or (num_classes is not None and hi >= num_classes):
            accepted = f"[0, {num_classes})" if num_classes is not None else ">= 0"
            raise ValueError(f"{y_name}: class indices must lie in {accepted}, got values in "
                             f"[{lo:.0f}, {hi:.0f}] (-1 and -100 are not labels)")


def labels(y, n: int, num_classes: int | None = None, name: str = "y", *,
           x_name: str = "x", check_range: bool = True) -> torch.Tensor:
    """``y`` if it is an int64 tensor of ``n`` class indices (shape (n,)) in [0, num_classes).

    ``num_classes`` None checks only y >= 0. Negative labels (-1, cross-entropy's ignore
    index -100) and labels >= K are refused: attacks would silently skip such examples.
    Reads two numbers back from the device.
    """
    if not torch.is_tensor(y):
        raise ArgumentTypeError(f"{name} must be a tensor of {n} int64 class indices (shape ({n},)), "
                                f"got {_show(y)}")
    if y.shape != (n,):
        hint = f"; flatten it with {name}.view(-1)" if y.numel() == n else ""
        raise ValueError(f"{name} must be a tensor of {n} labels (shape ({n},)) to match {x_name}, "
                         f"got shape {tuple(y.shape)}{hint}")
    if y.dtype != torch.long:
        raise ArgumentTypeError(f"{name} must hold int64 class indices (torch.long), got {y.dtype}"
                                f"{'; pass ' + name + '.long()' if not y.is_floating_point() else ''}")
    if check_range:
        check_ranges(None, y=y, num_classes=num_classes, y_name=name)
    return y


def same_device(name: str, t: torch.Tensor, like: torch.Tensor, like_name: str = "x") -> None:
    """Raise unless tensor ``t`` lives on the device of ``like``."""
    if t.device != like.device:
        raise ValueError(f"{name} is on {t.device} but {like_name} is on {like.device}; move "
                         f"them to one device")


def batch(x, y, *, x_name: str = "x", y_name: str = "y", in_channels: int | None = None,
          num_classes: int | None = None, check_range: bool = True):
    """Check a batch of images and labels at once: ``x`` images (with ``in_channels`` channels, when
    given), ``y`` labels of x's length on x's device, in [0, num_classes) (>= 0 when
    ``num_classes`` is None). ``check_range=False`` checks types and shapes only, without
    reading from the device. Returns (x, y). :func:`reprtut.nn.check_batch` reads the model's
    channels and classes and passes them here."""
    images(x, x_name, check_range=False)
    labels(y, x.shape[0], None, y_name, x_name=x_name, check_range=False)
    same_device(y_name, y, x, x_name)
    channels(x, in_channels, x_name)
    if check_range:
        check_ranges(x, x_name, y=y, num_classes=num_classes, y_name=y_name)  # one read
    return x, y


def channels(x: torch.Tensor, expected: int | None, name: str = "x") -> None:
    """Raise when the image batch ``x`` has another number of channels than ``expected``
    (a model's, from :func:`reprtut.nn.input_channels`); silent when ``expected`` is None."""
    if expected is not None and x.shape[1] != expected:
        raise ValueError(f"{name} has {x.shape[1]} channels, but the model takes {expected}-channel "
                         f"images; got shape {tuple(x.shape)}")

