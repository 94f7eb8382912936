"""Prepare what a run on a machine without the data mirror or network must carry along.

    python tools/carry.py data   [--src $REPRTUT_DATA] [--out .data] [--budget-mib 46] [--cifar-test 2000]
    python tools/carry.py wheels [--out .whl] [--python 3.12] [PACKAGE ...]

``data`` writes an offline mirror (``<out>/npz/<name>-<split>.npz``, the layout that
``REPRTUT_DATA`` reads) that fits ``--budget-mib``: MNIST whole (60,000 + 10,000 images, as
they are), the first ``--cifar-test`` CIFAR-10 test images, then the largest prefix of the
CIFAR-10 training set that fits what is left, compressed. Prefixes keep the original order, so a
run on the subset sees the same first images as one on the whole set. ``<out>/SUBSET.json``
says how many images of each split were kept; a full-profile page reports the size of what it
trained on.

``wheels`` downloads wheels for the target machine's Python (manylinux x86_64) into ``--out``
for ``pip install --no-index --find-links <out> ...`` there: by default torchattacks (without
its dependencies: it pins an old ``requests``; torch and scipy are what it needs) and
ipywidgets with its dependencies (IPython among them), which two chapters import.
Both folders are git-ignored; a device run carries them (64 MiB in all with the checkout).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MIB = 2 ** 20


def _compressed_size(x: np.ndarray, y: np.ndarray) -> int:
    buf = io.BytesIO()
    np.savez_compressed(buf, x=x, y=y)
    return buf.tell()


def _save_prefix(src: Path, dst: Path, n: int | None) -> int:
    """Write the first ``n`` examples (all if None) of ``src`` to ``dst`` compressed; return n."""
    with np.load(src) as f:
        x, y = f["x"], f["y"]
    n = len(y) if n is None else min(n, len(y))
    np.savez_compressed(dst, x=x[:n], y=y[:n])
    return n


def data(src: Path, out: Path, budget_mib: float, cifar_test: int) -> dict:
    npz_src, npz = src / "npz", out / "npz"
    if not npz_src.is_dir():
        sys.exit(f"{npz_src} does not exist: point --src at the data mirror (e.g. ../shared/data)")
    npz.mkdir(parents=True, exist_ok=True)
    kept = {}
    for split in ("train", "test"):
        shutil.copyfile(npz_src / f"mnist-{split}.npz", npz / f"mnist-{split}.npz")
        with np.load(npz / f"mnist-{split}.npz") as f:
            kept[f"mnist-{split}"] = len(f["y"])
    kept["cifar10-test"] = _save_prefix(npz_src / "cifar10-test.npz", npz / "cifar10-test.npz", cifar_test)
    used = sum(p.stat().st_size for p in npz.glob("*.npz") if not p.name.startswith("cifar10-train"))
    left = budget_mib * MIB - used
    with np.load(npz_src / "cifar10-train.npz") as f:
        x, y = f["x"], f["y"]
    per_image = _compressed_size(x[:2000], y[:2000]) / 2000
    n = min(len(y), int(left / per_image))
    while n > 0:                                   # the estimate is close; shrink until it fits
        np.savez_compressed(npz / "cifar10-train.npz", x=x[:n], y=y[:n])
        if (npz / "cifar10-train.npz").stat().st_size <= left:
            break
        n = int(n * 0.98)
    if n <= 0:
        sys.exit(f"--budget-mib {budget_mib} leaves no room for CIFAR-10 training images")
    kept["cifar10-train"] = n
    total = sum(p.stat().st_size for p in npz.glob("*.npz"))
    record = {"source": str(src), "kept": kept, "mib": round(total / MIB, 1),
              "note": "first n examples of each split, in the original order"}
    (out / "SUBSET.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


DEFAULT_WHEELS = ["ipywidgets"]
NO_DEPS_WHEELS = ["torchattacks==3.5.1"]


def wheels(out: Path, python: str, packages: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    target = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp",
              "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64",
              "--platform", "any", "-d", str(out)]
    pip = [sys.executable, "-m", "pip", "download", "-q"]
    if packages:
        subprocess.run(pip + target + packages, check=True)
    else:
        subprocess.run(pip + target + DEFAULT_WHEELS, check=True)
        subprocess.run(pip + target + ["--no-deps"] + NO_DEPS_WHEELS, check=True)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"{len(list(out.iterdir()))} files, {size / MIB:.1f} MiB in {out}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("data", help="a CIFAR-10/MNIST mirror that fits a size budget")
    p.add_argument("--src", type=Path, default=Path(os.environ.get("REPRTUT_DATA") or ROOT.parent / "shared" / "data"),
                   help="the data mirror (default: $REPRTUT_DATA, else ../shared/data)")
    p.add_argument("--out", type=Path, default=ROOT / ".data")
    p.add_argument("--budget-mib", type=float, default=46.0, help="size of the npz files together")
    p.add_argument("--cifar-test", type=int, default=2_000, help="CIFAR-10 test images to keep")
    p = sub.add_parser("wheels", help="wheels for an offline pip install")
    p.add_argument("--out", type=Path, default=ROOT / ".whl")
    p.add_argument("--python", default="3.12", help="the target machine's Python version")
    p.add_argument("packages", nargs="*", help="default: ipywidgets (with dependencies), torchattacks")
    args = parser.parse_args(argv)
    if args.what == "data":
        print(json.dumps(data(args.src, args.out, args.budget_mib, args.cifar_test), indent=2))
    else:
        wheels(args.out, args.python, args.packages)


if __name__ == "__main__":
    main()
