"""Fixtures: real ``finegrain serve`` processes on free loopback ports.

The binary is ``$FINEGRAIN_BIN`` (default ``<repo>/.build/debug/finegrain``). A missing binary fails the
tests that need a server (it is not a reason to skip).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "python" / "src"
TOKEN = "s3cret-test-token"

# Run from a checkout without installing: fall back to the source tree.
try:
    import finegrain  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(SRC))


def finegrain_bin() -> Path:
    """The server binary under test."""
    return Path(os.environ.get("FINEGRAIN_BIN") or REPO / ".build" / "debug" / "finegrain")


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One running ``finegrain serve``."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path, token: Optional[str]):
        self.proc = proc
        self.port = port
        self.log = log
        self.token = token
        self.url = f"http://127.0.0.1:{port}"

    def log_text(self) -> str:
        """What the server printed so far."""
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def start_server(log_dir: Path, extra: List[str], token: Optional[str] = None, wait_s: float = 60) -> Server:
    """Start ``finegrain serve --port <free port> [extra...]`` and wait for ``GET /healthz``."""
    binary = finegrain_bin()
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"FineGrain binary {binary} not found or not executable: build it with `swift build` "
                    f"or set FINEGRAIN_BIN", pytrace=False)
    env = {k: v for k, v in os.environ.items() if k not in ("FINEGRAIN_TOKEN",)}
    last = ""
    for attempt in range(3):  # a port taken between probing and binding: try another
        port = free_port()
        log = log_dir / f"serve-{port}.log"
        args = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), *extra]
        if token:
            args += ["--token", token]
        with open(log, "wb") as f:
            proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        server = Server(proc, port, log, token)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if _healthy(port):
                return server
            time.sleep(0.1)
        last = server.log_text()
        server.stop()
    pytest.fail(f"finegrain serve did not become healthy: {last}", pytrace=False)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The main server: no token, default limits."""
    s = start_server(tmp_path_factory.mktemp("serve"), [])
    yield s
    s.stop()


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with ``--token TOKEN --max-body-mb 1``."""
    s = start_server(tmp_path_factory.mktemp("serve-token"), ["--max-body-mb", "1"], token=TOKEN)
    yield s
    s.stop()


@pytest.fixture()
def client(server: Server):
    """A fresh :class:`finegrain.Client` for the main server."""
    from finegrain import Client

    c = Client(server.url, timeout=60)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _service_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the adapters (FINEGRAIN_URL) at the main server; never inherit a token or params."""
    monkeypatch.delenv("FINEGRAIN_TOKEN", raising=False)
    monkeypatch.delenv("FINEGRAIN_PARAMS", raising=False)
    if "no_server" in request.keywords:
        return
    s = request.getfixturevalue("server")
    monkeypatch.setenv("FINEGRAIN_URL", s.url)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_server: the test does not need the main FineGrain server")
