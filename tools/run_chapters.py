"""Run every chapter of the book as a plain Python script and record its wall time and status.

    python tools/run_chapters.py [--profile full] [--json chapters.json] [CHAPTER ...]

Each chapter listed in ``_toc.yml`` (those that are notebooks: a jupytext header) is converted
with jupytext to a ``py:percent`` script in ``--scripts`` (default ``.scripts/``, git-ignored),
with its IPython magics (``%matplotlib inline``, ``%pip ...``) turned into ``pass`` statements
that keep them as comments, and run with ``python`` from the ``book/`` folder under
``MPLBACKEND=Agg`` and ``REPRTUT_PROFILE=--profile``. Where jupytext is not installed (a GPU
machine without the book's tools) the scripts already in ``--scripts`` are run: convert them
beforehand with ``--convert-only`` and carry the folder along. ``display`` falls back to
``print`` where IPython is absent; ``rt.book.glue`` is a no-op without MyST-NB.

The JSON file holds, per chapter, the wall time in seconds, the exit status and the last lines
of its output (the whole output is in ``<scripts>/<chapter>.log``), with the device, torch
version, commit (``$REPRTUT_COMMIT`` where the checkout has no .git), command and UTC date.
The exit status is that of the first failing chapter (0 when every chapter passed).

CHAPTER: stems or paths (``03b_perceptual_attacks`` or ``book/03b_perceptual_attacks.md``);
default every notebook chapter in the order of ``_toc.yml``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run inside the child: IPython's display where it exists, else print; then the script.
PRELUDE = """
import builtins, runpy, sys
try:
    from IPython.display import display
except ImportError:
    def display(*objs, **kwargs):
        for obj in objs:
            print(getattr(obj, "data", obj))
builtins.display = display
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""

MAGIC = re.compile(r"^(\s*)([%!].*)$")


def toc_chapters(root: Path = ROOT) -> list[Path]:
    """The notebook chapters of ``_toc.yml`` in order (read without a YAML parser, which a
    bare GPU machine may lack): every ``file:`` entry whose .md has a jupytext header."""
    files = re.findall(r"^\s*(?:-\s*)?(?:file|root):\s*(\S+)\s*$", (root / "_toc.yml").read_text(), re.M)
    paths = [root / f"{f}.md" for f in files]
    return [p for p in paths if p.exists() and "jupytext" in p.read_text()[:400]]


def to_script(md: Path) -> str:
    """The chapter as py:percent text whose magics are ``pass  # %magic`` lines (a bare
    comment would leave ``if ...:`` blocks such as the Colab cell's without a body)."""
    import jupytext

    nb = jupytext.read(md)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(MAGIC.sub(r"\1pass  # \2", line) for line in cell.source.splitlines())
    return jupytext.writes(nb, fmt="py:percent")


def convert(chapters: list[Path], scripts: Path) -> list[Path]:
    """Write each chapter's script to ``scripts``; where jupytext is missing, use the ones there."""
    scripts.mkdir(parents=True, exist_ok=True)
    out = []
    try:
        import jupytext  # noqa: F401
        have = True
    except ImportError:
        have = False
    for md in chapters:
        path = scripts / f"{md.stem}.py"
        if have:
            path.write_text(to_script(md))
        elif not path.exists():
            sys.exit(f"jupytext is not installed and {path} does not exist: convert the chapters "
                     f"with `python tools/run_chapters.py --convert-only` where jupytext is")
        out.append(path)
    return out


def run(script: Path, env: dict, timeout: float) -> dict:
    """Run one script from book/; its wall time, exit status and output tail."""
    log = script.with_suffix(".log")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-c", PRELUDE, str(script.resolve())], cwd=ROOT / "book",
                              env=env, capture_output=True, text=True, timeout=timeout)
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as err:
        rc = 124
        output = (err.stdout or b"").decode(errors="replace") + (err.stderr or b"").decode(errors="replace")
        output += f"\n[timed out after {timeout:.0f} s]"
    seconds = time.perf_counter() - t0
    log.write_text(output)
    return {"chapter": script.stem, "seconds": round(seconds, 2), "returncode": rc,
            "passed": rc == 0, "log": str(log), "tail": output[-3000:]}


def _resolve(names: list[str]) -> list[Path]:
    chapters = toc_chapters()
    if not names:
        return chapters
    by_stem = {p.stem: p for p in chapters}
    out = []
    for name in names:
        stem = Path(name).stem
        if stem not in by_stem:
            sys.exit(f"{name} is not a notebook chapter of _toc.yml (choose from {', '.join(by_stem)})")
        out.append(by_stem[stem])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter stems or paths (default: all)")
    parser.add_argument("--profile", default=os.environ.get("REPRTUT_PROFILE", "full"),
                        choices=("quick", "colab", "full", "paper"), help="REPRTUT_PROFILE (default: full)")
    parser.add_argument("--scripts", type=Path, default=ROOT / ".scripts", help="where the scripts go")
    parser.add_argument("--json", type=Path, default=None, help="write the record here")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per chapter")
    parser.add_argument("--convert-only", action="store_true", help="write the scripts, run nothing")
    args = parser.parse_args(argv)

    scripts = convert(_resolve(args.chapters), args.scripts)
    if args.convert_only:
        print("\n".join(map(str, scripts)))
        return 0
    env = {**os.environ, "MPLBACKEND": "Agg", "REPRTUT_PROFILE": args.profile,
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    sys.path.insert(0, str(ROOT))
    from reprtut.bench.common import metadata
    from reprtut.device import default_device

    record = {"benchmark": "chapters", **metadata(default_device(), command=shlex.join(["python", "tools/run_chapters.py", *(sys.argv[1:] if argv is None else argv)])),
              "profile": args.profile, "data": os.environ.get("REPRTUT_DATA"), "chapters": []}
    status = 0
    for script in scripts:
        row = run(script, env, args.timeout)
        record["chapters"].append(row)
        print(f"{row['chapter']:32s} {'passed' if row['passed'] else 'FAILED'} "
              f"{row['seconds']:8.1f} s", flush=True)
        status = status or row["returncode"]
        if args.json:   # after every chapter: a run cut short still leaves its record
            record["total_seconds"] = round(sum(r["seconds"] for r in record["chapters"]), 2)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(record, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
