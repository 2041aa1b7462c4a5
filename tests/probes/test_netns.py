"""Probes on real shaped and unreachable paths, in network namespaces the tests create.

Downloads: the server side's egress is shaped with ``tc tbf`` at 130 kbit/s and at 8 Mbit/s; curl and
the throughput probe (``vantage probe throughput`` run with ``ip netns exec`` in the
client namespace) download the same file. The probe's figure must be within 10% of
curl's and within 20% of the configured rate (the payload rate is ~4% under the wire
rate: Ethernet, IP and TCP headers). Uploads: the client side's egress is shaped (4 Mbit/s;
then 1 Mbit/s after a 1 MB burst, a policer) and the probe POSTs to the lab's target
server; its acknowledged rate must be the shaper's. Namespaces are named ``vtp-<pid>-...`` and removed
in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import netns_unavailable_reason
from tests.polling import poll

REPO = Path(__file__).resolve().parents[2]


def _skip_reason() -> str | None:
    reason = netns_unavailable_reason()
    if reason is None and shutil.which("curl") is None:
        reason = "curl is not installed (the reference figure)"
    return reason


pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason())),
]


def sh(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def namespaces(tag: str, *names: str) -> Iterator[list[str]]:
    prefix = f"vtp-{os.getpid()}-{tag}-"
    created: list[str] = []
    try:
        for name in names:
            sh("ip", "netns", "add", prefix + name)
            created.append(prefix + name)
            sh("ip", "-n", prefix + name, "link", "set", "lo", "up")
        yield created
    finally:
        for ns in created:
            sh("ip", "netns", "del", ns, check=False)


def vantage_probe(ns: str, *args: str, timeout: float = 60) -> dict[str, object]:
    done = sh(
        "ip", "netns", "exec", ns, sys.executable, "-m", "vantage.cli", "probe", *args,
        "--allow-private-targets", "--json", check=False, timeout=timeout,
    )
    assert done.returncode in (0, 1), done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def shaped_download(rate: str, rate_bps: float, size: int, burst: str, tmp: Path) -> tuple[float, float, dict[str, object]]:
    """(curl bytes/s, probe bytes/s, probe result) for one file over a tbf-shaped veth."""
    pid = os.getpid() % 100000
    (tmp / "file.bin").write_bytes(os.urandom(size))
    (tmp / "ready").write_bytes(b"ok")
    with namespaces(rate, "srv", "cli") as (srv, cli):
        sh("ip", "link", "add", f"vs{pid}", "netns", srv, "type", "veth", "peer", "name", f"vc{pid}", "netns", cli)
        sh("ip", "-n", srv, "addr", "add", "10.77.0.1/24", "dev", f"vs{pid}")
        sh("ip", "-n", cli, "addr", "add", "10.77.0.2/24", "dev", f"vc{pid}")
        sh("ip", "-n", srv, "link", "set", f"vs{pid}", "up")
        sh("ip", "-n", cli, "link", "set", f"vc{pid}", "up")
        # A queue deep enough (limit) that TCP fills it without drops: the rate is the bucket's.
        sh("ip", "netns", "exec", srv, "tc", "qdisc", "add", "dev", f"vs{pid}", "root",
           "tbf", "rate", rate, "burst", burst, "limit", "1mb")
        server = subprocess.Popen(
            ["ip", "netns", "exec", srv, sys.executable, "-m", "http.server", "8080",
             "--bind", "10.77.0.1", "--directory", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            url = "http://10.77.0.1:8080"
            _, up = poll(
                lambda: sh("ip", "netns", "exec", cli, "curl", "-sf", "-o", "/dev/null", f"{url}/ready", check=False),
                lambda proc: proc.returncode == 0, timeout=15, interval=0.1,
            )
            assert up is not None, "the server in the namespace did not start"
            curl = sh("ip", "netns", "exec", cli, "curl", "-sf", "-o", "/dev/null",
                      "-w", "%{speed_download} %{size_download}", f"{url}/file.bin")
            curl_bps, curl_bytes = (float(x) for x in curl.stdout.split())
            assert curl_bytes == size
            # burst=0: the whole file, as curl fetches it (not ended early once settled)
            result = vantage_probe(cli, "throughput", f"{url}/file.bin", "-o", "max_seconds=25",
                                   "-o", f"max_bytes={size}", "-o", "burst=0")
        finally:
            server.terminate()
            server.wait(timeout=10)
    data = result["data"]
    assert isinstance(data, dict)
    return curl_bps, float(data["bytes_per_second"]), result


@pytest.mark.parametrize(
    ("rate", "rate_bps", "size", "burst"),
    [
        ("130kbit", 130_000 / 8, 80_000, "3kb"),  # ~5 s
        ("8mbit", 8_000_000 / 8, 5_000_000, "20kb"),  # ~5 s
    ],
    ids=["130kbit", "8mbit"],
)
async def test_shaped_throughput_matches_curl_and_the_rate(
    rate: str, rate_bps: float, size: int, burst: str, tmp_path: Path
) -> None:
    curl_bps, probe_bps, result = await asyncio.to_thread(shaped_download, rate, rate_bps, size, burst, tmp_path)
    data = result["data"]
    assert isinstance(data, dict)
    assert result["failure"] == "" and data["bytes"] == size
    assert abs(probe_bps - curl_bps) / curl_bps <= 0.10, (probe_bps, curl_bps)
    assert abs(probe_bps - rate_bps) / rate_bps <= 0.20, (probe_bps, rate_bps)
    series = data["series_bps"]
    assert isinstance(series, list) and len(series) >= 10  # ~5 s in 0.25 s windows
    print(f"{rate}: curl {curl_bps:.0f} B/s, probe {probe_bps:.0f} B/s, configured {rate_bps:.0f} B/s")


def unreachable_probes() -> tuple[dict[str, object], dict[str, object]]:
    with namespaces("unreach", "x") as (ns,):
        sh("ip", "-n", ns, "route", "add", "unreachable", "10.66.0.0/16")
        host = vantage_probe(ns, "tcp", "10.66.0.1:80", "-o", "timeout=2")
        network = vantage_probe(ns, "tcp", "10.55.0.1:80", "-o", "timeout=2")
    return host, network


async def test_unreachable_host_and_network() -> None:
    host, network = await asyncio.to_thread(unreachable_probes)
    assert host["failure"] == "host_unreachable", host
    assert network["failure"] == "network_unreachable", network


def shaped_upload(rate: str, burst: str, size: int, tmp: Path, *extra: str) -> dict[str, object]:
    """The throughput probe's upload result over a veth whose client side's egress is
    shaped with tbf (rate, burst), to the lab's target server (POST /upload)."""
    pid = os.getpid() % 100000
    (tmp / "big.bin").write_bytes(b"x")
    with namespaces(f"up{rate}", "srv", "cli") as (srv, cli):
        sh("ip", "link", "add", f"us{pid}", "netns", srv, "type", "veth", "peer", "name", f"uc{pid}", "netns", cli)
        sh("ip", "-n", srv, "addr", "add", "10.78.0.1/24", "dev", f"us{pid}")
        sh("ip", "-n", cli, "addr", "add", "10.78.0.2/24", "dev", f"uc{pid}")
        sh("ip", "-n", srv, "link", "set", f"us{pid}", "up")
        sh("ip", "-n", cli, "link", "set", f"uc{pid}", "up")
        sh("ip", "netns", "exec", cli, "tc", "qdisc", "add", "dev", f"uc{pid}", "root",
           "tbf", "rate", rate, "burst", burst, "latency", "50ms")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        server = subprocess.Popen(
            ["ip", "netns", "exec", srv, sys.executable, "-m", "deploy.lab.targets", "--name", "up",
             "--address", "10.78.0.1", "--http-port", "8080", "--root", str(tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO,
        )
        try:
            url = "http://10.78.0.1:8080"
            _, up = poll(
                lambda: sh("ip", "netns", "exec", cli, "curl", "-sf", "-o", "/dev/null", f"{url}/", check=False),
                lambda proc: proc.returncode == 0, timeout=15, interval=0.1,
            )
            assert up is not None, "the server in the namespace did not start"
            return vantage_probe(cli, "throughput", f"{url}/upload", "-o", "direction=upload",
                                 "-o", f"max_bytes={size}", *extra)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


async def test_upload_rate_is_the_shaped_rate(tmp_path: Path) -> None:
    """4 Mbit/s on the client's egress: the acknowledged rate is the shaper's (payload
    ~4% under the wire rate), not what the kernel's send buffer took in at once."""
    result = await asyncio.to_thread(
        shaped_upload, "4mbit", "20kb", 2_500_000, tmp_path, "-o", "max_seconds=25", "-o", "burst=0"
    )
    data = result["data"]
    assert isinstance(data, dict)
    assert result["failure"] == "" and data["complete"] is True and data["bytes"] == 2_500_000, result
    rate = 4_000_000 / 8
    for name in ("bytes_per_second", "sustained_bps"):
        assert abs(float(data[name]) - rate) / rate <= 0.2, (name, data[name], rate)
    assert data["drop_at_s"] is None, data
    print(f"upload over 4mbit: {data['bytes_per_second']:.0f} B/s, sustained {data['sustained_bps']:.0f}")


async def test_upload_policed_after_a_burst(tmp_path: Path) -> None:
    """A policer's 1 MB burst on the uplink, then 1 Mbit/s: the drop is found and the
    sustained rate is the policer's."""
    result = await asyncio.to_thread(
        shaped_upload, "1mbit", "1mb", 20_000_000, tmp_path, "-o", "max_seconds=4",
        "-o", "burst=0",
    )
    data = result["data"]
    assert isinstance(data, dict)
    assert result["failure"] == "", result
    rate = 1_000_000 / 8
    assert data["drop_at_s"] is not None, data
    assert abs(float(data["sustained_bps"]) - rate) / rate <= 0.25, data
    assert float(data["first_part_bps"]) > 4 * rate, data
    print(f"policed upload: first part {data['first_part_bps']:.0f} B/s, sustained "
          f"{data['sustained_bps']:.0f} B/s, drop at {data['drop_at_s']:.2f} s")
