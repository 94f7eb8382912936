"""Training methods of the book, one file each; every method is an Objective for one loop.

A method imports nothing above the loop (:mod:`reprtut.train`): a model that starts from
another trained model names it in its :class:`~reprtut.cache.ModelSpec` (``init``), and the
model cache resolves it.
"""

from .base import METHODS, Objective, accuracy_metric, build, register
from .standard import Standard
from .adversarial import PGDTraining
from .perceptual import PerceptualRegularization
from .multitask import MultiTask
from .trades import TRADES
from .afd import AFD, FeatureMatching
from .low_rank import LowRank
from .vaegan import VAEGANTraining

__all__ = ["METHODS", "Objective", "accuracy_metric", "build", "register", "Standard", "PGDTraining",
           "MultiTask", "PerceptualRegularization", "TRADES", "AFD", "FeatureMatching", "LowRank",
           "VAEGANTraining"]
