"""reprtut: the package behind the book *Representations and Adversarial Robustness*.

Modules, one concern each: ``profiles`` (scale), ``device`` (device and precision), ``data``
(datasets and the GPU-resident loader), ``models``, ``methods`` (training objectives),
``train`` (the one training loop), ``cache`` (trained models), ``attacks``, ``evaluate``,
``viz`` and ``recipes`` (the models the chapters share).
"""

from . import attacks, cache, data, device, evaluate, methods, models, profiles, recipes, train, viz

__version__ = "0.1.0"
__all__ = ["attacks", "cache", "data", "device", "evaluate", "methods", "models", "profiles",
           "recipes", "train", "viz"]
