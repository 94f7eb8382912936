"""The book's structure: paired notebooks, chapter skeletons, and Colab links that resolve."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files(skip: tuple[str, ...] = ()) -> list[str]:
    """The pages of _toc.yml, without those of the parts whose captions are in ``skip``."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        if part.get("caption") in skip:
            continue
        for chapter in part["chapters"]:
            files.append(chapter["file"])
            files += [s["file"] for s in chapter.get("sections", [])]
    return files


def _chapters(skip: tuple[str, ...] = ()) -> list[Path]:
    """The notebook pages (every page of the Teaching part included, unless skipped)."""
    return [ROOT / f"{f}.md" for f in _toc_files(skip) if "jupytext" in (ROOT / f"{f}.md").read_text()[:400]]


def test_every_toc_entry_exists():
    for f in _toc_files():
        assert (ROOT / f"{f}.md").exists(), f"_toc.yml lists {f} but there is no {f}.md"


@pytest.mark.parametrize("md", _chapters(), ids=lambda p: p.stem)
def test_paired_notebook_matches_its_markdown(md):
    """Colab opens the .ipynb: it must hold exactly the cells of the .md the site is built from."""
    ipynb = md.with_suffix(".ipynb")
    assert ipynb.exists(), f"run `jupytext --to ipynb {md.relative_to(ROOT)}`"
    text, notebook = jupytext.read(md), jupytext.read(ipynb)
    cells = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]
    assert cells(text) == cells(notebook), f"{ipynb.name} is stale: run `jupytext --to ipynb {md.name}`"
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code"), "strip outputs"


@pytest.mark.parametrize("md", _chapters(skip=("Teaching",)), ids=lambda p: p.stem)
def test_chapter_has_the_book_skeleton(md):
    text = md.read_text()
    assert "Learning objectives" in text
    assert 'if "google.colab" in sys.modules:' in text, "the first code cell installs reprtut on Colab"
    first_code = jupytext.read(md).cells
    first_code = next(c for c in first_code if c.cell_type == "code")
    assert "google.colab" in first_code.source
    assert "{exercise}" in text and ("{solution}" in text or "{solution-start}" in text)
    assert "## Summary" in text and "{footbibliography}" in text
    assert "rt.profiles.describe()" in text


@pytest.mark.parametrize("md", _chapters(), ids=lambda p: p.stem)
def test_every_table_is_shown(md):
    """Jupyter displays only a cell's last expression: a ``rt.book.table(...)`` followed by more
    statements (a loop of glue calls, say) builds its table and shows nothing on the site."""
    import ast
    for cell in jupytext.read(md).cells:
        if cell.cell_type != "code" or "rt.book.table(" not in cell.source:
            continue
        # IPython magics and shell lines are not Python: blank them before parsing.
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                           for line in cell.source.splitlines())
        tree = ast.parse(source)
        # Shown: anything inside the cell's last expression, a display() argument, or a value a
        # function returns (the function's caller is then what shows it).
        roots = [tree.body[-1].value] if tree.body and isinstance(tree.body[-1], ast.Expr) else []
        for n in ast.walk(tree):
            if isinstance(n, ast.Call) and ast.unparse(n.func) == "display":
                roots += n.args
            elif isinstance(n, ast.Return) and n.value is not None:
                roots.append(n.value)
        shown = {id(n) for root in roots for n in ast.walk(root)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "rt.book.table":
                assert id(node) in shown, (
                    f"{md.name}: a table in the cell starting {cell.source.splitlines()[0]!r} is "
                    "neither its last expression nor display()ed, so it is never shown on the "
                    "site (end the cell with it, or display() it)")


@pytest.mark.parametrize("md", _chapters(), ids=lambda p: p.stem)
def test_figures_render_inline_even_under_a_non_interactive_backend(md, monkeypatch):
    """The site shows only what the kernel returns as images: with MPLBACKEND=Agg (as in CI and
    many servers) a figure is drawn but never displayed unless the page switches to inline."""
    import nbclient
    import nbformat

    monkeypatch.setenv("MPLBACKEND", "Agg")
    setup = next(c for c in jupytext.read(md).cells if c.cell_type == "code")
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(setup.source),
        nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
                                  "ax.plot([0, 1], [1, 0])"),
    ])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = [o for o in nb.cells[1].outputs if o.output_type == "display_data"]
    assert any("image/png" in o.data for o in outputs), (
        f"{md.name}: a figure made in a cell is not displayed; its first code cell must run "
        "`%matplotlib inline`")


def _jupyter_book() -> str:
    beside = Path(sys.executable).with_name("jupyter-book")  # the one of this environment
    return str(beside) if beside.exists() else shutil.which("jupyter-book") or "jupyter-book"


def test_colab_links_of_the_built_site_open_existing_notebooks(tmp_path):
    """Build the site without executing the notebooks and follow every Colab button."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    config["execute"]["execute_notebooks"] = "off"
    # Unexecuted pages have no glued values; every other warning fails the build, as in CI.
    config["sphinx"]["config"]["suppress_warnings"].append("mystnb.glue")
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([_jupyter_book(), "build", str(ROOT), "-W", "--path-output",
                           str(tmp_path), "--config", str(tmp_path / "_config.yml")],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    html = tmp_path / "_build" / "html"
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    branch = config["repository"]["branch"]
    pattern = re.compile(rf'https://colab\.research\.google\.com/github/{repo}/blob/{branch}/([^"]+)"')
    for md in _chapters():
        page = html / md.relative_to(ROOT).with_suffix(".html")
        links = set(pattern.findall(page.read_text()))
        assert links, f"{page.name} has no Colab button"
        for link in links:
            assert link.endswith(".ipynb"), f"Colab cannot open {link}"
            assert (ROOT / link).is_file(), f"the Colab button of {page.name} opens {link}, which does not exist"


def _version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def _colab_install_problems(source: str, version: str) -> list[str]:
    """What is wrong with the package installs of a page's code (``source``): every
    ``pip install`` that names reprtut must install the release tag ``v<version>``, and
    nothing may be installed from a git URL without a tag or commit (a moving branch)."""
    pin = f'"reprtut @ git+https://github.com/reprtut/reprtut@v{version}"'
    installs = [line.strip() for line in source.splitlines() if "pip install" in line]
    problems = [] if any("reprtut" in line for line in installs) else ["no install of reprtut"]
    for line in installs:
        if "reprtut" in line and pin not in line:
            problems.append(f"{line!r} does not install {pin}")
        for url in re.findall(r"git\+[^\s\"'#]+", line):
            ref = url.rpartition("@")[2] if "@" in url.split("://", 1)[-1] else ""
            if not re.fullmatch(r"v\d+(\.\d+)*|[0-9a-f]{40}", ref):
                problems.append(f"{line!r} installs from a git branch ({ref or 'the default'}), "
                                f"not a tag or commit")
    return problems


def test_the_version_lives_in_pyproject_only():
    import reprtut

    assert reprtut.__version__ == _version()
    written = [p.relative_to(ROOT) for p in (ROOT / "reprtut").rglob("*.py")
               if re.search(r"__version__\s*=\s*[\"']", p.read_text())]
    assert not written, f"{written} write a version by hand; it is read from pyproject.toml"


@pytest.mark.parametrize("md", _chapters(), ids=lambda p: p.stem)
def test_colab_installs_the_version_the_page_belongs_to(md):
    """Every page's Colab cell installs the release ``v<version>`` of pyproject.toml, in the
    .md the site is built from and in the .ipynb Colab opens, not the moving main branch."""
    notebook = json.loads(md.with_suffix(".ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    for name, source in ((md.name, md.read_text()), (md.with_suffix(".ipynb").name, code)):
        problems = _colab_install_problems(source, _version())
        assert not problems, f"{name}: " + "; ".join(problems)


def test_the_colab_check_catches_a_branch_or_another_version():
    good = '    %pip install -q "reprtut @ git+https://github.com/reprtut/reprtut@v1.2.0"\n'
    assert _colab_install_problems(good, "1.2.0") == []
    assert _colab_install_problems(good, "1.3.0"), "another version than pyproject's"
    assert _colab_install_problems(good.replace("@v1.2.0", "@main"), "1.2.0"), "the main branch"
    assert _colab_install_problems(good.replace("@v1.2.0", ""), "1.2.0"), "no ref at all"
    assert _colab_install_problems("%pip install -q reprtut\n", "1.2.0"), "whatever PyPI has"
    extra = good + "%pip install git+https://github.com/someone/lib\n"
    assert any("git branch (the default)" in p for p in _colab_install_problems(extra, "1.2.0"))
    extra = good + "%pip install git+https://github.com/someone/lib@dev\n"
    assert any("git branch (dev)" in p for p in _colab_install_problems(extra, "1.2.0"))
    assert _colab_install_problems("%pip install torch\n", "1.2.0") == ["no install of reprtut"]


@pytest.mark.parametrize("md", _chapters(), ids=lambda p: p.stem)
def test_every_glue_reference_is_well_formed(md):
    """A glued reference is a name and an optional format, ``{glue:text}`name:.2f```: a
    mistyped closing quote swallows the prose up to the next one, and the page's own build
    (which skips glue warnings while it is not executed) would not see it."""
    bad = [m.group(0)[:60] for m in re.finditer(r"\{glue(?::\w+)?\}`([^`]*)`", md.read_text())
           if not re.fullmatch(r"[\w.-]+(:[^\s`{}]*)?", m.group(1))]
    assert not bad, f"{md.name}: malformed glue references {bad}"
