"""The book's validation splits: held-out training images to tune on instead of the test set."""

from __future__ import annotations

from typing import Annotated

from . import validate
from .data import Dataset, DatasetName, load
from .declare import Count, checked


@checked
def validation(name: DatasetName, n: Annotated[int, Count(1)], *,
               trained_on: tuple = (), download: bool = True) -> Dataset:
    """The book's validation split of ``name``: the last ``n`` examples of its training set.

    Pages tune on it (a learning rate, a regularization weight, which of two runs to keep)
    instead of on the test images. ``trained_on`` lists the ``n_train`` of every model the
    split will judge (``None``: the whole training set); a model that trained on any of the
    last ``n`` images is refused with a ``ValueError``, so a validation score never comes
    from images the model has seen. Returns a :class:`Dataset` of ``n`` examples.
    """
    train = load(name, "train", download=download)
    n = validate.count(n, "n", min=1, max=len(train) - 1)
    first = len(train) - n
    if not isinstance(trained_on, (list, tuple)):
        raise validate.ArgumentTypeError(f"trained_on must be a list or tuple of n_train values "
                                         f"(an int, or None for all), got {validate._show(trained_on)}")
    for k in trained_on:
        seen = len(train) if k is None else validate.count(k, "trained_on", min=0)
        if seen > first:
            raise ValueError(f"trained_on: a model trained on the first {seen:,} {name} images has "
                             f"seen the validation split (the last {n:,} of {len(train):,}); train "
                             f"it on at most {first:,}")
    return Dataset(train.x[first:], train.y[first:], train.info, train.source)
