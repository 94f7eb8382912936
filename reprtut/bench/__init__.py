"""Benchmarks of the package on the machine at hand, as JSON (``python -m reprtut.bench``).

Subcommands, one module each:

* ``train``  (:mod:`.training`): standard and PGD-10 l_inf adversarial training throughput of
  ResNet-18 on CIFAR-10-shaped synthetic batches, as seconds per 50,000-image epoch and
  achieved TFLOP/s against the device's bf16 peak;
* ``attack`` (:mod:`.attack`): reprtut's PGD-20 against torchattacks', alternated in one process;
* ``mnist``  (:mod:`.mnist`): seconds to 99 % test accuracy with the book's MNIST recipe;
* ``plan``   (:mod:`.plan`, counted by :mod:`.costs`, checked by :mod:`.calibration`): the
  cost model, TFLOP and estimated minutes of every page on this CPU and four GPUs.

Every result carries :func:`.common.metadata`: device and its name, torch version, commit,
command line, UTC date, profile and whether the data was synthetic. Defaults are sized by the
device: the published sizes on GPUs, small ones on CPUs (flags override both).
``benchmarks/README.md`` says how the recorded results of the book's appendix were made.
"""

from .common import PEAK_TFLOPS, metadata, peak_tflops
from . import plan

__all__ = ["PEAK_TFLOPS", "metadata", "peak_tflops", "plan"]
