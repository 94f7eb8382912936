"""Solutions of the book's exercises: find them in a page, take them out, and look for them.

A page hides a solution in one of the two forms of sphinx-exercise:

- a ``{solution}`` directive in a Markdown cell (prose, possibly with Markdown code blocks);
- a gated solution: a ``{solution-start}`` directive, then any cells (code and prose), then a
  ``{solution-end}`` directive. Everything between the two belongs to the solution.

A code cell tagged ``remove-cell`` right after a solution (an ``assert`` on the solution's
results, which the site hides) goes with it: it would fail without the solution, and it states
the solution's outcome.

:func:`strip` removes all of it from a notebook (a page read with jupytext, or the executed page
Jupyter Book rendered); :func:`leaks` looks for what a stripped page must no longer contain. The
student materials (``tools/student.py``) are built with both. The comparison is on words: a
solution's line leaks when its words appear, in order, in a page's text (Markdown source, a
notebook, or a rendered HTML page with its tags removed).
"""

from __future__ import annotations

import copy
import html
import re

FENCE = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\{(?P<kind>[\w-]+)\}")
WORDS = re.compile(r"\w+")
MIN_WORDS = 5  # a shorter line ("plt.show()", "print(x)") says nothing about one solution


def _closes(line: str, fence: str) -> bool:
    """Whether ``line`` closes a directive opened with ``fence`` (same character, as long)."""
    bare = line.strip()
    return len(bare) >= len(fence) and set(bare) == {fence[0]}


class _Stripper:
    """Walks a notebook's cells in order, keeping what lies outside every solution."""

    def __init__(self):
        self.gated = False          # inside {solution-start} ... {solution-end}
        self.after = False          # a solution just ended: its remove-cell checks go too
        self.removed: list[str] = []

    def markdown(self, source: str) -> str:
        lines, kept, i = source.split("\n"), [], 0
        while i < len(lines):
            match = FENCE.match(lines[i])
            if match and match["kind"] in ("solution", "solution-start", "solution-end"):
                end = i + 1
                while end < len(lines) and not _closes(lines[end], match["fence"]):
                    end += 1
                self.removed.append("\n".join(lines[i:end + 1]))
                self.gated = match["kind"] == "solution-start"
                self.after = match["kind"] != "solution-start"
                i = end + 1
                continue
            if self.gated:
                self.removed.append(lines[i])
            else:
                kept.append(lines[i])
                self.after = self.after and not lines[i].strip()
            i += 1
        return "\n".join(kept).strip("\n")

    def code(self, cell) -> bool:
        """Whether the code cell stays."""
        tags = cell.get("metadata", {}).get("tags", [])
        if self.gated or (self.after and "remove-cell" in tags):
            self.removed.append(cell.source)
            return False
        self.after = False
        return True


def strip(nb):
    """A copy of the notebook without its solutions, and the removed sources (a list of str).

    Markdown cells left empty are dropped; outputs of the dropped code cells go with them."""
    stripper, cells = _Stripper(), []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = stripper.markdown(cell.source)
            if text.strip():
                cells.append(copy.deepcopy(cell))
                cells[-1].source = text
        elif cell.cell_type != "code" or stripper.code(cell):
            cells.append(copy.deepcopy(cell))
    if stripper.gated:
        raise ValueError("a {solution-start} has no {solution-end}")
    out = copy.copy(nb)
    out.cells = cells
    return out, stripper.removed


def words(text: str) -> str:
    """The text's words, lower-cased and joined by single spaces, with spaces at both ends."""
    return " " + " ".join(WORDS.findall(text.lower())) + " "


def html_text(page: str) -> str:
    """The visible text of a rendered HTML page (tags removed, entities decoded)."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def telltales(notebooks: list) -> list[str]:
    """The lines of the notebooks' solutions that identify them: every line of at least
    ``MIN_WORDS`` words that occurs nowhere outside the solutions of these notebooks (a line a
    solution shares with the pages, ``xs, ys = x_test[:200], y_test[:200]``, gives nothing
    away). Returned as :func:`words` strings."""
    stripped = [strip(nb) for nb in notebooks]
    outside = words("\n".join(cell.source for student, _ in stripped for cell in student.cells))
    found = []
    for _, removed in stripped:
        for line in "\n".join(removed).split("\n"):
            w = words(line)
            if len(w.split()) >= MIN_WORDS and w not in outside and w not in found:
                found.append(w)
    return found


def leaks(lines: list[str], text: str) -> list[str]:
    """The ``lines`` (from :func:`telltales`) whose words occur in ``text``."""
    haystack = words(text)
    return [line.strip() for line in lines if line in haystack]
