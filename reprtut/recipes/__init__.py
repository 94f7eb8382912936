"""The trained models the chapters share, one function each, scaled by the active profile.

Each function returns a :class:`~reprtut.cache.ModelSpec`; ``reprtut.cache.get(spec)`` trains
it once and serves it to every chapter and test that asks for it afterwards. A recipe reads
no data and checks nothing on disk: what a page chooses at run time (real data or a
stand-in) it passes in. One file per chapter family, in book order; every recipe is also
reachable here as ``reprtut.recipes.<name>``.

* :mod:`.policies` — the threat models and PGD policies that several chapters train with;
* :mod:`.adversarial` — chapters 1 and 2 (MNIST and CIFAR-10, standard and PGD training);
* :mod:`.perceptual_regularization` — chapter 3 (perceptual regularization, transfer);
* :mod:`.representations` — chapter 4 (the l2-robust CIFAR-10 model and its judge);
* :mod:`.interpretability` — chapter 5 (models at several eps, the VAE-GAN, ROAR and KAR);
* :mod:`.afd` — chapter 6 (TRADES, AFD, the l2 ablation; the learning-rate studies);
* :mod:`.low_rank` — chapter 7 (the LR layer's fine-tuning of the CIFAR-10 classifier).
"""

from .policies import CIFAR_EPS, MNIST_EPS
from .adversarial import CIFAR_VALIDATION, cifar_arch, cifar_pgd, cifar_standard, mnist_pgd, mnist_standard
from .perceptual_regularization import (multitask, perceptual, perceptual_lambdas, perceptual_mnist,
                                        perceptual_sgd, supervised, transfer, transfer_lambda,
                                        transfer_spec)
from .representations import CIFAR_L2_EPS, cifar_judge, cifar_l2
from .interpretability import (analysis_eps, interp_cifar, interp_eps, interp_mnist, roar_classifier,
                               roar_fill, roar_fractions, roar_retrains, vaegan_cifar, vaegan_mnist)
from .afd import (CIFAR_LRS, MNIST_LRS, afd_cifar_pgd, afd_cifar_standard, afd_cifar_surrogate,
                  cifar_afd, cifar_feature_matching, cifar_trades, mnist_afd, mnist_afd_study,
                  mnist_feature_matching, mnist_surrogate, mnist_trades, training_cost)
from .low_rank import (LOW_RANK_COLLAPSE, LOW_RANK_LAMBDAS, LOW_RANK_STRONG, NYSTROM_RUNS,
                       cifar_low_rank, low_rank_lambdas, low_rank_layers)

__all__ = ["CIFAR_EPS", "MNIST_EPS", "CIFAR_VALIDATION", "cifar_arch", "cifar_pgd", "cifar_standard", "mnist_pgd",
           "mnist_standard", "multitask", "perceptual", "perceptual_lambdas", "perceptual_mnist",
           "perceptual_sgd", "supervised", "transfer", "transfer_lambda", "transfer_spec",
           "CIFAR_L2_EPS", "cifar_judge", "cifar_l2", "interp_cifar", "interp_eps", "interp_mnist",
           "roar_classifier", "roar_fill", "roar_fractions", "roar_retrains", "vaegan_cifar", "analysis_eps",
           "vaegan_mnist", "CIFAR_LRS", "MNIST_LRS", "afd_cifar_pgd", "afd_cifar_standard",
           "cifar_afd", "cifar_feature_matching", "cifar_trades", "mnist_afd", "mnist_afd_study",
           "mnist_feature_matching", "mnist_trades", "afd_cifar_surrogate", "mnist_surrogate",
           "training_cost", "NYSTROM_RUNS", "LOW_RANK_COLLAPSE", "LOW_RANK_LAMBDAS",
           "LOW_RANK_STRONG", "cifar_low_rank", "low_rank_lambdas", "low_rank_layers"]
