"""The README's Python example runs as written against a real coordinator (only the
address, region and target are pointed at this test's network)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import Network, Targets

pytestmark = pytest.mark.e2e
README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_client_example(net: Network, targets: Targets) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    code = (
        blocks[0]
        .replace("127.0.0.1:50051", net.address)
        .replace('regions=["de-fra"]', 'regions=["ru"]')
        .replace("example.org:443", f"127.0.0.1:{targets.http_port}")
        .replace("every_s=10", "every_s=1")
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # agent, the place it measured from, target, outcome, connect time
    assert sum(1 for line in lines if line.split()[:2] == ["ru-1", "ru"] and line.split()[3] == "ok") == 3, out.stdout
    assert lines[-1] == "job ended: 3 3 results", out.stdout
