"""Run the weedseg service in a real uvicorn process on 127.0.0.1 for tests (a free port)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(settings_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """Start uvicorn on `weedseg.service.app:create_app` with WEEDSEG_* settings; wait for
    /readyz."""
    port = free_port()
    env = {**os.environ, "WEEDSEG_PROVIDERS": "cpu", "OMP_NUM_THREADS": "1", **settings_env}
    command = [sys.executable, "-m", "uvicorn", "weedseg.service.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {process.stderr.read()}")
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready in 60 s")
            time.sleep(0.05)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
