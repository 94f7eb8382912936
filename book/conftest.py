"""Run the chapters (jupytext MyST-markdown notebooks) as tests with nbval.

nbval collects only .ipynb files; this hook hands it the .md chapters, read with jupytext.
The paired .ipynb files (for Colab) are not collected: they hold the same cells, and
tests/test_book.py checks that they stay in sync with the .md sources.

The test of a page is also the execution the site is built from, so that one CI run executes
every page once. With ``$REPRTUT_EXECUTION_CACHE`` set to a jupyter-cache folder, every kernel
message of a page's cells is replayed into a copy of the page (with nbclient's own message
handling, as when Jupyter Book executes a page: progress lines updated in place, widget state
saved), and a page whose every cell passed is stored there under the hash of its code.
``jupyter-book build`` with ``execute_notebooks: cache`` and that folder then renders those
outputs instead of executing the page again; a page that failed is not stored, so the build
executes it again and fails too. Unset (the default), nothing is stored.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from unittest import mock

import jupytext
import nbval.plugin
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete

collect_ignore_glob = ["*.ipynb", "_build/*"]
CACHE_ENV = "REPRTUT_EXECUTION_CACHE"


class MarkdownNotebook(nbval.plugin.IPyNbFile):
    def collect(self):
        with mock.patch.object(nbval.plugin.nbformat, "read", lambda path, as_version: jupytext.read(path)):
            yield from super().collect()

    def setup(self):
        super().setup()
        self.passed: set[int] = set()
        self.started = time.perf_counter()
        self.recorder = _Recorder(self.nb, self.kernel) if os.environ.get(CACHE_ENV) else None
        kc = self.kernel.kc

        def execute(source, allow_stdin=None):
            # As Jupyter Book's executor runs a cell: with history, so that a trailing ';'
            # hides the cell's value (nbval's own call stores none, and shows it).
            msg_id = kc.execute(source, store_history=True, allow_stdin=bool(allow_stdin),
                                stop_on_error=False)
            if self.recorder is not None:
                self.recorder.msg_id = msg_id
            return msg_id

        self.kernel.execute_cell_input = execute

    def begin(self, cell_num: int) -> None:
        if self.recorder is not None:
            self.recorder.begin(cell_num)

    def get_kernel_message(self, timeout=None, stream="iopub"):
        msg = super().get_kernel_message(timeout=timeout, stream=stream)
        if self.recorder is not None:
            self.recorder.process(msg)
        return msg

    def teardown(self):
        code_cells = sum(cell.cell_type == "code" for cell in self.nb.cells)
        if self.recorder is not None and len(self.passed) == code_cells:
            self.recorder.store(Path(str(self.fspath)), os.environ[CACHE_ENV],
                                time.perf_counter() - self.started)
        super().teardown()


class _Recorder:
    """The executed copy of a page, built from its cells' kernel messages by nbclient."""

    def __init__(self, nb, kernel):
        self.nb = copy.deepcopy(nb)
        for cell in self.nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        self.code = [i for i, cell in enumerate(self.nb.cells) if cell.cell_type == "code"]
        # nbclient's message handling (clear_output, update_display_data, widget state and
        # Output widgets, which answer through the kernel client) without its own kernel.
        self.client = NotebookClient(self.nb, record_timing=False, store_widget_state=True)
        self.client.reset_execution_trackers()
        self.client.kc = kernel.kc
        self.index, self.msg_id = None, None

    def begin(self, cell_num: int) -> None:
        self.index = self.code[cell_num]
        self.client.clear_before_next_output = False  # as nbclient does when a cell starts

    def process(self, msg) -> None:
        if self.index is None or msg["parent_header"].get("msg_id") != self.msg_id:
            return
        try:
            self.client.process_message(msg, self.nb.cells[self.index], self.index)
        except CellExecutionComplete:
            pass

    def store(self, path: Path, folder: str, seconds: float) -> None:
        """Put the executed page into the jupyter-cache at ``folder``, keyed as Jupyter Book
        keys the page it reads from ``path`` (its own MyST reader, so tags match)."""
        from filelock import FileLock
        from jupyter_cache import get_cache
        from jupyter_cache.base import CacheBundleIn
        from myst_nb.core.read import read_myst_markdown_notebook

        self.client.set_widgets_metadata()
        page = read_myst_markdown_notebook(path.read_text(), path=path)
        page_code = [cell for cell in page.cells if cell.cell_type == "code"]
        ours = [self.nb.cells[i] for i in self.code]
        if [c.source for c in page_code] != [c.source for c in ours]:
            print(f"\n{path.name}: the book's reader splits the page differently; not cached")
            return
        for mine, theirs in zip(ours, page_code):
            theirs.outputs, theirs.execution_count = mine.outputs, mine.execution_count
        if "widgets" in self.nb.metadata:
            page.metadata["widgets"] = self.nb.metadata["widgets"]
        Path(folder).mkdir(parents=True, exist_ok=True)
        with FileLock(os.path.join(folder, ".lock")):  # pytest-xdist workers share the folder
            get_cache(folder).cache_notebook_bundle(
                CacheBundleIn(page, str(path.resolve()), data={"execution_seconds": seconds}),
                check_validity=False, overwrite=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Tell a page which cell runs (its messages are recorded) and which cells passed."""
    page = item.parent if isinstance(item.parent, MarkdownNotebook) else None
    if page is not None:
        page.begin(item.cell_num)
    outcome = yield
    if page is not None and outcome.excinfo is None:
        page.passed.add(item.cell_num)


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".md" and "jupytext" in file_path.read_text().split("\n---", 1)[0]:
        return MarkdownNotebook.from_parent(parent, path=file_path)
    return None


# Wall time per page (every cell; the kernel start, a few seconds, is not included), printed at the end of the run: the per-page
# budget of the quick profile is read off this table.
_page_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    page = report.nodeid.split("::", 1)[0]
    if page.endswith(".md"):
        _page_seconds[page] = _page_seconds.get(page, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _page_seconds:
        return
    terminalreporter.section("seconds per page")
    for page, seconds in _page_seconds.items():
        terminalreporter.write_line(f"{seconds:8.1f} s  {page}")
