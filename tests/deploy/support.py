"""Helpers for the deployment tests: repository paths, free ports, child processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from tests.polling import poll

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def installed_vantage() -> str:
    """The absolute path of the `vantage` console script that ``pip install -e .`` put
    beside this interpreter (or on PATH). Its absence fails the test: the install is
    broken, and a skip would hide that."""
    beside = Path(sys.executable).parent / "vantage"
    if beside.is_file():
        return str(beside)
    found = shutil.which("vantage")
    if found is None:
        raise AssertionError(
            f"no `vantage` console script beside {sys.executable} or on PATH: run pip install -e ."
        )
    return found


def vantage_command() -> list[str]:
    """How to run the `vantage` console script of this checkout."""
    exe = shutil.which("vantage")
    if exe is not None:
        return [exe]
    return [sys.executable, "-m", "vantage.cli"]


def wait_for(
    what: str, probe: Callable[[], T | None], *, timeout: float, interval: float = 0.5
) -> T:
    """Call probe until it returns something other than None; fail after timeout seconds."""
    value, took = poll(probe, lambda v: v is not None, timeout=timeout, interval=interval)
    if took is None or value is None:
        raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
    return value


@contextlib.contextmanager
def running(
    argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run argv in its own process group, output to log; stop it (TERM, then KILL) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], *, grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=grace)


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def http_get(url: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET url; (status, body), or (0, b"") when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


def prom_query(base: str, expr: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """Instant query through Prometheus' HTTP API; the decoded JSON answer."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, body = http_get(url, timeout=timeout)
    if status == 0:
        raise AssertionError(f"Prometheus at {base} did not answer the query {expr!r}")
    answer: dict[str, Any] = json.loads(body)
    return answer


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        line = pending + stripped
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def healthcheck_command() -> list[str]:
    """The exec-form CMD of the Dockerfile's HEALTHCHECK."""
    (health,) = [rest for word, rest in dockerfile_instructions() if word == "HEALTHCHECK"]
    _, sep, cmd = health.partition(" CMD ")
    assert sep, "HEALTHCHECK must use CMD"
    argv = json.loads(cmd)
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return argv
