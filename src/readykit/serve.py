"""Run a server as a child process on a free loopback port: for `check` with no URL, and tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from readykit.errors import ToolFailure


class ServerStartError(ToolFailure):
    """The child server did not start listening (it exited, or not in time); the message and
    `output` carry what it printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    host: str, port: int, deadline: float, alive: Callable[[], bool] | None = None
) -> bool:
    """Poll until `host:port` accepts a connection, the monotonic `deadline` passes or (when
    given) `alive()` says the process that should listen is gone."""
    while time.monotonic() < deadline and (alive is None or alive()):
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class ServerProcess:
    """A running child server."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, wait up to `timeout` for a graceful exit, then SIGKILL; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def serve(
    argv: Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    start_timeout: float = 30.0,
) -> Iterator[ServerProcess]:
    """Start `argv` (`{port}` and `{host}` are substituted) and stop it when the block ends."""
    port = port or free_port(host)
    args = [a.format(port=port, host=host) for a in argv]
    with tempfile.NamedTemporaryFile(prefix="readykit-server-", suffix=".log", delete=False) as f:
        log_path = Path(f.name)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
        )
    server = ServerProcess(process, host, port, log_path)

    def alive() -> bool:
        return process.poll() is None

    try:
        if not wait_for_port(host, port, time.monotonic() + start_timeout, alive):
            exited = not alive()
            code = server.stop()
            output = server.output()[-2000:]
            why = f"it exited with code {code}" if exited else f"not within {start_timeout:g}s"
            raise ServerStartError(
                f"{' '.join(args)} did not listen on {host}:{port} ({why}); its output:\n{output}",
                output,
            )
        yield server
    finally:
        server.stop()
        log_path.unlink(missing_ok=True)
