"""How much room each guarded claim of a page has: every comparison that guards it, per seed.

    python tools/margins.py [--seeds 0-4] [--jobs 2] [--out margins.md] [--jsonl runs.jsonl] [PAGE ...]

A page's asserts and ``rt.book.claim`` calls guard its prose (and the method's properties); the
quick profile calibrates them with a margin over seeds 0-4 (CONTRIBUTING.md). Pass or fail says
little about how close a claim came to failing. This tool runs each page once per seed (a
notebook executed by nbclient in ``book/``, with ``REPRTUT_SEED`` set; the model cache is
``$REPRTUT_CACHE`` as usual, and every seed's models are its own) after rewriting (Python's
``ast``) each comparison inside an assert's test or a claim's ``holds`` argument into a call
that records how far it is from failing and returns the same truth value:

* ``a < b``, ``a <= b``: the margin is ``b - a``; ``a > b``, ``a >= b``: ``a - b`` — positive
  when the comparison holds, in the units of its operands (accuracies are fractions: 0.05 is
  5 points). A chain ``a < b < c`` is recorded link by link.
* a comparison evaluated many times (inside ``all(...)`` or a loop) keeps its smallest margin;
  the ``if`` filters of a comprehension are not guards and are left as they are.
* ``==``, ``in``, ``is`` and operands that are not numbers: only whether it held.

Operands of a rewritten chain are all evaluated (Python stops at the first false link); the
pages' guards have no side effects there. A comparison that ``and``/``or`` skipped is not
recorded in that run. Prints one Markdown table: page, cell, line, the comparison (with its
claim's name), its margin at each seed, the worst; and each run's status (the first failing
cell) and seconds (models trained in the run included: a seed's first run of a page is cold). PAGE: paths of book pages (default: every chapter of ``_toc.yml``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDER = "_rt_margin"

# The recorder, defined in the kernel before the page's first cell: appends one JSON line per
# evaluated comparison to the file the run names.
PRELUDE = f'''
import json as _rt_json, operator as _rt_op
_RT_OPS = {{"Lt": _rt_op.lt, "LtE": _rt_op.le, "Gt": _rt_op.gt, "GtE": _rt_op.ge, "Eq": _rt_op.eq,
           "NotEq": _rt_op.ne, "In": lambda a, b: a in b, "NotIn": lambda a, b: a not in b,
           "Is": _rt_op.is_, "IsNot": _rt_op.is_not}}
def {RECORDER}(where, ops, *operands):
    values = []
    for k, (op, a, b) in enumerate(zip(ops, operands, operands[1:])):
        value, lo, hi = _RT_OPS[op](a, b), a, b
        try:
            ok = bool(value)
        except (RuntimeError, ValueError):  # element-wise (tensors, arrays): the page reduces it
            ok = bool(value.all())
            lo, hi = ((a - b).max(), 0) if op in ("Lt", "LtE") else (0, (b - a).max())
        try:
            margin = (float(hi) - float(lo) if op in ("Lt", "LtE") else
                      float(lo) - float(hi) if op in ("Gt", "GtE") else None)
        except (TypeError, ValueError, RuntimeError):
            margin = None
        with open({{path!r}}, "a") as f:
            f.write(_rt_json.dumps({{"id": f"{{where}}:{{k}}", "held": ok, "margin": margin}}) + "\\n")
        values.append((value, ok))
    # What the comparison itself gives: the first false link, else the last (a tensor stays one)
    return next((v for v, ok in values if not ok), values[-1][0])
'''


class _Rewrite(ast.NodeTransformer):
    """Every Compare inside an assert's test, or inside the ``holds`` argument of a call to
    ``claim`` (``rt.book.claim(checks, name, holds, detail)``), becomes
    ``_rt_margin("cell:line:col", ops, *operands)``."""

    def __init__(self, cell: int):
        self.cell, self.texts, self.label = cell, {}, None

    def visit_Assert(self, node: ast.Assert) -> ast.Assert:
        self.label = "assert"
        node.test = self.visit(node.test)
        self.label = None
        return node

    def visit_Call(self, node: ast.Call):
        name = getattr(node.func, "attr", getattr(node.func, "id", None))
        if name != "claim" or self.label is not None:
            return self.generic_visit(node)
        said = node.args[1] if len(node.args) > 1 else None
        self.label = f"claim: {said.value}" if isinstance(said, ast.Constant) else "claim"
        if len(node.args) > 2:
            node.args[2] = self.visit(node.args[2])
        for kw in node.keywords:
            if kw.arg == "holds":
                kw.value = self.visit(kw.value)
        self.label = None
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        return node  # its ``if`` filters choose what is compared; they guard nothing themselves

    def visit_Compare(self, node: ast.Compare):
        self.generic_visit(node)
        if self.label is None:
            return node
        where = f"{self.cell}:{node.lineno}:{node.col_offset}"
        operands = [node.left, *node.comparators]
        for k, (op, a, b) in enumerate(zip(node.ops, operands, operands[1:])):
            pair = ast.Compare(left=a, ops=[op], comparators=[b])
            self.texts[f"{where}:{k}"] = (node.lineno, f"{self.label}: {ast.unparse(pair)}"
                                          if self.label != "assert" else ast.unparse(pair))
        ops = ast.Tuple([ast.Constant(type(op).__name__) for op in node.ops], ast.Load())
        call = ast.Call(ast.Name(RECORDER, ast.Load()), [ast.Constant(where), ops, *operands], [])
        return ast.copy_location(call, node)


def instrument(source: str, cell: int) -> tuple[str, dict]:
    """(the cell's source with its asserts' comparisons recorded, id -> (line, comparison text));
    a cell without an assert comes back unchanged."""
    if "assert" not in source and "claim(" not in source:
        return source, {}
    from IPython.core.inputtransformer2 import TransformerManager
    python = TransformerManager().transform_cell(source)  # magics -> get_ipython() calls
    rewrite = _Rewrite(cell)
    tree = ast.fix_missing_locations(rewrite.visit(ast.parse(python)))
    return (ast.unparse(tree) if rewrite.texts else source), rewrite.texts


def run_one(page: Path, seed: int, records: Path) -> dict:
    """Execute ``page`` with its asserts instrumented at ``seed``; returns the run's status and
    the comparisons' texts. Runs in a child process (see :func:`main`, ``--one``)."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = jupytext.read(page)
    texts = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.source, found = instrument(cell.source, i)
            texts.update(found)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PRELUDE.replace("{path!r}", repr(str(records)))))
    status = "passed"
    try:
        NotebookClient(nb, timeout=3600, kernel_name="python3",
                       resources={"metadata": {"path": str(page.parent)}}).execute()
    except CellExecutionError as err:
        failed = next((i - 1 for i, c in enumerate(nb.cells) if any(
            o.get("output_type") == "error" for o in c.get("outputs", []))), "?")
        last = re.sub(r"\x1b\[[0-9;]*m", "", str(err).strip().splitlines()[-1])  # no colours
        status = f"failed in cell {failed}: {last[:200]}"
    return {"status": status, "texts": texts}


def _runs(pages: list[Path], seeds: list[int], jobs: int) -> list[dict]:
    """Each page at each seed, ``jobs`` at a time, each in its own process and kernel."""
    work = Path(tempfile.mkdtemp(prefix="margins-"))

    def one(task):
        page, seed = task
        records, result = work / f"{page.stem}-{seed}.jsonl", work / f"{page.stem}-{seed}.json"
        env, t0 = {**os.environ, "REPRTUT_SEED": str(seed)}, time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--one", str(page), str(records), str(result)],
                              env=env, capture_output=True, text=True)
        out = json.loads(result.read_text()) if result.is_file() else {
            "status": f"tool error: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}", "texts": {}}
        rows = [json.loads(line) for line in records.read_text().splitlines()] if records.is_file() else []
        seconds = time.perf_counter() - t0
        print(f"{page.name} seed {seed}: {out['status']} ({seconds:.0f} s)", file=sys.stderr, flush=True)
        return {"page": str(page.relative_to(ROOT)), "seed": seed, "seconds": round(seconds, 1),
                **out, "records": rows}

    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(one, [(p, s) for p in pages for s in seeds]))


def table(runs: list[dict], seeds: list[int]) -> str:
    """Markdown: one row per comparison with its smallest margin at each seed, and the worst."""
    worst: dict[tuple, dict[int, tuple]] = defaultdict(dict)  # (page, id) -> seed -> (margin, held)
    texts = {}
    for run in runs:
        for rid, (line, text) in run["texts"].items():
            texts[(run["page"], rid)] = (line, text)
        for r in run["records"]:
            key, seed = (run["page"], r["id"]), run["seed"]
            margin, held = worst[key].get(seed, (None, True))
            if r["margin"] is not None:
                margin = r["margin"] if margin is None else min(margin, r["margin"])
            worst[key][seed] = (margin, held and r["held"])
    head = "| page | cell | line | comparison | " + " | ".join(f"seed {s}" for s in seeds) + " | worst |"
    lines = [head, "|---|---:|---:|---|" + "---:|" * (len(seeds) + 1)]
    for (page, rid), per_seed in sorted(worst.items(), key=lambda kv: (kv[0][0], _order(kv[0][1]))):
        line, text = texts.get((page, rid), (0, "?"))
        cells = []
        for s in seeds:
            v = per_seed.get(s)
            cells.append("–" if v is None else _show(*v))
        numeric = [v[0] for v in per_seed.values() if v[0] is not None]
        held_all = all(v[1] for v in per_seed.values())
        w = _show(min(numeric), held_all) if numeric else ("held" if held_all else "**failed**")
        lines.append(f"| {Path(page).stem} | {rid.split(':')[0]} | {line} | `{text[:90]}` | "
                     + " | ".join(cells) + f" | {w} |")
    status = [f"- {r['page']} seed {r['seed']}: {r['status']} ({r.get('seconds', 0):.0f} s)" for r in runs]
    return "\n".join(lines + ["", "Runs:", *status])


def _order(rid: str) -> tuple:
    return tuple(int(p) for p in rid.split(":"))


def _show(margin, held: bool) -> str:
    text = "held" if margin is None else f"{margin:+.3g}"
    return text if held else f"**{text} failed**"


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(s) for s in text.split(",")]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--one"]:  # the child: one page at one seed
        page, records, result = map(Path, argv[1:4])
        result.write_text(json.dumps(run_one(page.resolve(), int(os.environ["REPRTUT_SEED"]), records)))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("pages", nargs="*", type=Path, help="book pages (default: every chapter)")
    p.add_argument("--seeds", type=_seeds, default=list(range(5)), help="e.g. 0-4 or 1,3 (default 0-4)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (each a process and a kernel)")
    p.add_argument("--out", type=Path, help="also write the table here")
    p.add_argument("--jsonl", type=Path, help="also write every run's records here")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs must be at least 1, got {args.jobs}")
    if not args.pages:
        sys.path.insert(0, str(ROOT / "tools"))
        from run_chapters import toc_chapters
        args.pages = toc_chapters()
    for page in args.pages:
        if not page.is_file():
            p.error(f"page {page} does not exist")
    runs = _runs([page.resolve() for page in args.pages], args.seeds, args.jobs)
    text = table(runs, args.seeds)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.jsonl:
        args.jsonl.write_text("".join(json.dumps(r) + "\n" for r in runs))
    return 0 if all(r["status"] == "passed" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
