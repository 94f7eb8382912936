"""Training methods of the book, one file each; every method is an Objective for one loop."""

from .base import METHODS, Objective, accuracy_metric, build, register
from .standard import Standard
from .adversarial import PGDTraining
from .perceptual import FrozenTransfer, MultiTask, PerceptualRegularization

__all__ = ["METHODS", "Objective", "accuracy_metric", "build", "register", "Standard", "PGDTraining"]
