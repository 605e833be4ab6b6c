"""A real holdfast-server per test module (or per test, for the ones that stop it)."""

import os
import subprocess
import tempfile

import pytest

SECRET = "pytest-secret-of-at-least-thirty-two-characters"


class Server:
    """holdfast-server on a free loopback port, with its database in a temporary folder."""

    def __init__(self):
        binary = os.environ.get("HOLDFAST_SERVER_BIN")
        if not binary:
            raise RuntimeError("HOLDFAST_SERVER_BIN must name the holdfast-server binary (run_tests.sh sets it)")
        self._folder = tempfile.TemporaryDirectory(prefix="holdfast-server-")
        env = dict(os.environ, HOLDFAST_SECRET=SECRET, RUST_LOG="warn")
        self._process = subprocess.Popen(
            [
                binary,
                "--listen",
                "127.0.0.1:0",
                "--database",
                f"sqlite:{self._folder.name}/server.db",
                "--rate-limit",
                "off",
                "--ip-block",
                "off",
            ],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        line = self._process.stdout.readline().strip()
        prefix = "listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"holdfast-server did not start: {line!r}")
        self.url = line[len(prefix):]

    def stop(self):
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()

    def close(self):
        self.stop()
        self._folder.cleanup()


@pytest.fixture(scope="module")
def server():
    started = Server()
    yield started
    started.close()


@pytest.fixture
def own_server():
    """A server this test may stop."""
    started = Server()
    yield started
    started.close()
