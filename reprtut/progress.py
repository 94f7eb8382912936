"""Progress of a training epoch that leaves only the epoch's summary line behind.

In a terminal this is a tqdm bar on stderr (``leave=False``) followed by the summary line.
In a Jupyter kernel -- a reader's notebook, or the kernel that executes a page for the
published book -- a live progress bar saved into the notebook would stay frozen on the page
("epoch 1/10: 0%|..."). There the progress is one plain-text display that is updated in place
(``update_display_data``, which notebook executors apply to the saved output) and, when the
epoch ends, replaced by its summary: the page keeps one line per epoch, nothing else.
"""

from __future__ import annotations

import sys
import time


def in_kernel() -> bool:
    """Whether the code runs in a Jupyter (ZMQ) kernel rather than a terminal or script."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except AttributeError:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class _Text:
    """A display object that shows ``text`` as text/plain only (no HTML, no widget)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_pretty_(self, p, cycle):
        p.text(self.text)

    def __repr__(self):
        return self.text


class EpochProgress:
    """Iterate over ``iterable`` (with ``len``) showing progress under ``desc``.

    ``postfix(dict)`` adds running metrics (already read back to the host); ``finish(line)``
    ends the epoch and leaves ``line`` (or nothing when ``line`` is None). ``enabled=False``
    shows nothing at all.
    """

    def __init__(self, iterable, desc: str, enabled: bool = True, min_interval: float = 0.5):
        self.iterable, self.desc, self.enabled = iterable, desc, enabled
        self.total = len(iterable)
        self.done, self.extra = 0, ""
        self.min_interval, self._last = min_interval, 0.0
        self._bar = self._handle = None
        if not enabled:
            return
        if in_kernel():
            from IPython.display import display
            self._handle = display(_Text(self._line()), display_id=True)
        else:
            from tqdm import tqdm
            self._bar = tqdm(total=self.total, desc=desc, leave=False, file=sys.stderr)

    def _line(self) -> str:
        return f"{self.desc}: {self.done}/{self.total} steps{self.extra}"

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.done += 1
            if self._bar is not None:
                self._bar.update(1)
            elif self._handle is not None and time.perf_counter() - self._last > self.min_interval:
                self._last = time.perf_counter()
                self._handle.update(_Text(self._line()))

    def postfix(self, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.extra = "".join(f" | {k} {v:.3f}" for k, v in metrics.items())
        if self._bar is not None:
            self._bar.set_postfix({k: f"{v:.3f}" for k, v in metrics.items()})

    def finish(self, line: str | None) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            if line:
                print(line, flush=True)
        elif self._handle is not None:
            self._handle.update(_Text(line or ""))
