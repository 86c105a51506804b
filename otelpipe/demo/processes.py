"""Child processes of the demo: the two services under `opentelemetry-instrument`, with their output kept.

Each child gets its own process group so that stopping the demo (or Ctrl-C) never leaves an
orphan behind, and its output is read by a thread into a bounded buffer the live view samples.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago (the child binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """One demo service started as `opentelemetry-instrument python -m MODULE --port PORT`."""

    def __init__(
        self, name: str, module: str, port: int, env: dict[str, str], *, keep_lines: int = 500
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.lines: deque[str] = deque(maxlen=keep_lines)
        instrument = Path(sys.executable).with_name("opentelemetry-instrument")
        self._proc = subprocess.Popen(
            [str(instrument), sys.executable, "-m", module, "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,  # own process group: Ctrl-C in the terminal reaches only the demo
        )
        self._reader = threading.Thread(target=self._read, name=f"demo-{name}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return int(self._proc.pid)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def wait_ready(self, path: str = "/healthz", timeout_s: float = 60.0) -> None:
        """Poll `path` until it answers 200; raise RuntimeError with the child's output if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited during start:\n" + "\n".join(self.lines))
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout_s:.0f}s:\n" + "\n".join(self.lines))

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM the process group (telemetry is flushed at exit), SIGKILL what is left after `timeout_s`."""
        if self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(5)
        self._reader.join(2)
        return self._proc.returncode
