"""Trained models fetched by hash from a bundle at ``$REPRTUT_MODELS_URL``, before training.

A bundle is a folder served at a base URL (``https://…/``, ``http://…/`` or ``file:///…/``):
the cache's model files ``<name>-<key>.pt`` and ``manifest.json``, which maps each file name to
its SHA-256 and size in bytes (``python -m reprtut.cache export`` writes one)::

    {"format": 1, "profile": "quick", "version": "0.1.0",
     "files": {"mnist-standard-0123456789ab.pt": {"sha256": "<64 hex digits>", "size": 123456}}}

:func:`fetch` is what :func:`reprtut.cache.get` asks, under the model's lock, for a file that is
not in the cache: it downloads the file into a temporary file next to it, checks its size and
SHA-256 against the manifest, and only then moves it into place and writes the cache's SHA-256
sidecar. Whatever goes wrong — no answer within ``$REPRTUT_DOWNLOAD_TIMEOUT`` seconds, an HTTP
error, a manifest that is not JSON or does not list the file, a truncated or altered file —
is reported with a :class:`FetchWarning` and the caller trains the model as before: nothing
unchecked is ever served, and a file already in the cache is never touched. Only the standard
library speaks HTTP here; no hosting service is assumed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path

from .. import data as data_mod
from .files import temporary, write_checksum

URL_ENV = "REPRTUT_MODELS_URL"
MANIFEST = "manifest.json"
FORMAT = 1
MAX_MANIFEST = 16 << 20           # bytes: a manifest is a few kB; more is not one
CHUNK = 1 << 20                   # bytes read per request of the body
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# One manifest per base URL and process; a failure is remembered too, so that a server that
# does not answer costs one timeout per run, not one per model.
_manifests: dict[str, dict | Exception] = {}


class FetchWarning(UserWarning):
    """A model could not be fetched from ``$REPRTUT_MODELS_URL`` and is trained instead."""


def base_url() -> str | None:
    """``$REPRTUT_MODELS_URL`` with a trailing ``/``, or None when it is unset or empty.

    Raises ``ValueError`` for a URL that is not http(s):// or file://.
    """
    value = os.environ.get(URL_ENV, "").strip()
    if not value:
        return None
    if urllib.parse.urlsplit(value).scheme not in ("http", "https", "file"):
        raise ValueError(f"{URL_ENV}={value!r} must be an http://, https:// or file:// URL of "
                         f"a folder holding {MANIFEST}")
    return value if value.endswith("/") else value + "/"


def forget() -> None:
    """Drop the manifests (and failures) remembered by this process."""
    _manifests.clear()


def fetch(path: Path) -> bool:
    """Download the cache file ``path`` (``<name>-<key>.pt``) from the bundle, checked.

    Returns True when ``path`` and its SHA-256 sidecar now hold exactly the bytes the manifest
    lists; False, with a :class:`FetchWarning` saying why, when the URL is set but the file
    could not be fetched and checked (nothing is written then), and False silently when
    ``$REPRTUT_MODELS_URL`` is unset or ``path`` already exists (never overwritten). Call it
    with the model's lock held.
    """
    path = Path(path)
    base = base_url()
    if base is None or path.exists():
        return False
    try:
        entry = _entry(base, path.name)
        _download(base + urllib.parse.quote(path.name), path, **entry)
    except _Unavailable as why:
        warnings.warn(f"model cache: not fetching {path.name} from {base}: {why}; training it "
                      f"instead", FetchWarning, stacklevel=3)
        return False
    return True


class _Unavailable(Exception):
    """Why a file cannot be fetched (the message of the warning)."""


def _entry(base: str, name: str) -> dict:
    """The manifest's ``{"sha256", "size"}`` for file ``name``, checked."""
    manifest = _manifests.get(base)
    if manifest is None:
        try:
            manifest = _manifests[base] = _read_manifest(base)
        except _Unavailable as err:
            _manifests[base] = err
            raise
    if isinstance(manifest, Exception):
        raise _Unavailable(f"{manifest} (earlier in this run)")
    entry = manifest["files"].get(name)
    if entry is None:
        raise _Unavailable(f"the bundle's {MANIFEST} does not list it")
    sha, size = (entry.get("sha256"), entry.get("size")) if isinstance(entry, dict) else (None, None)
    if not isinstance(sha, str) or not _SHA256.match(sha) or \
            not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _Unavailable(f"the bundle's {MANIFEST} lists it without a SHA-256 (64 hex "
                           f"digits) and a size in bytes: {entry!r}")
    return {"sha256": sha, "size": size}


def _read_manifest(base: str) -> dict:
    body = bytearray()
    try:
        with _open(base + MANIFEST, MANIFEST) as response:
            while len(body) <= MAX_MANIFEST and (chunk := response.read(CHUNK)):
                body += chunk
    except (OSError, http.client.HTTPException) as err:  # the server stalled or cut the body
        raise _Unavailable(_why(err, MANIFEST, data_mod.download_timeout())) from None
    if len(body) > MAX_MANIFEST:
        raise _Unavailable(f"{MANIFEST} is over {MAX_MANIFEST} bytes")
    try:
        manifest = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _Unavailable(f"{MANIFEST} is not JSON ({err})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise _Unavailable(f"{MANIFEST} has no \"files\" mapping")
    if manifest.get("format") != FORMAT:
        raise _Unavailable(f"{MANIFEST} has format {manifest.get('format')!r}; this version "
                           f"reads format {FORMAT}")
    return manifest


def _open(url: str, what: str):
    """``urlopen(url)`` with the download timeout, its failures turned into :class:`_Unavailable`."""
    timeout = data_mod.download_timeout()
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise _Unavailable(f"the server answered HTTP {err.code} ({err.reason}) for {what}") from None
    except (OSError, http.client.HTTPException) as err:  # URLError, TimeoutError among them
        raise _Unavailable(_why(err, what, timeout)) from None


def _why(err: Exception, what: str, timeout: float) -> str:
    reason = getattr(err, "reason", err)  # a URLError wraps the socket's error
    if isinstance(reason, TimeoutError):
        return f"no answer for {what} within {timeout:g} s ({data_mod.TIMEOUT_ENV})"
    if isinstance(reason, (http.client.HTTPException, ConnectionError)):
        return f"the connection broke while reading {what} ({reason!r})"
    return f"the server could not be reached for {what} ({reason})"


def _download(url: str, path: Path, *, sha256: str, size: int) -> None:
    """Stream ``url`` into a temporary file next to ``path``, reading at most ``size + 1``
    bytes, and move it to ``path`` (then write its sidecar) only if size and SHA-256 match."""
    tmp = temporary(path)  # the cache removes it if this process dies
    h, n = hashlib.sha256(), 0
    try:
        with _open(url, path.name) as response, open(tmp, "wb") as f:
            while n <= size and (chunk := response.read(min(CHUNK, size + 1 - n))):
                h.update(chunk)
                f.write(chunk)
                n += len(chunk)
        if n != size:
            raise _Unavailable(f"got {n}{'+' if n > size else ''} bytes, the manifest lists "
                               f"{size} (a truncated or different file)")
        if h.hexdigest() != sha256:
            raise _Unavailable(f"its SHA-256 is {h.hexdigest()[:16]}..., the manifest lists "
                               f"{sha256[:16]}... (a damaged or different file)")
        os.replace(tmp, path)
    except (OSError, http.client.HTTPException) as err:  # a timeout or a cut connection mid-body
        raise _Unavailable(_why(err, path.name, data_mod.download_timeout())) from None
    finally:
        tmp.unlink(missing_ok=True)
    write_checksum(path, sha256)  # after the file, as reprtut.cache.store does
