"""The model cache's ledger: which models a run trained or loaded, for how long, and who asked.

Every :func:`reprtut.cache.get` appends one JSON line to ``ledger.jsonl`` in the cache folder:
the spec's name and key, ``"train"``, ``"load"`` or ``"fetch"``, the seconds it took, the
seconds it first waited for another process that held the model's lock (training it), the
profile, and the requester —
the pytest test or book page that asked (from ``$PYTEST_CURRENT_TEST``, which pytest sets and
the kernels nbval starts for a page inherit), else ``$REPRTUT_REQUESTER``, else the script.
``tools/time_table.py`` turns the ledger and pytest's report into the table of where a run's
time goes. Lines are short and written with one ``write`` in append mode, so concurrent
processes do not interleave them; a line that cannot be parsed is skipped by :func:`read`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from . import profiles

FILE = "ledger.jsonl"
REQUESTER_ENV = "REPRTUT_REQUESTER"


def requester() -> str:
    """The test or page that is running: ``tests/test_x.py::test_y``, ``book/01_x.md``."""
    current = os.environ.get("PYTEST_CURRENT_TEST")
    if current:
        node = current.rsplit(" (", 1)[0]  # drop the phase: " (setup)", " (call)"
        path = node.split("::", 1)[0]
        return path if path.endswith(".md") else node
    return os.environ.get(REQUESTER_ENV) or Path(sys.argv[0] or "python").name


def record(folder: Path, *, name: str, key: str, event: str, seconds: float,
           waited: float = 0.0) -> None:
    """Append one request to the ledger in ``folder``; a ledger that cannot be written is
    not an error (the cache itself works without it). ``waited``: seconds spent waiting for
    the lock before ``seconds`` began, which belong to the model's training, not to the
    requester's own work."""
    line = json.dumps({"name": name, "key": key, "event": event, "seconds": round(seconds, 3),
                       "waited": round(waited, 3),
                       "profile": profiles.name(), "requester": requester(), "pid": os.getpid(),
                       "time": time.time()})
    try:
        with open(Path(folder) / FILE, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


def read(folder: Path) -> list[dict]:
    """Every parseable line of the ledger in ``folder`` (empty if there is none)."""
    path = Path(folder) / FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows
