"""The cache's file convention, shared by training (:func:`reprtut.cache.store`) and fetching
(:mod:`reprtut.cache.hub`): each model file ``<name>-<key>.pt`` has a sidecar
``<name>-<key>.pt.sha256`` with the SHA-256 of its bytes, written after the file itself, so a
file without a matching sidecar is never served; temporaries are ``.<file>.<pid>.tmp``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def checksum_path(path: Path) -> Path:
    """The sidecar holding the SHA-256 of ``path``: ``<path>.sha256``."""
    return path.with_name(path.name + ".sha256")


def temporary(path: Path) -> Path:
    """This process's temporary file for ``path``: ``.<name>.<pid>.tmp`` next to it."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file's bytes, 64 hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_checksum(path: Path, sha256: str) -> None:
    """Write the sidecar of ``path`` atomically (a temporary file, then a rename)."""
    side = checksum_path(path)
    tmp = temporary(side)
    try:
        tmp.write_text(sha256 + "\n")
        os.replace(tmp, side)
    finally:
        tmp.unlink(missing_ok=True)
