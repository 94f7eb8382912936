"""The cost of every page of the book: what it trains and attacks, counted and timed.

``python -m reprtut.bench plan [--profile P] [--json FILE]`` prints, for each page of
``_toc.yml``, the arithmetic (TFLOP) of the models it trains from an empty cache (the
recipes the page asks :func:`reprtut.cache.get` for, with the models they start from) and of
its evaluations (attacks on test images), and the minutes that makes on this CPU (measured:
:func:`.costs.measure_cpu`) and on a T4, L4, A100 and H100 (:data:`.costs.GPUS`, stated
assumptions). Models already in the cache cost nothing: the estimates are *cold* ones, and
:func:`describe` says how many of a page's models are cached.

Each page's models are the recipe functions the page itself calls; its evaluations are
budgets (images x forward-and-gradient passes per image, summed over the attacks and their
eps grids) that approximate the page's cells, sized by the same profile values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch

from .. import derived, profiles
from .. import recipes as R
from ..cache import ModelSpec, path_of
from . import costs

# The Teaching part's pages read the chapters' sources and recorded times; they train nothing.
PAGES_WITHOUT_WORK = ("intro", "performance", "teaching/syllabus", "teaching/index",
                      "teaching/instructors")
# Seconds a page spends outside training and attacks (imports, data, figures): measured on
# this machine's CPU as the time of the appendix page, which trains and attacks nothing.
PAGE_OVERHEAD_S = 6.0


@dataclass(frozen=True)
class Attack:
    """``passes`` forward-and-input-gradient passes per image on ``images`` test images of
    the classifier trained by ``spec``."""

    spec: ModelSpec
    images: int
    passes: int


@dataclass
class Page:
    """What a page trains (``trains``: recipes, each with its ``init`` chain) and attacks."""

    trains: list[ModelSpec] = field(default_factory=list)
    attacks: list[Attack] = field(default_factory=list)

    def models(self) -> list[ModelSpec]:
        """Every model the page needs, its starting points first, each once."""
        seen, out = set(), []

        def visit(spec):
            if spec.init is not None:
                visit(spec.init)
            key = spec.key()
            if key not in seen:
                seen.add(key)
                out.append(spec)
        for spec in self.trains:
            visit(spec)
        return out


def _each(specs, images, passes):
    return [Attack(s, images, passes) for s in specs]


def _p01() -> Page:
    m = [R.mnist_standard(), R.mnist_pgd()]
    steps = profiles.pick(quick=10, full=100)
    n = profiles.pick(quick=500, full=10_000)
    # FGSM and PGD curves over 7 eps; the l2 grid (5 eps x 20 steps) on 200 images.
    return Page(m, _each(m, n, 7 + 7 * steps) + _each(m, 200, 5 * 20 + 2 * 40))


_AUTOATTACK_PASSES = 3_600   # APGD-CE 100 + APGD-T 9 x 100 + FAB-T 9 x 100 + Square 5,000 queries / 3


def _p02() -> Page:
    mnist, cifar = [R.mnist_standard(), R.mnist_pgd()], [R.cifar_standard(), R.cifar_pgd()]
    n = profiles.pick(quick=200, full=1000, paper=10000)
    steps = profiles.pick(quick=10, full=40)
    n_min, n_aa = profiles.pick(quick=30, full=100), profiles.pick(quick=50, full=500)
    queries = profiles.pick(quick=1000, full=5000)
    # Table (FGSM, 4 iterative attacks), sweeps (two 7-eps PGD grids, DeepFool, DDN, C&W),
    # the masking checklist (5x steps, 3 restarts, a transfer, Square) on MNIST.
    per_mnist = 1 + 4 * steps + 14 * steps + 50 + 3 * n_min + 16 * steps + queries // 3 + 40
    return Page(mnist + cifar,
                _each(mnist, n, per_mnist) + _each(cifar, n, 7 * steps) +
                [Attack(R.mnist_pgd(), n_aa, _AUTOATTACK_PASSES + steps + 1000 // 3)])


def _p03() -> Page:
    dataset = derived.attention_dataset()
    lambdas = R.perceptual_lambdas()
    trains = [R.perceptual(lam, dataset) for lam in lambdas]
    lo, mid = lambdas[0], lambdas[len(lambdas) // 2]
    trains += [R.perceptual_sgd(lam, dataset) for lam in (lo, mid)]
    return Page(trains)


def _transfer_specs(prefix, tasks) -> list[ModelSpec]:
    targets = {t: f"{prefix}_{t}" for t in tasks}
    lam = R.transfer_lambda(prefix)
    sources = [R.supervised(d) for d in targets.values()] + [R.perceptual(lam, d) for d in targets.values()]
    groups = [tuple(t for t in tasks if t != other) for other in tasks] + [tuple(tasks)]
    sources += [R.multitask(prefix, g) for g in groups]
    return [R.transfer(s, d) for s in sources for d in targets.values()]


def _p03a() -> Page:
    prefix, tasks = derived.transfer_family()
    return Page(_transfer_specs(prefix, tasks))


def _p03b() -> Page:
    model = R.perceptual_mnist(1e-2)
    dataset = derived.attention_dataset()
    trains = [model, R.mnist_standard()] + [R.perceptual(lam, dataset) for lam in R.perceptual_lambdas()]
    return Page(trains, [Attack(model, 1000 + 500, 20)])


def _p04() -> Page:
    std, rob, judge = R.cifar_standard(), R.cifar_l2(), R.cifar_judge()
    pick = profiles.pick
    n_attack, match = pick(quick=200, full=1000), pick(quick=40, full=200)
    invert, maximize = pick(quick=150, full=2000), pick(quick=60, full=200)
    # On each model: PGD-l2 on n_attack images, matching pairs at 4 eps, inversions (ten
    # classes), interpolations (about 8 alphas of a few pairs), feature visualisations and
    # additions (representation.budget's steps).
    per = []
    for m in (std, rob):
        per += [Attack(m, n_attack, pick(quick=10, full=20)), Attack(m, pick(quick=16, full=64) * 4, match),
                Attack(m, pick(quick=4, full=10) * 10, invert), Attack(m, 80, invert),
                Attack(m, 2 * pick(quick=16, full=64), maximize)]
    return Page([std, rob, judge], per)


def _interp_specs() -> tuple[list[ModelSpec], list[ModelSpec]]:
    eps_cw = R.interp_eps("l2")[-1]
    budgets = [(None, 0.0, "xent"), *((n, e, "xent") for n in ("l2", "linf") for e in R.interp_eps(n)),
               ("l2", eps_cw, "margin")]
    mnist = [R.interp_mnist(*b) for b in budgets]
    cifar = [R.interp_cifar()] + [R.interp_cifar(n, e) for n in ("l2", "linf")
                                  for e in R.interp_eps(n, "cifar10")]
    return mnist, cifar


def _p05() -> Page:
    pick = profiles.pick
    mnist, cifar = _interp_specs()
    # ROAR and KAR retrain one classifier per (attribution method, fraction, ROAR or KAR,
    # retrain) and explained model: two methods for every model, and a third set on CIFAR-10.
    per_model = len(R.roar_fractions()) * 2 * 2 * R.roar_retrains()
    occluded = [R.roar_classifier("mnist")] * (per_model * len(mnist)) + \
        [R.roar_classifier("cifar10")] * (per_model * (len(cifar) + 1))
    trains = mnist + [R.vaegan_mnist()] + cifar + [R.vaegan_cifar()]
    attacks = _each(mnist, pick(quick=300, full=2000), pick(quick=20, full=40) + 2)
    attacks += _each(cifar, pick(quick=300, full=2000), pick(quick=20, full=40) + 2)
    return Page(trains + _distinct(occluded), attacks)


def _distinct(specs: list[ModelSpec]) -> list[ModelSpec]:
    # ROAR and KAR retrain one classifier per (method, fraction, explained model) on occluded
    # images: the same recipe with another dataset, counted by renaming copies of it.
    from dataclasses import replace
    return [replace(s, name=f"{s.name}-{i}") for i, s in enumerate(specs)]


def _p06() -> Page:
    pick = profiles.pick
    specs = [R.mnist_standard(), R.mnist_pgd(), R.mnist_trades(), R.mnist_afd(),
             *R.mnist_afd_study().values(), R.mnist_feature_matching(lam=0.1)]
    four = specs[:4]
    steps = pick(quick=10, full=40)
    n = pick(quick=200, full=1000, paper=10000)
    # Validation PGD; the checklist (saturation, AutoAttack, Boundary); transfer table; sweeps.
    attacks = _each(specs[4:6], pick(quick=500, full=1000), steps)
    attacks += _each(four, n, 4 * steps + 2)
    strong = [specs[1], specs[3]]   # AutoAttack and Square on AT and AFD (the paper's table A3)
    attacks += _each(strong, pick(quick=20, full=100), _AUTOATTACK_PASSES + 500 // 3)
    attacks += _each(four, pick(quick=10, full=100), pick(quick=1000, full=5000) // 3)
    # Sweeps: PGD-l_inf, l2, l1 and MIM grids of 6, 3, 4, 5 eps, FGSM, DDN, DeepFool, C&W.
    attacks += _each(four + [specs[-1]], pick(quick=100, full=1000), 18 * steps + 20 + 3 * pick(quick=20, full=100))
    return Page(specs, attacks)


def _p06a() -> Page:
    pick = profiles.pick
    specs = [R.afd_cifar_standard(), R.afd_cifar_pgd(), R.cifar_trades(), R.cifar_afd(),
             R.cifar_afd(restart=1), R.afd_cifar_pgd(restart=1), R.cifar_trades(restart=1),
             R.cifar_feature_matching()]
    four = specs[:4]
    steps = pick(quick=10, full=20)
    attacks = _each(specs[1:7], 500, steps)   # the validation score of every run
    # The checklist at two eps (PGD on two losses), Square and AutoAttack on AT and AFD.
    attacks += _each(four, pick(quick=100, full=1000), 2 * 2 * steps + 2)
    strong = [specs[1], specs[3]]
    attacks += _each(strong, pick(quick=100, full=1000), 2 * 300 // 3)
    attacks += _each(strong, pick(quick=20, full=100), _AUTOATTACK_PASSES)
    attacks += _each(four, pick(quick=200, full=1000, paper=10000), 4 * steps + 2)
    attacks += _each(four + [specs[-1]], pick(quick=80, full=1000), 12 * steps + 50 + 3 * pick(quick=20, full=100))
    return Page(specs, attacks)


def _p07() -> Page:
    pick = profiles.pick
    specs = [R.cifar_low_rank(*lams) for lams in R.low_rank_lambdas()]
    specs.append(R.cifar_low_rank(two=True))
    eps = len(pick(quick=[2, 4, 8], full=[1, 2, 4, 8, 16]))
    # White-box and transferred attacks over the eps grid, DeepFool, iterations, on the
    # control, 1-LR and 2-LR.
    attacks = _each([specs[0], specs[1], specs[-1]], pick(quick=100, full=1000),
                    eps * 2 * 10 + 50 + pick(quick=20, full=50))
    return Page([R.cifar_standard(), *specs], attacks)


PAGES = {"01_adversarial_training": _p01, "02_evaluating_robustness": _p02,
         "03_perceptual_regularization": _p03, "03a_perceptual_transfer": _p03a,
         "03b_perceptual_attacks": _p03b, "04_robust_representations": _p04,
         "05_gradient_interpretability": _p05, "06_feature_desensitization": _p06,
         "06a_afd_cifar": _p06a, "07_low_rank_representations": _p07}


def page(name: str) -> Page:
    """The work of page ``name`` (a stem of ``_toc.yml``, e.g. ``"06a_afd_cifar"``) in the
    active profile; the appendix, the introduction and the Teaching part train nothing."""
    if name in PAGES_WITHOUT_WORK:
        return Page()
    if name not in PAGES:
        raise ValueError(f"unknown page {name!r}; choose one of {', '.join(PAGES)}")
    return PAGES[name]()


def work(p: Page, cached: bool = False) -> tuple[costs.Work, costs.Work]:
    """(training, evaluation) work of a page; ``cached=True`` leaves out the models whose
    files are in the model cache now (what this machine would really train)."""
    train = costs.Work()
    for spec in p.models():
        if not (cached and path_of(spec).exists()):
            train = train + costs.training(spec)
    evaluate = costs.Work()
    for a in p.attacks:
        evaluate = evaluate + costs.attack(a.spec, a.images, a.passes)
    return train, evaluate


_CPU: dict = {}
SPEED_FILE = "cpu-speed.json"   # in the model cache folder: this machine's measured CPU


def cpu_device() -> costs.Device:
    """This CPU as a :class:`~.costs.Device`: ``$REPRTUT_CPU_GFLOPS`` (and
    ``$REPRTUT_CPU_PASS_MS``) if set; else the measurement stored in the model cache folder
    for this CPU and thread count; else measured now (:func:`.costs.measure_cpu` on the quick
    profile's MNIST and CIFAR-10 networks, about ten seconds) and stored."""
    from .common import device_name, read_record, write_record

    if "cpu" in _CPU:
        return _CPU["cpu"]
    name = f"CPU {device_name(torch.device('cpu'))} ({torch.get_num_threads()} threads)"
    env = os.environ.get("REPRTUT_CPU_GFLOPS")
    known = read_record(SPEED_FILE)
    if env:
        rate, per_pass = float(env) * 1e9, float(os.environ.get("REPRTUT_CPU_PASS_MS", "0")) / 1e3
    elif name in known:
        rate, per_pass = known[name]["flop_per_s"], known[name]["pass_s"]
    else:
        with profiles_as("quick"):
            rate, per_pass = costs.measure_cpu([R.mnist_standard(), R.cifar_standard(), R.mnist_pgd()])
        write_record(SPEED_FILE, {**known, name: {"flop_per_s": rate, "pass_s": per_pass}})
    _CPU["cpu"] = costs.Device(name, rate / 1e12, rate / 1e12, 1.0, per_pass, "measured")
    return _CPU["cpu"]


class profiles_as:
    """``with profiles_as("full"): ...`` runs the block under another profile."""

    def __init__(self, name: str):
        if name not in profiles.NAMES:
            raise ValueError(f"profile must be one of {profiles.NAMES}, got {name!r}")
        self.name = name

    def __enter__(self):
        self.old = os.environ.get(profiles.ENV)
        os.environ[profiles.ENV] = self.name
        return self

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop(profiles.ENV, None)
        else:
            os.environ[profiles.ENV] = self.old
        return False


def devices() -> dict[str, costs.Device]:
    return {"CPU": cpu_device(), **costs.GPUS}


def row(name: str, p: Page | None = None) -> dict:
    """A page's cold estimate: TFLOP (training, evaluation), models, peak MiB of a training
    step, and minutes on each of :func:`devices` (page overhead included)."""
    p = page(name) if p is None else p
    train, evaluate = work(p)
    total = train + evaluate
    out = {"page": name, "models": len(p.models()), "train_tflop": train.total_flop / 1e12,
           "eval_tflop": evaluate.total_flop / 1e12, "tflop": total.total_flop / 1e12,
           "peak_mib": train.peak_mib}
    for key, dev in devices().items():
        out[f"min_{key}"] = (total.seconds(dev) + PAGE_OVERHEAD_S) / 60
    return out


def table(profile: str | None = None) -> list[dict]:
    """:func:`row` of every page with work, in the order of :data:`PAGES`, under ``profile``
    (default: the active one)."""
    with profiles_as(profile or profiles.name()):
        return [row(name) for name in PAGES]


def gpu_device(device: torch.device) -> costs.Device:
    """The cost model's GPU for ``device``: its entry of :data:`.costs.GPUS`, else one at the
    bf16 peak of :data:`.common.PEAK_TFLOPS` (half of it in fp32) with the same assumed
    efficiency, else the T4 (the slowest the model knows)."""
    from .common import device_name, peak_tflops

    gpu = device_name(device)
    for key in costs.GPUS:      # whole words: "L4" is not the L40S
        if re.search(rf"\b{key}\b", gpu):
            return costs.GPUS[key]
    peak = peak_tflops(gpu)
    if peak is None:
        return costs.GPUS["T4"]
    t4 = costs.GPUS["T4"]
    return costs.Device(gpu, peak, peak / 2, t4.efficiency, t4.pass_s, "reprtut.bench.PEAK_TFLOPS")


def describe(name: str) -> str:
    """One line for the top of page ``name``: its cold estimate in the active profile on the
    device at hand, and how many of its models the cache already holds."""
    from ..device import default_device

    p = page(name)
    train, evaluate = work(p)
    device = default_device()
    dev = gpu_device(device) if device.type == "cuda" else cpu_device()
    minutes = ((train + evaluate).seconds(dev) + PAGE_OVERHEAD_S) / 60
    cached = sum(path_of(s).exists() for s in p.models())
    return (f"cost ({profiles.name()}): {(train + evaluate).total_flop / 1e12:.2f} TFLOP, about "
            f"{minutes:.1f} min on {dev.name} from an empty cache; {cached} of its "
            f"{len(p.models())} models cached")


def format_rows(rows: list[dict]) -> str:
    """:func:`table`'s rows as text: TFLOP, models, peak MiB and minutes per device."""
    keys = [k for k in rows[0] if k.startswith("min_")] if rows else []
    head = f"{'page':30s} {'models':>6s} {'TFLOP':>8s} {'MiB':>6s} " + \
        " ".join(f"{k[4:] + ' min':>9s}" for k in keys)
    lines = [head]
    for r in rows:
        lines.append(f"{r['page']:30s} {r['models']:6d} {r['tflop']:8.2f} {r['peak_mib']:6.0f} "
                     + " ".join(f"{r[k]:9.1f}" for k in keys))
    return "\n".join(lines)
