"""Trained models fetched by hash from ``$REPRTUT_MODELS_URL``, against real servers on the
loopback address: a bundle exported from one cache and fetched into an empty one (no training),
and each way the fetch can go wrong — a wrong hash, a truncated file, a connection cut in the
middle of the file, a server that stalls in the middle of the manifest or the file, a 404, a manifest that is not JSON, a server that accepts the connection
and never answers. In each bad case nothing unchecked is served, the model is trained as
without the URL, a FetchWarning says what happened, and a good cached file is never lost."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import socket
import threading
import time
from pathlib import Path

import pytest
import torch

import reprtut as rt
from reprtut.cache import ModelSpec, bundle, hub
from reprtut.recipes import catalog
from reprtut.train import TrainConfig

TIMEOUT = 1.0  # seconds: what $REPRTUT_DOWNLOAD_TIMEOUT allows a silent server here


def _tiny() -> ModelSpec:
    """Trains in about a second on one core."""
    return ModelSpec(name="hub-tiny", dataset="mnist", arch="mnist_cnn",
                     arch_kwargs={"width": 2, "hidden": 8}, n_train=128, n_eval=0,
                     train=TrainConfig(epochs=1, batch_size=64, lr=0.05))


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the bundle's folder; ``cut`` names files whose body stops half way (the
    Content-Length promises all of it), after which the server closes the connection, or
    with ``stall`` waits twice the client's timeout; every request path is recorded."""

    def __init__(self, *args, cut=(), stall=False, seen=None, **kwargs):
        self.cut, self.stall, self.seen = cut, stall, seen
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.seen.append(self.path)
        name = self.path.lstrip("/")
        if name not in self.cut:
            return super().do_GET()
        body = (Path(self.directory) / name).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        if self.stall:
            time.sleep(2 * TIMEOUT)
        self.close_connection = True

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def serve():
    """``serve(folder, cut=(), stall=False)`` starts an HTTP server on 127.0.0.1 (any free port) serving
    ``folder`` and returns ``(base URL, list of request paths)``; stopped after the test."""
    servers = []

    def start(folder: Path, cut=(), stall=False):
        seen = []
        handler = functools.partial(_Handler, directory=str(folder), cut=cut, stall=stall, seen=seen)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent():
    """A server on 127.0.0.1 that accepts connections and never answers; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(0.2)
    held, stop = [], threading.Event()

    def accept():
        while not stop.is_set() and len(held) < 8:  # bounded: a test makes one or two requests
            try:
                held.append(sock.accept()[0])
            except OSError:  # the accept timed out, or the socket was closed
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    sock.close()


@pytest.fixture
def env(monkeypatch, tmp_path):
    """An empty cache, a short download timeout, no manifest remembered from earlier tests."""
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(rt.data.TIMEOUT_ENV, str(TIMEOUT))
    monkeypatch.delenv(hub.URL_ENV, raising=False)
    hub.forget()
    yield tmp_path
    hub.forget()


@pytest.fixture
def exported(env, monkeypatch):
    """The tiny model trained once into a first cache and exported: (bundle folder, weights)."""
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(env / "origin"))
    trained = rt.cache.get(_tiny(), device="cpu", progress=False)
    written, missing = bundle.export(env / "bundle", [("tiny", _tiny())])
    assert written == [trained.path.name] and missing == []
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(env / "cache"))
    return env / "bundle", trained.path.name, trained.model.state_dict()


def _count_training(monkeypatch) -> list:
    runs, real = [], rt.cache._train
    monkeypatch.setattr(rt.cache, "_train", lambda *a, **k: runs.append(1) or real(*a, **k))
    return runs


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_bundle_is_fetched_into_an_empty_cache_without_training(exported, serve, monkeypatch):
    folder, name, weights = exported
    manifest = json.loads((folder / hub.MANIFEST).read_text())
    assert manifest["format"] == hub.FORMAT and manifest["profile"] == rt.profiles.name()
    assert manifest["files"][name] == {"sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
                                       "size": (folder / name).stat().st_size}
    url, seen = serve(folder)
    monkeypatch.setenv(hub.URL_ENV, url)
    monkeypatch.setattr(rt.cache, "_train", lambda *a, **k: pytest.fail("a fetched model was trained"))
    got = rt.cache.get(_tiny(), device="cpu", progress=False)
    assert seen == ["/manifest.json", f"/{name}"]
    assert _same(got.model.state_dict(), weights)
    assert rt.cache.checksum_path(got.path).read_text().strip() == manifest["files"][name]["sha256"]
    assert [r["event"] for r in rt.ledger.read(got.path.parent)] == ["fetch", "load"]


def _damage(folder: Path, name: str, how: str) -> None:
    path = folder / name
    if how == "wrong hash":        # one byte changed, same size
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "truncated file":  # the bundle's copy lost its second half
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "404":             # listed in the manifest, absent on the server
        path.unlink()
    elif how == "manifest not JSON":
        (folder / hub.MANIFEST).write_text("<html>Sign in to continue</html>")


BAD = {  # case -> the words its warning must hold
    "wrong hash": r"its SHA-256 is [0-9a-f]{16}\.\.\., the manifest lists",
    "truncated file": r"got \d+ bytes, the manifest lists \d+ \(a truncated",
    "cut connection": r"got \d+ bytes, the manifest lists \d+ \(a truncated",
    "stalled file": r"no answer for hub-tiny-\w+\.pt within 1 s \(REPRTUT_DOWNLOAD_TIMEOUT\)",
    "stalled manifest": r"no answer for manifest\.json within 1 s",
    "404": r"the server answered HTTP 404",
    "manifest not JSON": r"manifest\.json is not JSON",
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_fetch_serves_nothing_and_trains_the_model(case, exported, serve, monkeypatch):
    folder, name, _ = exported
    _damage(folder, name, case)
    cut = {"cut connection": (name,), "stalled file": (name,), "stalled manifest": (hub.MANIFEST,)}
    url, seen = serve(folder, cut=cut.get(case, ()), stall=case.startswith("stalled"))
    monkeypatch.setenv(hub.URL_ENV, url)
    runs = _count_training(monkeypatch)
    with pytest.warns(hub.FetchWarning, match=BAD[case]) as caught:
        got = rt.cache.get(_tiny(), device="cpu", progress=False)
    print(f"{case}: {caught[0].message}")
    assert runs == [1], "the model is trained instead"
    assert rt.cache.sha256_of(got.path) == rt.cache.checksum_path(got.path).read_text().strip()
    if case in ("wrong hash", "truncated file"):
        assert got.path.read_bytes() != (folder / name).read_bytes(), "the damaged copy is not served"
    assert not list(got.path.parent.glob(".*.tmp")), "no temporary file left behind"


def test_a_server_that_never_answers_costs_one_timeout(env, silent, monkeypatch):
    monkeypatch.setenv(hub.URL_ENV, silent)
    runs = _count_training(monkeypatch)
    with pytest.warns(hub.FetchWarning, match=rf"no answer for manifest\.json within {TIMEOUT:g} s "
                                              rf"\(REPRTUT_DOWNLOAD_TIMEOUT\)") as caught:
        rt.cache.get(_tiny(), device="cpu", progress=False)
    print(f"never answers: {caught[0].message}")
    assert runs == [1]
    other = ModelSpec(**{**_tiny().__dict__, "name": "hub-tiny-2"})
    with pytest.warns(hub.FetchWarning, match="earlier in this run"):  # not a second timeout
        rt.cache.get(other, device="cpu", progress=False)
    assert runs == [1, 1]


def test_a_good_cached_file_is_never_replaced_or_lost(exported, serve, monkeypatch):
    """A cached model is loaded without asking the server, even one serving a damaged copy;
    and a failed fetch of another model leaves the cached one as it was."""
    folder, name, weights = exported
    rt.cache.get(_tiny(), device="cpu", progress=False)   # trained into the empty cache
    cached = rt.cache.path_of(_tiny())
    before = cached.read_bytes()
    _damage(folder, name, "wrong hash")
    url, seen = serve(folder)
    monkeypatch.setenv(hub.URL_ENV, url)
    monkeypatch.setattr(rt.cache, "_train", lambda *a, **k: pytest.fail("a cached model was trained"))
    rt.cache.get(_tiny(), device="cpu", progress=False)
    assert seen == [] and cached.read_bytes() == before
    assert hub.fetch(cached) is False and seen == [], "fetch never overwrites a file"
    other = rt.cache.path_of(ModelSpec(**{**_tiny().__dict__, "name": "hub-tiny-2"}))
    with pytest.warns(hub.FetchWarning, match="does not list it"):
        assert hub.fetch(other) is False
    assert not other.exists() and cached.read_bytes() == before


def test_the_url_setting_is_checked(env, monkeypatch):
    assert hub.base_url() is None
    monkeypatch.setenv(hub.URL_ENV, "ftp://example.org/models")
    with pytest.raises(ValueError, match="REPRTUT_MODELS_URL='ftp://example.org/models' must be"):
        hub.base_url()
    monkeypatch.setenv(hub.URL_ENV, "http://127.0.0.1:9/models")
    assert hub.base_url() == "http://127.0.0.1:9/models/"


def test_export_lists_what_the_cache_lacks_and_the_cli_writes_the_bundle(env, monkeypatch, capsys):
    monkeypatch.setattr(catalog, "specs", lambda with_init=False: [("tiny()", _tiny())])
    out = env / "bundle"
    assert bundle.main(["export", "--profile", "quick", "--out", str(out)]) == 1
    assert "tiny()" in capsys.readouterr().out
    assert json.loads((out / hub.MANIFEST).read_text())["files"] == {}
    assert bundle.main(["export", "--profile", "quick", "--out", str(out), "--train"]) == 0
    files = json.loads((out / hub.MANIFEST).read_text())["files"]
    assert list(files) == [rt.cache.path_of(_tiny()).name]


def test_export_adds_the_models_pages_asked_for_under_the_profile(env, monkeypatch):
    """A value a page sweeps over is not in the catalog; the ledger says the page asked for it."""
    swept = ModelSpec(**{**_tiny().__dict__, "name": "hub-tiny-swept"})
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "book/09_sweep.md::Cell 4 (call)")
    rt.cache.get(swept, device="cpu", progress=False)
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "tests/test_hub.py::a_test (call)")
    rt.cache.get(_tiny(), device="cpu", progress=False)   # asked by a test, not a page
    written, missing = bundle.export(env / "bundle", [])
    assert written == [rt.cache.path_of(swept).name] and missing == []
    assert bundle.export(env / "bundle", [], pages=False) == ([], [])
    monkeypatch.setenv("REPRTUT_PROFILE", "full")   # the page asked under quick
    assert bundle.export(env / "full", []) == ([], [])
