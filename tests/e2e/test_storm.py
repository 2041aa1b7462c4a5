"""A storm of connections: a real `vantage coordinator` and 2,500 simulated agents
(benchmarks/loadgen.py, two processes, one TCP connection per agent, the real agent's
backoff) dialling it at once, and again after a kill -9 and restart.

gRPC's defaults refuse a random share of new streams once 1,000 wait for a handler and
every one past 3,000 (seen by clients as "INTERNAL: Internal error from Core"); this
many at once failed 14 to 60% of first attempts before the coordinator raised the
limit (coordinator/server.py MAX_PENDING_STREAMS). Now not one attempt may fail while the
coordinator is up; while it is down, refused connections are the only failures."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import network, wait_for

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
AGENTS = 2500
PROCS = 2


class Storm:
    """The load generator's processes and their latest counters."""

    def __init__(self, address: str) -> None:
        self.latest: list[dict[str, Any]] = [{} for _ in range(PROCS)]
        self.procs = []
        self.readers = []
        per = AGENTS // PROCS
        for i in range(PROCS):
            p = subprocess.Popen(
                [sys.executable, str(ROOT / "benchmarks" / "loadgen.py"), address, str(i * per), str(per), "5", str(i)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
            )  # fmt: skip
            self.procs.append(p)
            reader = threading.Thread(target=self._read, args=(i, p), daemon=True)
            reader.start()
            self.readers.append(reader)

    def _read(self, i: int, p: subprocess.Popen[str]) -> None:
        assert p.stdout is not None
        for line in p.stdout:
            self.latest[i] = json.loads(line)

    def connected(self) -> int:
        return sum(int(s.get("connected", 0)) for s in self.latest)

    def attempts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.latest:
            for k, v in s.get("attempts", {}).items():
                out[k] = out.get(k, 0) + v
        return out

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait(10)
        for reader, p in zip(self.readers, self.procs, strict=True):
            reader.join(10)  # it reads to the end of the dead process's output
            assert p.stdout is not None
            p.stdout.close()


def test_a_storm_of_agents_gets_in_without_a_failed_attempt_and_again_after_a_kill_9(
    tmp_path: Path,
) -> None:
    with network(tmp_path) as net:
        net.start_coordinator()
        storm = Storm(net.address)
        try:
            t0 = time.monotonic()
            wait_for(lambda: storm.connected() == AGENTS, 120, f"{AGENTS} agents connected")
            took = time.monotonic() - t0
            assert storm.attempts() == {}, f"failed attempts in the storm: {storm.attempts()}"
            # every one of them is known to the coordinator as connected
            assert len([a for a in net.client().agents() if a.connected]) == AGENTS

            assert net.coordinator is not None
            net.coordinator.kill()
            wait_for(
                lambda: storm.connected() == 0, 60, "every session to see the coordinator gone"
            )
            net.start_coordinator()
            wait_for(lambda: storm.connected() == AGENTS, 120, f"{AGENTS} agents back")
            attempts = storm.attempts()
            # each agent's session ended once ("ok": it had been welcomed); what else failed
            # could only be refused while nothing listened
            assert attempts.get("ok") == AGENTS
            unexpected = {k: v for k, v in attempts.items() if k not in ("ok", "UNAVAILABLE-down")}
            assert unexpected == {}, f"failed attempts against a running coordinator: {attempts}"
            print(f"{AGENTS} agents in after {took:.1f}s; after the restart: {attempts}")
        finally:
            storm.stop()
