"""A routed path of network namespaces for the path kinds' tests: an agent host, two
routers and a target host, with nft rules on the second router where a test asks.

::

    cli 10.N.1.2 --- 10.N.1.1 r1 10.N.2.1 --- 10.N.2.2 r2 10.N.3.1 --- 10.N.3.2 srv

The routers forward and answer every expired probe (``icmp_ratelimit`` 0: Linux's
default of one time-exceeded per second per destination would make hops look lossy).
The agent host's ``ping_group_range`` is opened so ICMP echo sockets work in it, as a
host that allows unprivileged ping would. Names are ``vtc-<pid>-<tag>-...``; removed on
exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from tests.conftest import netns_unavailable_reason


def unavailable_reason() -> str | None:
    reason = netns_unavailable_reason()
    if reason is None and shutil.which("nft") is None:
        reason = "nft (nftables) is not installed"
    return reason


def sh(*args: str, check: bool = True, timeout: float = 30, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=timeout, input=stdin)


@dataclass(frozen=True)
class Chain:
    cli: str
    r1: str
    r2: str
    srv: str
    net: int  # the second octet of 10.N.x.y

    @property
    def hops(self) -> list[str]:
        """The addresses a trace to the target must show, in order."""
        return [f"10.{self.net}.1.1", f"10.{self.net}.2.2", self.target]

    @property
    def target(self) -> str:
        return f"10.{self.net}.3.2"

    def censor(self, rules: str, *, hook: str = "forward") -> None:
        """nft rules on r2 (one per line), in its forward chain, or in prerouting (a DPI box
        in front of r2: it acts before r2 decrements the TTL, so a trigger that reaches
        r2 with TTL 1 still meets it)."""
        priority = "-150" if hook == "prerouting" else "0"
        sh("ip", "netns", "exec", self.r2, "nft", "-f", "-", stdin=(
            f"table inet censor {{\n chain pass {{\n  type filter hook {hook} priority {priority};\n"
            + "".join(f"  {line}\n" for line in rules.splitlines() if line.strip())
            + " }\n}\n"
        ))  # fmt: skip

    def serve_http(self, port: int = 80) -> subprocess.Popen[bytes]:
        """A plain HTTP server on the target host (stopped with the namespaces)."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.srv, sys.executable, "-m", "http.server", str(port), "--bind", self.target],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def probe(self, kind: str, target: str, *options: str, timeout: float = 60) -> dict[str, object]:
        """``vantage probe`` run in the agent host; its --json result."""
        args: list[str] = []
        for option in options:
            args += [option] if option.startswith("--") else ["-o", option]
        done = sh(
            "ip", "netns", "exec", self.cli, sys.executable, "-m", "vantage.cli", "probe", kind, target,
            *args, "--allow-private-targets", "--json", check=False, timeout=timeout,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr
        result: dict[str, object] = json.loads(done.stdout)
        return result


@contextlib.contextmanager
def chain(tag: str, net: int) -> Iterator[Chain]:
    prefix = f"vtc-{os.getpid()}-{tag}-"
    names = {n: prefix + n for n in ("cli", "r1", "r2", "srv")}
    created: list[str] = []
    ids = f"{os.getpid() % 10000}{net % 10}"
    try:
        for ns in names.values():
            sh("ip", "netns", "add", ns)
            created.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        links = [("cli", "r1", 1), ("r1", "r2", 2), ("r2", "srv", 3)]
        for a, b, subnet in links:
            left, right = f"va{ids}{subnet}", f"vb{ids}{subnet}"
            sh("ip", "link", "add", left, "netns", names[a], "type", "veth", "peer", "name", right, "netns", names[b])
            sh("ip", "-n", names[a], "addr", "add", f"10.{net}.{subnet}.{2 if a == 'cli' else 1}/24", "dev", left)
            sh("ip", "-n", names[b], "addr", "add", f"10.{net}.{subnet}.{1 if a == 'cli' else 2}/24", "dev", right)
            sh("ip", "-n", names[a], "link", "set", left, "up")
            sh("ip", "-n", names[b], "link", "set", right, "up")
        sh("ip", "-n", names["cli"], "route", "add", "default", "via", f"10.{net}.1.1")
        sh("ip", "-n", names["r1"], "route", "add", "default", "via", f"10.{net}.2.2")
        sh("ip", "-n", names["r2"], "route", "add", f"10.{net}.1.0/24", "via", f"10.{net}.2.1")
        sh("ip", "-n", names["srv"], "route", "add", "default", "via", f"10.{net}.3.1")
        for router in ("r1", "r2"):
            sh("ip", "netns", "exec", names[router], "sysctl", "-qw", "net.ipv4.ip_forward=1",
               "net.ipv4.icmp_ratelimit=0")  # fmt: skip
        sh("ip", "netns", "exec", names["cli"], "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
        yield Chain(names["cli"], names["r1"], names["r2"], names["srv"], net)
    finally:
        for ns in created:
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)
