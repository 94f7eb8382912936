"""The contract between a training method and the one training loop (:func:`reprtut.train.fit`).

A method is an :class:`Objective`: an ``nn.Module`` that owns the classifier and any module
only the method needs (a decoder, a discriminator), computes a loss from a batch, and decides
how many optimizer updates a batch makes. The loop owns everything else: devices, mixed
precision, the optimizers' schedules, progress, checkpoints and resuming.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from ..nn import under

Metrics = dict[str, torch.Tensor]
Update = Callable[[str, torch.Tensor], None]


class Objective(nn.Module):
    """Base class of training methods. Subclasses implement :meth:`loss`, and override
    :meth:`param_groups` and :meth:`step` when they own several optimizers."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module (a reprtut classifier), got "
                            f"{type(model).__name__}")
        self.model = model
        self.frozen_prefixes: tuple[str, ...] = ()

    def freeze(self, prefixes) -> None:
        """Freeze the classifier's parameters whose names (``model.named_parameters()``) lie
        under one of ``prefixes`` (:func:`reprtut.nn.under`; e.g. ``("features",)``, the
        feature map F): they get no gradients and, through :meth:`train`, the modules under
        those names stay in eval mode while the rest trains (batch-norm statistics and dropout
        fixed). A prefix that names no parameter raises ``ValueError``."""
        prefixes = tuple(prefixes)
        names = [n for n, _ in self.model.named_parameters()]
        missing = [p for p in prefixes if not any(under(n, (p,)) for n in names)]
        if missing:
            raise ValueError(f"freeze: {missing} name no parameters of the model; prefixes must "
                             f"be names from model.named_parameters(), e.g. 'features'")
        for n, p in self.model.named_parameters():
            if under(n, prefixes):
                p.requires_grad_(False)
        self.frozen_prefixes = prefixes
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for name, m in self.model.named_modules():
            if under(name, self.frozen_prefixes):
                m.eval()  # frozen layers stay in inference mode
        return self

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        """Scalar loss to minimise and metrics (0-d tensors, left on the device)."""
        raise NotImplementedError

    def param_groups(self) -> dict[str, tuple[list[nn.Parameter], dict]]:
        """Optimizer name -> (parameters, overrides of the TrainConfig such as ``lr``).

        The default is one optimizer, ``"main"``, over every parameter of the objective.
        """
        return {"main": ([p for p in self.parameters() if p.requires_grad], {})}

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> Metrics:
        """Metrics on held-out data (x in [0, 1]), as 0-d tensors; called in eval mode after
        every epoch. The default is the clean accuracy of the classifier, ``test_acc``."""
        correct = torch.zeros((), device=x.device)
        for i in range(0, len(x), batch_size):
            correct += (self.model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum()
        return {"test_acc": correct / len(x)}

    def step(self, x: torch.Tensor, y: torch.Tensor, update: Update) -> Metrics:
        """One training step on a batch; ``update(name, loss)`` back-propagates ``loss`` and
        steps optimizer ``name`` (zeroing its gradients first)."""
        loss, metrics = self.loss(x, y)
        update("main", loss)
        return metrics


def accuracy_metric(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correct predictions as a 0-d tensor (no host sync)."""
    return (logits.argmax(1) == y).float().mean()


METHODS: dict[str, type[Objective]] = {}


def register(name: str):
    """Class decorator: make a method available to the model cache under ``name``."""
    def wrap(cls):
        METHODS[name] = cls
        cls.method_name = name
        return cls
    return wrap


def build(name: str, model: nn.Module, **kwargs) -> Objective:
    """Instantiate method ``name`` around ``model``."""
    if not isinstance(name, str) or name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name](model, **kwargs)
