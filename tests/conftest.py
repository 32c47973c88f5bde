"""Shared pytest fixtures.

General helpers (free ports, fixture paths) live here so that other test modules can
add their own fixtures beside these.  The server fixtures start the real server
(``python -m server.run``) as a subprocess on 127.0.0.1 and stop it at the end.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
UPDATE_TOKEN = "test-token-1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    proc: subprocess.Popen
    token: str | None

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_server(
    data: Path, *args: str, token: str | None = None, ready_timeout: float = 60.0
) -> RunningServer:
    """Start ``python -m server.run`` on a free port; wait until it answers."""
    port = free_port()
    cmd = [sys.executable, "-m", "server.run", "--data", str(data), "--port", str(port), *args]
    if token:
        cmd += ["--update-token", token]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err}")
        try:
            if httpx.get(f"{url}/sparql", params={"query": "ASK {}"}, timeout=2).status_code == 200:
                return RunningServer(url, proc, token)
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(RunningServer(url, proc, token))
    raise RuntimeError("server did not become ready")


def stop_server(server: RunningServer) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(timeout=10)
    for stream in (server.proc.stdout, server.proc.stderr):
        if stream:
            stream.close()


@pytest.fixture(scope="session")
def server_sample_ttl() -> Path:
    return FIXTURES / "server_sample.ttl"


@pytest.fixture(scope="session")
def jiceng_server(server_sample_ttl: Path) -> Iterator[RunningServer]:
    """The server on the fixture graph, with an update token and default limits."""
    server = start_server(server_sample_ttl, token=UPDATE_TOKEN)
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def jiceng_server_strict(server_sample_ttl: Path) -> Iterator[RunningServer]:
    """No update token, 5-row limit, 3 s time limit."""
    server = start_server(server_sample_ttl, "--max-rows", "5", "--timeout", "3")
    yield server
    stop_server(server)


@pytest.fixture(scope="session")
def base_url(jiceng_server: RunningServer) -> str:
    return jiceng_server.url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def seed_dump(tmp_path_factory) -> Path:
    """The real graph: ``jiceng build seeds`` into a temporary directory, once per run."""
    from kg.cli import main

    out = tmp_path_factory.mktemp("build") / "kg.ttl"
    assert main(["build", str(ROOT / "seeds"), "-o", str(out), "--quiet"]) == 0
    return out
