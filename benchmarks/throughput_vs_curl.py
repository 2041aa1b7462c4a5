"""Throughput probe vs curl on an unshaped loopback download (issue 2: ratio >= 0.90).

Serves one file of ``--size-mb`` (default 256 MB) from a separate process with a
sendfile-based aiohttp ``FileResponse`` on 127.0.0.1, then downloads it alternately with
``curl -o /dev/null`` and with the throughput probe (in this process), ``--rounds`` times
each, and prints both rates, the median of each and their ratio. The machine is shared
and noisy, so both are measured in the same run, interleaved, and the medians compared.

    python benchmarks/throughput_vs_curl.py [--size-mb 256] [--rounds 3] [--quick] [--json PATH]

Exits 1 when the ratio is under 0.90, 2 when curl is not installed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.figlib import Figures, add_args, apply_quick

SERVER = r"""
import sys
from aiohttp import web
path, port = sys.argv[1], int(sys.argv[2])
async def serve(request):
    return web.FileResponse(path, chunk_size=1 << 20)
app = web.Application()
app.router.add_get("/file", serve)
web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(port: int, deadline_s: float = 15.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the file server did not start on port {port}")


def curl_rate(url: str) -> float:
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return float(out[0])


def probe_rate(url: str, size: int) -> tuple[float, float]:
    """(bytes_per_second as the probe reports it, bytes / duration_s incl. the first byte)."""
    from agent.probes import parse_spec, run_probe
    from agent.probes.base import Limits

    limits = Limits(allow_private_targets=True, max_bytes_cap=size, max_timeout_s=120.0)
    # burst=0: the whole file, as curl fetches it (not ended early once settled)
    spec = parse_spec(
        "throughput", url, {"max_bytes": str(size), "max_seconds": "120", "burst": "0"}, limits
    )
    outcome = asyncio.run(run_probe(spec, limits))
    if outcome.failure or outcome.data["bytes"] != size:
        raise SystemExit(f"probe failed: {outcome.failure} {outcome.failure_detail} {outcome.data}")
    return float(outcome.data["bytes_per_second"]), size / float(outcome.data["duration_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    add_args(parser, "--size-mb 128 --rounds 5 (a few seconds; fewer, smaller rounds are too noisy for the ratio)")
    args = parser.parse_args()
    apply_quick(args, parser, {"size_mb": 128, "rounds": 5})
    figs = Figures("throughput_vs_curl", args.quick)
    if shutil.which("curl") is None:
        print("curl is not installed", file=sys.stderr)
        figs.skip("throughput probe vs curl", "curl is not installed")
        figs.write(args.json)
        return 2
    size = args.size_mb * 1024 * 1024
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload.bin"
        with path.open("wb") as out:
            block = os.urandom(1 << 20)
            for _ in range(args.size_mb):
                out.write(block)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(path), str(port)])
        try:
            wait_for(port)
            url = f"http://127.0.0.1:{port}/file"
            curl_rates: list[float] = []
            probe_rates: list[float] = []
            probe_whole: list[float] = []
            for round_no in range(1, args.rounds + 1):
                curl_rates.append(curl_rate(url))
                mean, whole = probe_rate(url, size)
                probe_rates.append(mean)
                probe_whole.append(whole)
                print(
                    f"round {round_no}: curl {curl_rates[-1] / 1e6:9.1f} MB/s   "
                    f"probe {probe_rates[-1] / 1e6:9.1f} MB/s "
                    f"(bytes/duration_s {probe_whole[-1] / 1e6:9.1f} MB/s)",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(timeout=10)
    curl_median = statistics.median(curl_rates)
    probe_median = statistics.median(probe_rates)
    ratio = probe_median / curl_median
    print(f"size: {args.size_mb} MiB over 127.0.0.1, {args.rounds} rounds each, medians:")
    print(f"curl:  {curl_median / 1e6:9.1f} MB/s")
    print(f"probe: {probe_median / 1e6:9.1f} MB/s (bytes_per_second)")
    print(f"probe: {statistics.median(probe_whole) / 1e6:9.1f} MB/s (bytes / duration_s)")
    print(f"ratio: {ratio:.3f} (target >= 0.90): {'PASS' if ratio >= 0.90 else 'FAIL'}")
    mib = f"{args.size_mb} MiB, {args.rounds} rounds, median"
    figs.add(f"curl download, {mib}", curl_median / 1e6, "MB/s")
    figs.add(f"probe download (bytes_per_second), {mib}", probe_median / 1e6, "MB/s")
    figs.add(f"probe download (bytes / duration_s), {mib}", statistics.median(probe_whole) / 1e6, "MB/s")
    figs.add("probe / curl", ratio, "", 0.90, "higher")
    figs.write(args.json)
    return 0 if ratio >= 0.90 else 1


if __name__ == "__main__":
    sys.exit(main())
