"""The rate the probe reports under a shaper is the shaper's rate (issue: "The rate Vantage
reports is the rate the censor allows").

As in the lab (``deploy/lab/lab.py``, ``Lab.shape`` and ``Lab.shape_upload``): an HTB
class at 150 kbit/s (burst one frame) with a half-second byte FIFO under it, so the
excess is dropped as a policer's is, on the server's egress for downloads and on the
client's for uploads. Before the fix the probe read 35% of the rate for downloads (TCP's
losses into the short queue read as "a fast start, then a drop") and 0 B/s for uploads.
Namespaces and helpers are those of ``tests/probes/test_netns.py``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.polling import poll
from tests.probes.test_netns import REPO, _skip_reason, namespaces, sh, vantage_probe

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]

RATE_BIT = 150_000
RATE_BYTES = RATE_BIT / 8  # 18,750 B/s on the wire; the payload is ~4% under it


def _htb(ns: str, dev: str, rate_bit: int) -> None:
    """The lab's shaper: HTB at ``rate_bit`` (burst one frame), a half-second bfifo."""
    queue_bytes = max(4 * 1514, rate_bit // 16)
    sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:",
       "htb", "default", "10")
    sh("ip", "netns", "exec", ns, "tc", "class", "add", "dev", dev, "parent", "1:", "classid",
       "1:10", "htb", "rate", f"{rate_bit}bit", "ceil", f"{rate_bit}bit", "burst", "1600",
       "cburst", "1600", "quantum", "1514")
    sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "parent", "1:10",
       "bfifo", "limit", str(queue_bytes))


def shaped_probe(direction: str, tmp: Path, *options: str) -> dict[str, object]:
    """The probe's result for a download of /big.bin (server egress shaped) or an upload
    to /upload (client egress shaped) at RATE_BIT, against the lab's target server."""
    pid = os.getpid() % 100000
    (tmp / "big.bin").write_bytes(os.urandom(2_000_000))
    with namespaces(f"acc{direction[:2]}", "srv", "cli") as (srv, cli):
        sh("ip", "link", "add", f"as{pid}", "netns", srv, "type", "veth", "peer", "name", f"ac{pid}",
           "netns", cli)
        sh("ip", "-n", srv, "addr", "add", "10.79.0.1/24", "dev", f"as{pid}")
        sh("ip", "-n", cli, "addr", "add", "10.79.0.2/24", "dev", f"ac{pid}")
        # small GSO segments, as in the lab: tc sees ~MTU packets, not 64 kB ones that a
        # half-second queue at 150 kbit/s (9 kB) can never hold
        gso = () if os.environ.get("VTP_KEEP_GSO") else ("gso_max_size", "1500")
        sh("ip", "-n", srv, "link", "set", f"as{pid}", *gso, "up")
        sh("ip", "-n", cli, "link", "set", f"ac{pid}", *gso, "up")
        if direction == "download":
            _htb(srv, f"as{pid}", RATE_BIT)
        else:
            _htb(cli, f"ac{pid}", RATE_BIT)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        server = subprocess.Popen(
            ["ip", "netns", "exec", srv, sys.executable, "-m", "deploy.lab.targets", "--name", "acc",
             "--address", "10.79.0.1", "--http-port", "8080", "--root", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO,
        )
        try:
            url = "http://10.79.0.1:8080"
            _, up = poll(
                lambda: sh("ip", "netns", "exec", cli, "curl", "-sf", "-o", "/dev/null", f"{url}/",
                           check=False),
                lambda proc: proc.returncode == 0, timeout=15, interval=0.1,
            )
            assert up is not None, "the server in the namespace did not start"
            if direction == "download":
                return vantage_probe(cli, "throughput", f"{url}/big.bin", *options)
            return vantage_probe(cli, "throughput", f"{url}/upload", "-o", "direction=upload",
                                 *options)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def _check(result: dict[str, object]) -> dict[str, object]:
    data = result["data"]
    assert isinstance(data, dict)
    assert result["failure"] == "", result
    assert data["drop_at_s"] is None, data  # a shaper, not a policer: no burst, no drop
    # the payload is ~4% under the wire rate (Ethernet, IP and TCP headers)
    assert abs(float(data["sustained_bps"]) - RATE_BYTES * 0.96) / RATE_BYTES <= 0.10, data
    return data


async def test_a_shaped_download_reads_the_shapers_rate(tmp_path: Path) -> None:
    """The lab's job options (max_seconds=4, the default burst and settle)."""
    result = await asyncio.to_thread(shaped_probe, "download", tmp_path, "-o", "max_seconds=4")
    data = _check(result)
    assert data["stopped_by"] == "max_seconds", data
    print(f"download at 150 kbit/s: sustained {data['sustained_bps']:.0f} B/s, mean "
          f"{data['bytes_per_second']:.0f} B/s, configured {RATE_BYTES:.0f} B/s on the wire")


async def test_a_shaped_upload_reads_the_shapers_rate(tmp_path: Path) -> None:
    result = await asyncio.to_thread(
        shaped_probe, "upload", tmp_path, "-o", "max_seconds=6", "-o", "max_bytes=5M"
    )
    data = _check(result)
    print(f"upload at 150 kbit/s: sustained {data['sustained_bps']:.0f} B/s, mean "
          f"{data['bytes_per_second']:.0f} B/s, configured {RATE_BYTES:.0f} B/s on the wire")
