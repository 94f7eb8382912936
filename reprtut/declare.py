"""Declared argument checks: a public function says what each parameter accepts in its
annotations, and :func:`checked` checks every argument once, at entry, with the checks of
:mod:`reprtut.validate` (whose messages name the parameter, the value and what is accepted).

    @checked
    def pgd(model: Classifier, x: Batch, y: Annotated[torch.Tensor, Labels("x")], *,
            eps: Annotated[float, Real(0)], norm: Literal["linf", "l2", "l1"] = "linf",
            steps: Annotated[int, Count(1)] = 10, random_start: bool = True): ...

``Annotated[T, spec]`` declares a :class:`Spec`; ``Literal[...]`` a choice (compared exactly,
never falling through to another branch); ``bool``, ``int``, ``float``, ``str``,
``torch.Tensor`` and ``nn.Module`` their plain type checks; ``X | None`` (or a default of
None) also accepts None. A new public function is covered the moment it is declared: the
generated catalogue of bad calls (``tests/fuzz_report.py``) reads the same declarations.

NumPy, the same everywhere: numpy scalars are numbers (converted to Python int/float/bool);
a numpy array where a tensor is expected is refused with a hint (``torch.as_tensor``), never
converted behind the caller's back.

Cost: every range check of a call (pixels in [0, 1], labels in [0, K), finite values) shares
one read back from the device, and a checked call made from inside another checked call (an
attack inside an evaluation) skips the reads: its caller already checked the batch. No check
runs inside an attack's or a training loop's inner loop, which call unchecked helpers.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import os
import types
import typing

import numpy as np
import torch
import torch.nn as nn

from .validate import (ArgumentTypeError, _show, channels, choice, count, flag, images, labels,
                       module, real, same_device)

_INSIDE = contextvars.ContextVar("reprtut_checked", default=False)


class Spec:
    """What one parameter accepts. ``check`` returns the value (converted) or raises; range
    checks that need the device go to ``reads`` (None inside another checked call)."""
    of: str | None = None  # the parameter whose batch this one follows
    example = None         # optional: a method giving a valid value (for generated tests)

    def refers(self) -> bool:
        """Whether this check reads another parameter (which is then checked first)."""
        return any(isinstance(getattr(self, a, None), str) for a in ("of", "like", "max", "classes"))

    def check(self, v, name, args, reads, specs):
        return v


class Real(Spec):
    """A real number in [low, high] (``*_open``: strict); a bound may name another parameter."""
    def __init__(self, low=None, high=None, *, low_open=False, high_open=False, allow_inf=False):
        self.kw = dict(low=low, high=high, low_open=low_open, high_open=high_open, allow_inf=allow_inf)

    def refers(self) -> bool:
        return isinstance(self.kw["low"], str) or isinstance(self.kw["high"], str)

    def check(self, v, name, args, reads, specs):
        kw = dict(self.kw)
        for bound in ("low", "high"):
            if isinstance(kw[bound], str):  # another parameter's value, when it is a number
                other = args.get(kw[bound])
                ok = isinstance(other, (int, float, np.number)) and not isinstance(other, bool)
                kw[bound] = float(other) if ok and math.isfinite(other) else None
        return real(v, name, **kw)


class Count(Spec):
    def __init__(self, min=None, max=None):
        self.min, self.max = min, max

    def check(self, v, name, args, reads, specs):
        hi = args.get(self.max) if isinstance(self.max, str) else self.max  # another's value
        if isinstance(hi, (bool, np.bool_)) or not isinstance(hi, (int, np.integer)):
            hi = None  # that parameter is refused on its own
        return count(v, name, min=self.min, max=hi)


class Choice(Spec):
    """One of ``options``, compared exactly (``fold_case``: case-insensitively, on purpose)."""
    def __init__(self, *options, fold_case=False):
        self.options, self.fold_case = options, fold_case

    def check(self, v, name, args, reads, specs):
        if self.fold_case and isinstance(v, str):
            v = {o.lower(): o for o in self.options}.get(v.lower(), v)
        if isinstance(v, str) and v not in self.options:  # the wording the package always used
            raise ValueError(f"unknown {name} {v!r}; {name} must be one of "
                             f"{', '.join(repr(o) for o in self.options)}")
        return choice(v, name, self.options)


class Flag(Spec):
    def check(self, v, name, args, reads, specs):
        return flag(v, name)


class Text(Spec):
    def check(self, v, name, args, reads, specs):
        if not isinstance(v, str) or not v:
            raise ArgumentTypeError(f"{name} must be a non-empty string, got {_show(v)}")
        return v


class Model(Spec):
    """A torch module; ``classes(model, x)`` and ``channels(model)`` read its facts (the
    functions of :mod:`reprtut.nn`, passed in so that this module imports nothing)."""
    def __init__(self, classes=None, channels=None):
        self.classes, self.channels = classes, channels

    def check(self, v, name, args, reads, specs):
        return module(v, name)


class Images(Spec):
    def __init__(self, ndim=4, *, model=None, check_range=True, allow_double=False, of=None):
        self.ndim, self.model, self.range, self.double, self.of = ndim, model, check_range, allow_double, of

    def check(self, v, name, args, reads, specs):
        images(v, name, ndim=self.ndim, check_range=False, allow_double=self.double)
        _follow(v, name, self.of, args, shape=True)
        m, facts = args.get(self.model), _facts(specs, self.model)
        if isinstance(m, nn.Module) and facts.channels:
            channels(v, facts.channels(m), name)
        if self.range and reads is not None:
            reads.append((name, v, None))
        return v


class Labels(Spec):
    """Class indices (B,) of the batch ``of``, in [0, K) with K read off ``model`` (or given
    as ``classes``, a number or another parameter's name); ``min_classes`` > 1 refuses labels
    of one class only (a classifier needs two), checked in the same read."""
    def __init__(self, of="x", *, model="model", classes=None, min_classes=1):
        self.of, self.model, self.classes, self.min_classes = of, model, classes, min_classes

    def check(self, v, name, args, reads, specs):
        x = args.get(self.of)
        labels(v, len(x), None, name, x_name=self.of, check_range=False)
        same_device(name, v, x, self.of)
        if reads is not None:
            k = args.get(self.classes) if isinstance(self.classes, str) else self.classes
            m, facts = args.get(self.model), _facts(specs, self.model)
            if k is None and isinstance(m, nn.Module) and facts.classes:
                k = facts.classes(m, x)
            reads.append((name, v, ("labels", k, self.min_classes)))
        return v


class Reals(Spec):
    """A sequence of real numbers (a list, a tuple, a 1-D tensor or array) in [low, high],
    at least ``min_len`` of them, ``increasing`` when asked; returned as a list of floats."""
    def __init__(self, low=None, high=None, *, min_len=1, increasing=False, allow_inf=False):
        self.low, self.high, self.min_len, self.increasing, self.inf = low, high, min_len, increasing, allow_inf

    def check(self, v, name, args, reads, specs):
        if torch.is_tensor(v) or isinstance(v, np.ndarray):
            v = v.tolist() if v.ndim == 1 else v
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
            raise ArgumentTypeError(f"{name} must be a sequence of numbers, got {_show(v)}")
        out = [real(e, f"{name}[{i}]", low=self.low, high=self.high, allow_inf=self.inf)
               for i, e in enumerate(v)]
        if len(out) < self.min_len:
            raise ValueError(f"{name} must hold at least {self.min_len} numbers, got {len(out)}")
        if self.increasing and any(b <= a for a, b in zip(out, out[1:])):
            raise ValueError(f"{name} must increase, got {out}")
        return out


class Function(Spec):
    """A callable, e.g. an attack ``attack(model, x, y, *, eps, ...)``; ``what`` says which."""
    def __init__(self, what="a function"):
        self.what = what

    def check(self, v, name, args, reads, specs):
        if not callable(v) or isinstance(v, (str, type)):
            raise ArgumentTypeError(f"{name} must be {self.what}, got {_show(v)}")
        return v


class Instance(Spec):
    """An instance of one of ``types``; ``what`` says what it is and where one comes from
    (default: the types' names)."""
    def __init__(self, *types, what=None):
        self.types, self.what = types, what

    def check(self, v, name, args, reads, specs):
        if not isinstance(v, self.types):
            what = self.what or f"a {' or '.join(t.__name__ for t in self.types)}"
            raise ArgumentTypeError(f"{name} must be {what}, got {_show(v)}")
        return v


class File(Spec):
    """A file path: a non-empty ``str`` or an ``os.PathLike`` (a :class:`pathlib.Path`),
    passed on as given."""
    def check(self, v, name, args, reads, specs):
        if isinstance(v, os.PathLike) or (isinstance(v, str) and v):
            return v
        raise ArgumentTypeError(f"{name} must be a file path (a non-empty str or a "
                                f"pathlib.Path), got {_show(v)}")


class Tensor(Spec):
    """Any tensor: ``ndim`` (an int or a tuple of them) or a ``shape`` pattern (None: any
    size), ``floating``/``integer`` dtype,
    ``finite`` values, at least ``min_len`` rows, and the batch size of ``of``."""
    def __init__(self, ndim=None, *, shape=None, floating=None, finite=True, min_len=1, of=None,
                 like=None):
        self.ndim = (len(shape),) if shape is not None else (ndim,) if isinstance(ndim, int) else ndim
        self.shape = shape
        self.floating, self.finite, self.min_len, self.of, self.like = floating, finite, min_len, of, like

    def check(self, v, name, args, reads, specs):
        if not torch.is_tensor(v):
            hint = " (torch.as_tensor(...) for a numpy array)" if isinstance(v, np.ndarray) else ""
            raise ArgumentTypeError(f"{name} must be a torch tensor, got {_show(v)}{hint}")
        if self.ndim is not None and v.dim() not in self.ndim:
            raise ValueError(f"{name} must have {' or '.join(map(str, self.ndim))} dimensions, got "
                             f"shape {tuple(v.shape)}")
        if self.shape is not None and any(n is not None and n != m for n, m in zip(self.shape, v.shape)):
            want = "(" + ", ".join("B" if n is None else str(n) for n in self.shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got shape {tuple(v.shape)}")
        if self.floating is not None and v.is_floating_point() != self.floating:
            kind = "a float" if self.floating else "an integer"
            raise ArgumentTypeError(f"{name} must be {kind} tensor, got {_show(v)}")
        if v.dim() and len(v) < self.min_len or v.numel() == 0 and self.min_len:
            rows = "not be empty" if self.min_len == 1 else f"have at least {self.min_len} rows"
            raise ValueError(f"{name} must {rows}, got shape {tuple(v.shape)}")
        _follow(v, name, self.of, args, shape=False)
        _follow(v, name, self.like, args, shape=True)
        if self.finite and v.is_floating_point() and reads is not None:
            reads.append((name, v, "finite"))
        return v


def _facts(specs, name) -> Model:
    """The Model spec of parameter ``name`` (one without facts when it has none)."""
    spec = specs.get(name, (None,))[0]
    return spec if isinstance(spec, Model) else Model()


def _follow(v, name, other, args, *, shape):
    """Raise unless ``v`` has the batch size (or, with ``shape``, the shape) of ``args[other]``."""
    u = args.get(other) if other else None
    if not torch.is_tensor(u):
        return
    if (v.shape != u.shape) if shape else (v.dim() == 0 or len(v) != len(u)):
        want = f"the shape of {other} {tuple(u.shape)}" if shape else f"{len(u)} rows like {other}"
        raise ValueError(f"{name} must have {want}, got shape {tuple(v.shape)}")


def _read(reads) -> None:
    """Every range check of a call with one read back from the device."""
    parts = []
    for _, t, _k in reads:
        mm = torch.aminmax(t.detach())
        parts += [mm.min.float(), mm.max.float()]
    if len({p.device for p in parts}) > 1:  # tensors on several devices: one read from each
        parts = [p.cpu() for p in parts]
    values = torch.stack(parts).tolist()
    for i, (name, _, k) in enumerate(reads):
        lo, hi = values[2 * i: 2 * i + 2]
        if k is None and reads[i][1].is_floating_point():      # images
            if not (0.0 <= lo and hi <= 1.0):  # NaN fails both comparisons
                what = "NaN" if math.isnan(lo) or math.isnan(hi) else f"values in [{lo:.3g}, {hi:.3g}]"
                hint = "; for 0-255 images divide by 255" if 1.0 < hi <= 255 else ""
                raise ValueError(f"{name}: pixels must lie in [0, 1] and be finite (normalisation "
                                 f"belongs inside the model), got {what}{hint}")
        elif k == "finite":
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"{name} must hold finite values, got values in [{lo:.3g}, {hi:.3g}]")
        else:
            _, k, min_classes = k
            if lo < 0 or (k is not None and hi >= k):
                accepted = f"[0, {k})" if k is not None else ">= 0"
                raise ValueError(f"{name}: class indices must lie in {accepted}, got values in "
                                 f"[{lo:.0f}, {hi:.0f}] (-1 and -100 are not labels)")
            if min_classes > 1 and lo == hi:
                raise ValueError(f"{name} must hold at least {min_classes} classes, got class "
                                 f"{lo:.0f} only")


def spec_of(annotation) -> tuple[Spec | None, bool]:
    """(the Spec an annotation declares, whether None is accepted): ``Annotated[T, spec]``,
    ``Literal[...]`` (a choice), bool, int, float, str, tensors and modules; ``X | None``."""
    optional = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(rest) < len(typing.get_args(annotation))
        annotation = rest[0] if len(rest) == 1 else None
    if typing.get_origin(annotation) is typing.Annotated:
        found = [m for m in annotation.__metadata__ if isinstance(m, Spec)]
        return (found[0] if found else None), optional
    if typing.get_origin(annotation) is typing.Literal:
        return Choice(*typing.get_args(annotation)), optional
    plain = {bool: Flag(), int: Count(), float: Real(), str: Text(), torch.Tensor: Tensor(min_len=0),
             nn.Module: Model()}
    return (plain.get(annotation) if isinstance(annotation, type) else None), optional


def declarations(fn) -> dict[str, tuple[Spec, bool]]:
    """name -> (Spec, None accepted) for every declared parameter of ``fn``, in order."""
    hints = typing.get_type_hints(fn, include_extras=True)
    sig = inspect.signature(fn)
    specs = {}
    for name, p in sig.parameters.items():
        spec, optional = spec_of(hints.get(name))
        if spec is not None:
            specs[name] = (spec, optional or p.default is None)
    return specs


@functools.lru_cache(maxsize=None)
def _plan(fn) -> tuple[inspect.Signature, dict]:
    """The signature and the declarations, those that read another parameter last."""
    specs = declarations(fn)
    order = sorted(specs, key=lambda n: specs[n][0].refers())
    return inspect.signature(fn), {n: specs[n] for n in order}


def check_call(fn, /, *args, reads: bool = True, **kwargs) -> dict:
    """The arguments of the call ``fn(*args, **kwargs)`` checked against ``fn``'s declarations
    (converted, defaults filled in), by name; ``reads=False`` skips the range checks that read
    from the device. For a value a function takes apart before checking (a pair (x, y))."""
    sig, specs = _plan(fn)
    bound = sig.bind(*args, **kwargs)
    bound.apply_defaults()
    a, pending = bound.arguments, ([] if reads else None)
    for name, (spec, optional) in specs.items():
        if not (a[name] is None and optional):
            a[name] = spec.check(a[name], name, a, pending, specs)
    if pending:
        _read(pending)
    return bound


def checked(fn):
    """Check every declared argument of ``fn`` once, at entry (see :func:`declarations`),
    with one read from the device for all range checks; a checked call made from inside
    another skips the reads (its caller checked the batch). ``fn.__declared__()`` lists them."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        bound = check_call(fn, *args, reads=not _INSIDE.get(), **kwargs)
        token = _INSIDE.set(True)
        try:
            return fn(*bound.args, **bound.kwargs)
        finally:
            _INSIDE.reset(token)

    wrapper.__declared__ = lambda: _plan(fn)[1]
    return wrapper


def check_keywords(fn, kwargs: dict, field_name: str, what: str) -> None:
    """Raise unless every key of ``kwargs`` is a parameter of ``fn`` (the architecture's
    builder or the objective's constructor; the model and dataset are the spec's own), and
    every value passes the declaration of its parameter (reprtut.declare)."""
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    accepted = [n for n, p in params.items() if n not in ("self", "model", "dataset")
                and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    for key in kwargs:
        if key not in accepted and not takes_any:
            raise ValueError(f"{field_name}: {what} takes no keyword {key!r}; it takes "
                             f"{', '.join(accepted) or 'none'}")
    specs = declarations(fn.__init__ if isinstance(fn, type) else fn)
    for key, value in kwargs.items():
        spec, optional = specs.get(key, (None, True))
        if spec is not None and not (value is None and optional):
            spec.check(value, key, dict(kwargs), None, specs)
