"""The container's HEALTHCHECK, exactly as the Dockerfile states it (only the address
changed), against a real coordinator: exit 0 while it serves, 1 with one line once it is
gone. Also with the tokens set, as the compose stack runs it."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.deploy.support import (
    free_port,
    healthcheck_command,
    running,
    stop,
    tail,
    vantage_command,
    wait_for,
)

pytestmark = pytest.mark.e2e

SHIPPED_ADDRESS = "127.0.0.1:50051"


def health_argv(address: str) -> list[str]:
    argv = healthcheck_command()
    assert argv[0] == "vantage" and SHIPPED_ADDRESS in argv, argv
    return [*vantage_command(), *(address if a == SHIPPED_ADDRESS else a for a in argv[1:])]


def run_health(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("tokens", [False, True], ids=["no-tokens", "with-tokens"])
def test_dockerfile_healthcheck_against_a_running_coordinator(tmp_path: Path, tokens: bool) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    address = f"127.0.0.1:{grpc_port}"
    env = (
        {"VANTAGE_AGENT_TOKEN": "agent-secret", "VANTAGE_API_TOKEN": "api-secret"} if tokens else {}
    )
    argv = health_argv(address)
    log = tmp_path / "coordinator.log"
    coordinator_argv = [
        *vantage_command(),
        "coordinator",
        "--listen", address,
        "--metrics-listen", f"127.0.0.1:{metrics_port}",
        "--db", str(tmp_path / "vantage.db"),
    ]  # fmt: skip
    with running(coordinator_argv, log=log, env=env) as coordinator:

        def serving() -> subprocess.CompletedProcess[str] | None:
            assert coordinator.poll() is None, f"coordinator exited:\n{tail(log)}"
            proc = run_health(argv)
            return proc if proc.returncode == 0 else None

        ok = wait_for("the coordinator to report SERVING", serving, timeout=30)
        assert "SERVING" in ok.stdout
        # The job service has its own health status.
        job = run_health([*argv, "--service", "vantage.v1.JobService"])
        assert job.returncode == 0, job.stdout + job.stderr
        unknown = run_health([*argv, "--service", "no.such.Service"])
        assert unknown.returncode == 1
        assert "unknown" in unknown.stderr and unknown.stderr.count("\n") == 1
        stop(coordinator)
        assert coordinator.returncode == 0, f"SIGTERM should stop it cleanly:\n{tail(log)}"

    down = run_health(argv)
    assert down.returncode == 1, down.stdout + down.stderr
    assert down.stdout == ""
    assert down.stderr.count("\n") == 1 and "unreachable" in down.stderr
    assert "Traceback" not in down.stderr


def test_health_bad_flags_exit_2(tmp_path: Path) -> None:
    proc = run_health([*vantage_command(), "health", "--coordinator", "no-port"])
    assert proc.returncode == 2
    assert "--coordinator" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_health([*vantage_command(), "health", "--ca", str(tmp_path / "missing.pem")])
    assert proc.returncode == 2
    assert "--ca" in proc.stderr and "Traceback" not in proc.stderr


def test_health_times_out_on_a_silent_peer() -> None:
    """A listener that accepts but never speaks HTTP/2: no answer within --timeout, exit 1."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        proc = run_health(
            [*vantage_command(), "health", "--coordinator", f"127.0.0.1:{port}", "--timeout", "1"]
        )
    assert proc.returncode == 1
    assert "no answer within 1s" in proc.stderr, proc.stderr
