"""Training methods of the book, one file each; every method is an Objective for one loop."""

from .base import METHODS, Objective, accuracy_metric, build, register
from .standard import Standard
from .adversarial import PGDTraining
from .perceptual import FrozenTransfer, MultiTask, PerceptualRegularization
from .trades import TRADES
from .afd import AFD, FeatureMatching
from .low_rank import LowRank
from ..manifold import VAEGANTraining  # the VAE-GAN of chapter 5 lives with its manifold tools

__all__ = ["METHODS", "Objective", "accuracy_metric", "build", "register", "Standard", "PGDTraining",
           "FrozenTransfer", "MultiTask", "PerceptualRegularization", "TRADES", "AFD",
           "FeatureMatching", "LowRank", "VAEGANTraining"]
