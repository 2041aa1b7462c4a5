"""The agent stays light: what it imports to run loads none of the coordinator's code,
its analysis, its database drivers or its metrics library (benchmarks/agent_cost.py
measures its RSS)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AGENT_IMPORTS = "import vantage.cli, vantage.commands.agent_cmd, agent.session, agent.runner, agent.probes"
# top-level packages (vantage.commands.coordinator_cmd only declares the coordinator's
# options: it imports the coordinator when that command runs)
FORBIDDEN = {"coordinator", "psycopg", "prometheus_client", "sqlite3", "_sqlite3"}


def test_the_agent_loads_no_coordinator_code() -> None:
    probe = f"{AGENT_IMPORTS}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True, timeout=60)
    loaded = out.stdout.split()
    assert "agent.session" in loaded and "agent.probes.throughput" in loaded  # the probe saw the agent's modules
    heavy = [m for m in loaded if m.split(".")[0] in FORBIDDEN]
    assert heavy == [], f"the agent imports {heavy}"
