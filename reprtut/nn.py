"""What the package reads off a model, and the states it puts a model in.

* :func:`frozen` — a context manager: eval mode and no parameter gradients inside the block,
  both restored on exit (every attack and measurement runs the model inside it);
* :func:`find_layer` and :class:`capture` — a named sub-module, and the outputs of named
  layers collected during forward passes (the low-rank layer and its analysis);
  :func:`under`, whether a parameter or module name lies under given prefixes (what a
  :class:`~reprtut.cache.ModelSpec` copies from its ``init`` and freezes);
* :func:`num_classes` and :func:`input_channels` — the number of classes K of a classifier
  and the number of image channels it takes;
* :func:`check_batch` — a classifier's batch checked against those two facts with
  :mod:`reprtut.validate`, which itself checks numbers and tensors only.
"""

from __future__ import annotations

import contextlib
from typing import Annotated

import torch
import torch.nn as nn

from . import declare, validate
from .models import Normalize


@contextlib.contextmanager
def frozen(model: nn.Module):
    """Eval mode and no parameter gradients inside the block; both restored on exit.

    Attacks differentiate with respect to the input only: freezing the parameters skips their
    gradients (about a third of the backward pass), and eval mode keeps batch-norm statistics
    and dropout out of the attack. Each sub-module gets its own mode back, so layers that a
    training objective keeps in eval mode (:meth:`reprtut.methods.Objective.freeze`) stay so.
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, mode in modes:
            m.training = mode


def find_layer(model: nn.Module, name: str) -> nn.Module:
    """The sub-module of ``model`` called ``name`` (e.g. ``"features"`` for R(x), or
    ``"features.14"``, the 15th layer of the feature stack)."""
    modules = dict(model.named_modules())
    if not isinstance(name, str) or name not in modules:
        raise ValueError(f"layer {name!r} is not a module of the model; layers must be names "
                         f"from model.named_modules(), e.g. 'features' or 'features.14'")
    return modules[name]


def under(name: str, prefixes) -> bool:
    """Whether the parameter or module ``name`` lies under one of the dotted ``prefixes``:
    ``"features"`` covers ``"features"`` and ``"features.0.weight"``, not ``"features2"``."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


class capture:
    """Context manager: the outputs of the named layers of ``model``, flattened to (B, m)
    each, are collected in ``.outputs`` (name -> tensor) during every forward pass inside it.
    Gradients flow through the captured tensors; the hooks are removed on exit."""

    def __init__(self, model: nn.Module, layers):
        self.layers = list(layers)
        self.modules = [find_layer(model, n) for n in self.layers]
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles = []

    def __enter__(self):
        for name, mod in zip(self.layers, self.modules):
            self._handles.append(mod.register_forward_hook(
                lambda _m, _i, out, name=name: self.outputs.__setitem__(name, out.flatten(1))))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return False


def num_classes(model: nn.Module, x: torch.Tensor | None = None) -> int | None:
    """Number of classes K of a classifier: its head's ``out_features`` when it has a linear
    head, else the width of the logits of one image of ``x`` (one forward pass, inside
    :func:`frozen`), else None."""
    head = getattr(model, "head", None)
    if isinstance(head, nn.Linear):
        return head.out_features
    if isinstance(head, nn.Sequential) and len(head) and isinstance(head[-1], nn.Linear):
        return head[-1].out_features
    inner = getattr(model, "model", None)  # wrappers such as masking.SaturatedLogits
    if isinstance(inner, nn.Module) and inner is not model:
        k = num_classes(inner, None)
        if k is not None:
            return k
    if x is None:
        return None
    with torch.no_grad(), frozen(model):
        out = model(x[:1])
    return out.shape[-1] if out.dim() == 2 else None


def input_channels(model: nn.Module) -> int | None:
    """Number of image channels the model takes: that of its input normalisation (the first
    layer of every reprtut classifier), or None for a model without one."""
    for m in model.modules():
        if isinstance(m, Normalize):
            return m.mean.numel()
    return None


def check_batch(model, x, y, *, x_name: str = "x", y_name: str = "y", classes: bool = True):
    """A classifier's batch checked at once: ``model`` a module, ``x`` images with the
    model's channels, ``y`` labels of x's length within the model's classes (when
    ``classes``). The types and shapes are checked before the one forward pass that
    :func:`num_classes` may need; then one read from the device checks the values.
    Returns (x, y)."""
    validate.module(model)
    validate.batch(x, y, x_name=x_name, y_name=y_name, in_channels=input_channels(model),
                   check_range=False)
    k = num_classes(model, x) if classes else None
    validate.check_ranges(x, x_name, y=y, num_classes=k, y_name=y_name)
    return x, y


# The declarations (reprtut.declare) of what a classifier's public functions take: a model
# whose classes and channels the checks read, its images and their labels.
Model = Annotated[nn.Module, declare.Model(classes=num_classes, channels=input_channels)]
Images = Annotated[torch.Tensor, declare.Images(model="model")]
Labels = Annotated[torch.Tensor, declare.Labels("x")]


class _Classifier(declare.Model):
    """A :class:`reprtut.models.Classifier`: R(x) = ``model.features(x)``, W = ``model.head.weight``."""
    def check(self, v, name, args, reads, specs):
        v = super().check(v, name, args, reads, specs)
        if not isinstance(getattr(v, "features", None), nn.Module) or \
                not isinstance(getattr(v, "head", None), nn.Linear):
            raise ValueError(f"{name} must be a reprtut.models.Classifier (R = model.features, "
                             f"W = model.head.weight), got {type(v).__name__}")
        return v


# A classifier whose representation R and head W the chapters read (Engstrom et al.'s R).
Classifier = Annotated[nn.Module, _Classifier(classes=num_classes, channels=input_channels)]
