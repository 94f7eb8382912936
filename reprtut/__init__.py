"""reprtut: the package behind the book *Representations and Adversarial Robustness*.

Modules, one concern each: ``profiles`` (scale), ``device`` (device and precision), ``data``
(datasets and the GPU-resident loader), ``models``, ``nn`` (what is read off a model, the
frozen-model context), ``methods`` (training objectives), ``train`` (the one training loop),
``cache`` (trained models, and the specs they start from), ``attacks``, ``evaluate``, ``viz``,
``stats`` (error bars), ``book`` (numbers quoted in the prose), ``recipes`` (the models the
chapters share, one file per chapter family), and for teaching ``check`` (the exercises'
checks), ``solutions`` (finding and removing them) and ``teaching`` (syllabus and index).
"""

from importlib import metadata as _metadata

from . import attacks, book, cache, data, device, evaluate, methods, models, nn, profiles, recipes, train, viz
from . import masking  # the gradient-masking checklist (chapter 2)
from . import derived  # datasets built from others (flanked MNIST, balanced CelebA)
from . import perceptual_analysis  # perceptions, attention, transfer matrices (chapter 3)
from . import representation  # R(x) and the tools that optimise it (chapter 4)
from . import images  # seeds, targets and image measures (chapter 4)
from . import stats  # error bars: Wilson intervals, t intervals of paired differences
from . import splits  # validation splits: held-out training images to tune on
from . import manifold, attribution, toy  # VAE-GAN projection, attribution maps and ROAR/KAR, the 2-D toy (chapter 5)
from . import sensitivity  # representation sensitivity, gradient landscape, dimensionality (chapter 6)
from . import low_rank_analysis  # VR_k, max-margin classifiers on PCA projections (chapter 7)
from . import bench  # benchmarks, and the cost model each page prints before it trains
from . import check, solutions, teaching  # the course: exercise checks, solutions, syllabus and index

__version__ = _metadata.version(__name__)  # pyproject.toml's, the one place it is written
__all__ = ["attacks", "book", "cache", "data", "device", "evaluate", "methods", "models", "nn",
           "profiles", "recipes", "stats", "train", "viz", "manifold", "attribution", "toy",
           "sensitivity", "low_rank_analysis", "masking", "derived", "perceptual_analysis",
           "representation", "images", "bench", "check", "solutions", "teaching", "splits"]
