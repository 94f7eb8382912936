"""``python -m reprtut.cache export``: the bundle of trained models that
``$REPRTUT_MODELS_URL`` serves (:mod:`.hub`) — model files and ``manifest.json``.

:func:`export` copies the cached file of each spec (by default every recipe the book uses,
:func:`reprtut.recipes.catalog.specs`, with the models they start from) into a folder, after
checking it against its SHA-256 sidecar, and writes the manifest listing each file's SHA-256
and size. With them go the models the cache's ledger says a page of the book asked for under
the profile (:func:`asked_by_pages`: the values a page sweeps over; ledger lines written
before the ledger recorded the profile are not counted). Models not in the cache are listed as
missing, or trained first with ``train=True`` (the catalog's; a model known only from the
ledger is trained by running its page). A file's name carries its spec's key, which covers the profile, ``$REPRTUT_SEED`` and whether
the data came from ``$REPRTUT_DATA`` or torchvision: a bundle serves readers whose settings
match the exporting machine's in these.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

from .. import __version__, ledger, profiles
from . import ModelSpec, cache_dir, get, path_of
from .files import checksum_path, sha256_of, temporary
from .hub import FORMAT, MANIFEST


def export(out: Path, specs: list[tuple[str, ModelSpec]] | None = None, *,
           train: bool = False, pages: bool = True) -> tuple[list[str], list[str]]:
    """Write the bundle of ``specs`` (``(label, spec)`` pairs; default: the catalog's, with
    their ``init`` models, under the active profile) into folder ``out``.

    With ``pages``, the bundle also holds every model that the cache's ledger says a page of
    the book (a requester ``….md``) asked for under the active profile: the values a page
    sweeps over (λ grids, learning rates, restarts) that the catalog calls one example of.
    Returns ``(written, missing)``: the file names in the manifest, and the labels of the
    models that are not in the cache (or fail its checksum there) and so are not in the
    bundle; with ``train=True`` the missing specs are trained first (:func:`reprtut.cache.get`;
    a model known only from the ledger cannot be). Files already in ``out`` that the manifest
    does not list are left alone.
    """
    if specs is None:
        from ..recipes import catalog  # the recipes import the cache: read only when needed
        specs = catalog.specs(with_init=True)
    wanted = []
    for label, spec in specs:
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"specs must hold (label, ModelSpec) pairs; {label!r} has a "
                            f"{type(spec).__name__}")
        wanted.append((label, path_of(spec), spec))
    if pages:
        wanted += [(label, path, None) for label, path in asked_by_pages()]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files, missing = {}, []
    for label, path, spec in wanted:
        if path.name in files:
            continue
        if train and spec is not None and _checked(path) is None:
            get(spec, progress=False)
        sha = _checked(path)
        if sha is None:
            missing.append(f"{label} ({path.name})")
            continue
        _copy(path, out / path.name)
        files[path.name] = {"sha256": sha, "size": (out / path.name).stat().st_size}
    manifest = {"format": FORMAT, "profile": profiles.name(), "seed": profiles.seed(),
                "version": __version__, "files": dict(sorted(files.items()))}
    tmp = temporary(out / MANIFEST)
    try:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(tmp, out / MANIFEST)
    finally:
        tmp.unlink(missing_ok=True)
    return sorted(files), missing


def asked_by_pages() -> list[tuple[str, Path]]:
    """``(label, cache path)`` of every model the ledger says a page of the book asked for
    under the active profile, in the order first asked; the label names the page."""
    folder, seen = cache_dir(), {}
    for row in ledger.read(folder):
        asker = str(row.get("requester", ""))
        if ".md" in asker and row.get("profile") == profiles.name() and "name" in row and "key" in row:
            seen.setdefault(f"{row['name']}-{row['key']}.pt", f"{row['name']} (asked by {asker})")
    return [(label, folder / name) for name, label in seen.items()]


def _checked(path: Path) -> str | None:
    """The SHA-256 of the cached file when its sidecar agrees, else None (absent or damaged)."""
    side = checksum_path(path)
    if not path.is_file() or not side.is_file():
        return None
    sha = sha256_of(path)
    return sha if sha == side.read_text().strip() else None


def _copy(src: Path, dst: Path) -> None:
    tmp = temporary(dst)
    try:
        shutil.copyfile(src, tmp)
        if sha256_of(tmp) != checksum_path(src).read_text().strip():
            raise RuntimeError(f"{src} changed while it was copied to {dst}")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reprtut.cache",
        description="The model cache's tools. 'export' writes the bundle that "
                    "REPRTUT_MODELS_URL serves: the cached file of every recipe the book uses "
                    "(reprtut.recipes.catalog, with the models they start from) and "
                    "manifest.json with each file's SHA-256 and size.")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser(
        "export", help="write the bundle of trained models for a profile",
        description="Copy the trained models of every recipe the book uses from the cache "
                    "($REPRTUT_CACHE) into DIR, checked against their SHA-256 sidecars, and "
                    "write DIR/manifest.json, with every other model the ledger says a page "
                    "asked for under the profile (--no-pages leaves those out). Models not "
                    "in the cache are listed as missing and left out (exit status 1), "
                    "unless --train trains them first (those of the catalog; a model known "
                    "only from the ledger is trained by running its page). A "
                    "file's name holds its spec's key, which covers the profile, "
                    "$REPRTUT_SEED and whether the data came from $REPRTUT_DATA or "
                    "torchvision: export with the settings of the readers it serves.")
    ex.add_argument("--profile", required=True, choices=profiles.NAMES,
                    help="the profile whose models are exported")
    ex.add_argument("--out", required=True, type=Path, metavar="DIR", help="the bundle's folder (created)")
    ex.add_argument("--train", action="store_true",
                    help="train the models missing from the cache (may take hours on a CPU)")
    ex.add_argument("--no-pages", dest="pages", action="store_false",
                    help="only the catalog's recipes, not what the ledger says pages asked for")
    args = parser.parse_args(argv)
    os.environ[profiles.ENV] = args.profile
    written, missing = export(args.out, train=args.train, pages=args.pages)
    print(f"{len(written)} model files and {MANIFEST} written to {args.out} (profile "
          f"{args.profile}, cache {cache_dir()})")
    if missing:
        print(f"{len(missing)} not in the cache, left out (--train trains the catalog's):")
        for label in missing:
            print(f"  {label}")
    return 1 if missing else 0
