"""Multi-task training with hard parameter sharing (Caruana, 1997): one feature map F, one
classifier C_t per task, trained on the average of the tasks' cross-entropies.

Section 5 of the perceptual-regularization paper (figure 7) trains it on every pair of
CelebA's tasks and on all three, as a baseline for the transfer of F to a task it was not
trained on (``book/03a_perceptual_transfer.md``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from .. import validate
from .base import Objective, accuracy_metric, register


def _fresh_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every layer re-initialised."""
    new = copy.deepcopy(module)
    for m in new.modules():
        if hasattr(m, "reset_parameters"):
            m.reset_parameters()
    return new


@register("multitask")
class MultiTask(Objective):
    """Hard parameter sharing (Caruana, 1997; paper, section 5 and figure 7).

    One feature map F, one classifier C_t per task t of ``tasks`` (columns of the label
    matrix y (B, T)), trained on the average cross-entropy (1/|tasks|) sum_t CE(C_t(F(x)), y_t).
    The model's own head is the classifier of ``tasks[0]``; the objective owns the others.
    Metrics: loss and ``acc_<t>`` per task; evaluation gives ``test_acc_<t>``.
    """

    def __init__(self, model: nn.Module, tasks: list[int] | tuple[int, ...]):
        super().__init__(model)
        if not hasattr(model, "features") or not hasattr(model, "head"):
            raise ValueError(f"MultiTask needs a Classifier (features, head), "
                             f"got {type(model).__name__}")
        if isinstance(tasks, (str, bytes)) or not hasattr(tasks, "__iter__"):
            raise validate.ArgumentTypeError(f"tasks must be a list of label columns, got {tasks!r}")
        tasks = [validate.count(t, "tasks", min=0) for t in tasks]
        if not tasks or len(set(tasks)) != len(tasks) or any(t < 0 for t in tasks):
            raise ValueError(f"tasks must be distinct non-negative label columns, got {tasks}")
        self.tasks = tasks
        self.extra_heads = nn.ModuleList([_fresh_copy(model.head) for _ in tasks[1:]])

    @property
    def heads(self) -> list[nn.Module]:
        """C_t for each task, in the order of ``tasks``."""
        return [self.model.head, *self.extra_heads]

    def _check_labels(self, y: torch.Tensor) -> None:
        if y.dim() != 2 or y.shape[1] <= max(self.tasks):
            raise ValueError(f"multi-task labels must be (B, T) with T > {max(self.tasks)}, "
                             f"got {tuple(y.shape)}")

    def loss(self, x, y):
        self._check_labels(y)
        z = self.model.features(x)                               # (B, d)
        metrics, losses = {}, []
        for t, head in zip(self.tasks, self.heads):
            logits = head(z)
            losses.append(nnf.cross_entropy(logits, y[:, t]))
            metrics[f"acc_{t}"] = accuracy_metric(logits, y[:, t])
        loss = torch.stack(losses).mean()
        return loss, {"loss": loss.detach(), **metrics}

    @torch.no_grad()
    def evaluate(self, x, y, batch_size: int = 1000):
        self._check_labels(y)
        correct = torch.zeros(len(self.tasks), device=x.device)
        for i in range(0, len(x), batch_size):
            z = self.model.features(x[i:i + batch_size])
            yb = y[i:i + batch_size]
            correct += torch.stack([(h(z).argmax(1) == yb[:, t]).sum()
                                    for t, h in zip(self.tasks, self.heads)])
        return {f"test_acc_{t}": c / len(x) for t, c in zip(self.tasks, correct)}
