"""A real Redis for tests: Debian's redis-server on a free loopback port, in a temp directory of its own, without
persistence (no RDB snapshots, no append-only file), for the shared counters of several app processes
(RATELIMIT_STORAGE_URI=redis://...)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from .smtp import HOST, free_port

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer:
    """One redis-server process: `start()`, `url`, `flush()`, `stop()` (which also deletes its directory)."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="ri-redis-"))
        self.host, self.port = HOST, free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--bind", self.host, "--port", str(self.port), "--dir", str(self.root),
             "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--daemonize", "no",
             "--logfile", str(self.root / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.command("PING") == b"+PONG":
                    return
            except OSError:
                pass
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.process.stderr.read().decode()}\n{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start in 10 s\n{self.log()}")
            time.sleep(0.02)

    def command(self, *words: str) -> bytes:
        """One command in Redis' inline protocol; the first line of the answer (enough for PING and FLUSHALL)."""
        with socket.create_connection((self.host, self.port), timeout=2) as connection:
            connection.sendall(" ".join(words).encode() + b"\r\n")
            return connection.makefile("rb").readline().rstrip(b"\r\n")

    def flush(self) -> None:
        """Forget every key (between tests)."""
        assert self.command("FLUSHALL") == b"+OK"

    def log(self) -> str:
        path = self.root / "redis.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process.stderr.close()
            self.process = None
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_process():
    """One redis-server for the test run, started when a test first asks for it."""
    if not Path(REDIS_SERVER).exists():
        pytest.fail(f"{REDIS_SERVER} is missing: install redis-server")
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server(redis_process) -> RedisServer:
    """The run's Redis, emptied for this test."""
    redis_process.flush()
    return redis_process
