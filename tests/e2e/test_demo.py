"""`vantage demo` (the README's first command) runs real processes and shows a throttled
and a blocked region, without root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(180)
def test_demo_shows_ru_throttled_and_blocked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    out = subprocess.run(
        [sys.executable, "-m", "vantage.cli", "demo", "--duration", "30s", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=150, env=env, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {
        # (region, host, path) -> the verdict words ("throttled (upload)")
        (cols[0], cols[1].split("//")[1].split(".")[0], cols[1].rsplit("/", 1)[1]):
            " ".join(cols[2:4]) if cols[3].startswith("(") else cols[2]
        for line in out.stdout.splitlines()
        if (cols := line.split()) and cols[0] in ("de-fra", "us-nyc", "ru-msk") and "//" in cols[1]
    }  # fmt: skip
    assert rows[("ru-msk", "twitter", "blob")] == "throttled", out.stdout
    assert rows[("ru-msk", "twitter", "upload")] == "throttled (upload)", out.stdout
    assert rows[("ru-msk", "facebook", "")] == "blocked (connection_refused)", out.stdout
    for region in ("de-fra", "us-nyc"):
        assert rows[(region, "twitter", "blob")] in ("ok", "inconclusive"), out.stdout
        assert rows[(region, "twitter", "upload")] in ("ok", "inconclusive"), out.stdout
        assert rows[(region, "facebook", "")] == "ok", out.stdout
    assert "outage: none" in out.stdout and "degraded: none" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr
    # Quiet by default: the story on stdout, no log lines anywhere on the terminal; the
    # logs are in the state directory.
    assert out.stdout.splitlines()[0].startswith("vantage demo: a coordinator, six agents")
    assert out.stderr == "", out.stderr
    assert not any(word in out.stdout for word in ("relay_started", "[info", "[warning", '"event"'))
    demo_log = (tmp_path / "demo.log").read_text()
    assert demo_log.count('"event": "relay_started"') == 12, demo_log[:2000]
    for name in ("coordinator", "ru-msk-1", "de-fra-2"):
        assert (tmp_path / f"{name}.log").exists()


def test_demo_verbose_shows_its_log_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    out = subprocess.run(
        [sys.executable, "-m", "vantage.cli", "demo", "--duration", "10s", "--verbose",
         "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=150, env=env, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr.count('"event": "relay_started"') == 12, out.stderr[:2000]
    assert '"event": "relay_started"' not in out.stdout
    # the coordinator and agents log at info level into their files
    assert '"event": "agent_connected"' in (tmp_path / "coordinator.log").read_text()
