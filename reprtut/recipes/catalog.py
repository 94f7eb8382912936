"""Every recipe of the package, called with arguments the book uses: the list of trained models
that a profile can ask for.

:func:`specs` calls each public function of :mod:`reprtut.recipes` that returns a
:class:`~reprtut.cache.ModelSpec` — with no arguments, or with each example of :func:`examples`
where it takes some — under the active profile, and adds the models they start from
(``init``, recursively). ``tests/test_full_profile.py`` builds them all in the full and paper
profiles; ``python -m reprtut.cache export`` writes their trained files as a bundle.
"""

from __future__ import annotations

import inspect

from .. import recipes
from ..cache import ModelSpec
from ..derived import CELEBA_TASKS, FLANKED_TASKS
from ..train import TrainConfig


def examples() -> dict[str, list[tuple]]:
    """Arguments for the recipes that take some: each dataset family the book can use."""
    flanked, celeba = list(FLANKED_TASKS), list(CELEBA_TASKS)
    per_dataset = ["mnist", "svhn", f"flanked_mnist_{flanked[1]}", f"celeba_{celeba[1]}"]
    return {
        "perceptual": [(1e-2, d) for d in per_dataset],
        "perceptual_mnist": [()],
        "perceptual_sgd": [(1e-5, d) for d in per_dataset[2:3]],
        "supervised": [(d,) for d in per_dataset[1:]],
        "multitask": [("flanked_mnist", tuple(flanked[:2])), ("celeba", tuple(celeba[:2]))],
        "interp_mnist": [(), ("l2", 4.0), ("linf", 0.2, "margin")],
        "interp_cifar": [(), ("l2", 1.6), ("linf", 0.02)],
        "roar_classifier": [("mnist",), ("cifar10",)],
        "transfer": [(recipes.perceptual(1e-3, f"flanked_mnist_{flanked[0]}"), f"flanked_mnist_{flanked[1]}"),
                     (recipes.perceptual(1e-3, f"celeba_{celeba[0]}"), f"celeba_{celeba[1]}")],
        "transfer_spec": [(recipes.supervised(f"flanked_mnist_{flanked[0]}"), f"flanked_mnist_{flanked[2]}",
                           TrainConfig())],
    }


def functions() -> list[str]:
    """The names of every public function of :mod:`reprtut.recipes` (and its chapter modules)
    that returns a ModelSpec, sorted."""
    return sorted(name for name, fn in inspect.getmembers(recipes, inspect.isfunction)
                  if fn.__module__.startswith(recipes.__name__) and not name.startswith("_")
                  and inspect.signature(fn).return_annotation in (ModelSpec, "ModelSpec"))


def _label(name: str, args: tuple) -> str:
    """``perceptual(0.01, 'mnist')``; a spec argument by its name, a config by its type."""
    shown = [a.name if isinstance(a, ModelSpec) else type(a).__name__ + "(...)"
             if isinstance(a, TrainConfig) else repr(a) for a in args]
    return f"{name}({', '.join(shown)})"


def specs(with_init: bool = False) -> list[tuple[str, ModelSpec]]:
    """``(label, spec)`` for every recipe function and example call under the active profile,
    e.g. ``("perceptual(0.01, 'mnist')", spec)``; with ``with_init``, the specs they start
    from follow, labelled ``<label>.init``. Raises ``ValueError`` for a recipe that takes
    arguments and has no examples."""
    args, out = examples(), []
    for name in functions():
        fn = getattr(recipes, name)
        required = [p for p in inspect.signature(fn).parameters.values() if p.default is p.empty]
        calls = args.get(name, [()] if not required else None)
        if calls is None:
            raise ValueError(f"recipes.{name} takes arguments: add examples of them to "
                             f"reprtut.recipes.catalog.examples()")
        out += [(_label(name, a), fn(*a)) for a in calls]
    if with_init:
        for label, spec in list(out):
            while spec.init is not None:
                label, spec = label + ".init", spec.init
                out.append((label, spec))
    return out
