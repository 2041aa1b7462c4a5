"""The network-namespace lab: regions, targets, shaping, and real vantage processes.

Everything lives in namespaces named ``<prefix>...`` (``vlab-<4 hex>-`` by default):

- ``<prefix>core``: the regions' access router, the coordinator (gRPC and /metrics on
  198.18.0.1), the resolvers and the block-page server, and, on each link toward an agent
  host, a ``tc`` HTB tree that shapes by target source address.
- ``<prefix>tr1`` and ``<prefix>tr2``: two transit routers between the core and the
  targets. The censor sits on ``tr1``, the middle hop, as nft rules keyed on the region's
  host addresses (``break_target`` reset and drop, ``police_path``).
- ``<prefix>www``: the targets (one address each on ``lo``). From an agent host the path
  to a target is four hops: its core address (198.18.<k>.1), tr1 (198.19.254.2), tr2
  (198.19.254.6), the target (``Lab.path``). Every router answers expiring probes at
  once (``icmp_ratelimit`` 0), so traceroutes see every hop.
- ``<prefix><region>-<n>``: one namespace per agent host, ``eth0`` linked by its own veth
  pair to the core (``vh<k>`` there). A region is the set of its hosts. One host per agent
  gives each agent its own address and its own line, so the throttle is per subscriber, as
  in March 2021, and two agents downloading at once do not split one 130 kbit/s class.

Only 198.18.0.0/15 addresses are used, and only inside the lab's namespaces; veths are
created directly inside them, so nothing is left in the root namespace.

The ``Lab`` API is synchronous and blocking (call it from a thread in async code).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from prometheus_client.parser import text_string_to_metric_families

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PREFIX_ROOT = "vlab-"
DEFAULT_REGIONS = ("ru", "de", "us")
DEFAULT_TARGETS = ("twitter", "control", "facebook", "kremlin", "cdn")
COORDINATOR_ADDR = "198.18.0.1"
# The lab ISP's block-page server (break_target "block_page" and "dns"), in another /24
# (and /16) than the targets, as an ISP's own server is in another network than the site.
BLOCK_PAGE_ADDR = "198.19.0.2"
RESOLVER_ADDR = "198.19.0.3"  # the regions' resolver (plain DNS, port 53): it can lie
DOT_ADDR = "198.19.1.4"  # an honest resolver over TLS (port 853), outside the regions
NFT_TABLE = "vlab"  # the core's nft table (a block page's DNAT)
CENSOR_TABLE = "vlab_censor"  # tr1's nft table: the on-path censor
TARGET_NET = "198.18.0.0/24"  # the targets, behind the transit routers
ROUTERS = ("tr1", "tr2")
CENSOR_ROUTER = "tr1"
# The transit links, one /30 each: core-tr1, tr1-tr2, tr2-www. The lower address is on
# the nearer namespace's "t-up", the higher on the farther one's "t-down".
TRANSIT_NET = "198.19.254"
# The agents' offline IP-to-ASN table (--asn-file): the lab as one network, each transit
# link its router's own (tr1's is where the censor sits), from the documentation range.
LAB_ASNS = (
    ("198.18.0.0/15", 64500),
    (f"{TRANSIT_NET}.0/30", 64511),
    (f"{TRANSIT_NET}.4/30", 64512),
    (f"{TRANSIT_NET}.8/30", 64513),
)
GRPC_PORT = 50051
METRICS_PORT = 9477
FIRST_TARGET_HOST = 10  # twitter = 198.18.0.10, control = .11, ...
BIG_FILE_BYTES = 10 * 1024 * 1024
TWITTER_2021_RATE_BIT = 130_000
DEFAULT_PACE_BYTES = 40_000  # a degraded target: about 1/60 of a 20 Mbit/s line
_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
_CLONE_NEWNET = 0x40000000

T = TypeVar("T")


class LabError(RuntimeError):
    """The lab could not be built or a command failed; the message says which and why."""


@dataclass(frozen=True, kw_only=True)
class Target:
    name: str
    index: int
    address: str

    @property
    def hostname(self) -> str:
        return f"{self.name}.lab"


@dataclass(frozen=True, kw_only=True)
class Host:
    """One agent host: its namespace and its veth link to the core."""

    region: str
    n: int  # 1-based within the region
    k: int  # 1-based over the lab: the link subnet 198.18.<k>.0/24
    ns: str
    core_if: str
    core_addr: str
    addr: str

    @property
    def agent_id(self) -> str:
        return f"{self.region}-{self.n}"


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]


@dataclass
class _PathState:
    """What is applied on one (region, target) path: shaped at rate, or broken how."""

    rate_bit: int | None = None
    burst_bytes: int | None = None  # a policer's (police): tbf instead of a bfifo leaf
    broken: str | None = None


def run(argv: Sequence[str], *, check: bool = True, timeout: float = 30) -> str:
    """Run a command; raise LabError with its stderr when it fails and ``check``."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def _setns_thread_initializer(ns_path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(ns_path, os.O_RDONLY)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({ns_path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def netns_executor(ns: str) -> ThreadPoolExecutor:
    """A one-thread executor whose thread lives in network namespace ``ns``.

    Sockets created on that thread belong to ``ns`` (and stay there whichever thread uses
    them later); the rest of the process is untouched.
    """
    return ThreadPoolExecutor(
        max_workers=1,
        thread_name_prefix=f"netns-{ns}",
        initializer=_setns_thread_initializer,
        initargs=(f"/var/run/netns/{ns}",),
    )


def list_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_namespace_processes(ns: str, grace_s: float = 3.0) -> None:
    pids = [int(p) for p in run(["ip", "netns", "pids", ns], check=False).split()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            pids = [int(p) for p in run(["ip", "netns", "pids", ns], check=False).split()]
            if not pids:
                return
            time.sleep(0.1)


def cleanup_prefix(prefix: str = DEFAULT_PREFIX_ROOT) -> list[str]:
    """Kill processes in, and delete, every namespace whose name starts with ``prefix``."""
    if not prefix:
        raise LabError("prefix: must not be empty (it would match every namespace)")
    removed = []
    for ns in list_namespaces():
        if ns.startswith(prefix):
            _kill_namespace_processes(ns)
            run(["ip", "netns", "del", ns], check=False)
            removed.append(ns)
    return removed


def parse_metrics(text: str) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
    """Exposition text -> {sample name: {frozenset(labels): value}}."""
    out: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
    return out


class Lab:
    """Build the lab, run vantage in it, shape and break paths, tear it all down.

    >>> with Lab() as lab:
    ...     lab.shape("ru", "twitter")           # 130 kbit/s downstream, ru hosts only
    ...     lab.break_target("ru", "facebook")   # TCP reset (default) for ru
    ...     lab.take_down("kremlin")             # connection refused from everywhere
    ...     lab.submit("throughput", [lab.url("twitter")], every="10s", ...)
    ...     print(lab.metrics_text())
    """

    def __init__(
        self,
        *,
        regions: Sequence[str] = DEFAULT_REGIONS,
        agents_per_region: int = 2,
        targets: Sequence[str] = DEFAULT_TARGETS,
        prefix: str | None = None,
        run_vantage: bool = True,
        coordinator_args: Sequence[str] = (),
        agent_args: Sequence[str] = (),
        agent_args_by_id: Mapping[str, Sequence[str]] | None = None,
        big_file_bytes: int = BIG_FILE_BYTES,
        keep_dir: bool = False,
        line_rate_bit: int | None = None,
        uplink_rate_bit: int | None = None,
    ) -> None:
        for label, names in (("regions", regions), ("targets", targets)):
            if not names:
                raise LabError(f"{label}: at least one is needed")
            for name in names:
                if not _NAME_RE.fullmatch(name):
                    raise LabError(f"{label}: {name!r} must match {_NAME_RE.pattern}")
            if len(set(names)) != len(names):
                raise LabError(f"{label}: duplicates in {list(names)}")
        if not 1 <= agents_per_region <= 8:
            raise LabError(f"agents_per_region: must be 1..8, got {agents_per_region}")
        if len(regions) * agents_per_region > 250:
            raise LabError("regions x agents_per_region: at most 250 hosts")
        if len(targets) > 200:
            raise LabError("targets: at most 200")
        if line_rate_bit is not None and line_rate_bit < 100_000:
            raise LabError(f"line_rate_bit: at least 100000 bit/s, got {line_rate_bit}")
        # Every host's own line (like a VPS uplink): all traffic toward the host that no
        # shaping or break claims goes through one HTB class at this rate. None: unshaped.
        self.line_rate_bit = line_rate_bit
        if uplink_rate_bit is not None and uplink_rate_bit < 100_000:
            raise LabError(f"uplink_rate_bit: at least 100000 bit/s, got {uplink_rate_bit}")
        # The same line upstream (host -> core, on the host's eth0): uploads then measure
        # the line, not the CPU. None: unshaped (the host's eth0 gets a qdisc only when an
        # upload is throttled).
        self.uplink_rate_bit = uplink_rate_bit
        self._uplinks: set[str] = set()  # hosts (ns) whose eth0 has the HTB root
        self._uploads: dict[tuple[str, str], int] = {}  # (region, target) -> upload rate
        self._congested: dict[str, int] = {}  # region -> its hosts' line rate
        self.prefix = prefix or f"{DEFAULT_PREFIX_ROOT}{secrets.token_hex(2)}-"
        self.core_ns = f"{self.prefix}core"
        self.router_ns = tuple(f"{self.prefix}{r}" for r in ROUTERS)
        self.www_ns = f"{self.prefix}www"
        self.regions = tuple(regions)
        self.targets = {
            name: Target(name=name, index=i, address=f"198.18.0.{FIRST_TARGET_HOST + i}")
            for i, name in enumerate(targets)
        }
        self.hosts: list[Host] = []
        k = 0
        for region in self.regions:
            for n in range(1, agents_per_region + 1):
                k += 1
                self.hosts.append(
                    Host(
                        region=region,
                        n=n,
                        k=k,
                        ns=f"{self.prefix}{region}-{n}",
                        core_if=f"vh{k}",
                        core_addr=f"198.18.{k}.1",
                        addr=f"198.18.{k}.2",
                    )
                )
        self.run_vantage = run_vantage
        self.coordinator_args = tuple(coordinator_args)
        self.agent_args = tuple(agent_args)
        # extra arguments of single agents, by id ("de-1": ["--concurrency", "1"])
        ids = {h.agent_id for h in self.hosts}
        for agent_id in agent_args_by_id or {}:
            if agent_id not in ids:
                raise LabError(f"agent_args_by_id: {agent_id!r} is not one of {sorted(ids)}")
        self.agent_args_by_id = {k: tuple(v) for k, v in (agent_args_by_id or {}).items()}
        self._cut: set[str] = set()
        self._block_pages: set[tuple[str, str]] = set()  # (region, target) sent to the block page
        self._dns_lies: set[tuple[str, str]] = set()  # (region, target) whose name is lied about
        self._sni_paces: dict[tuple[str, str], int] = {}  # (region, target) -> SNI throttle rate
        self._policed: dict[tuple[str, str], tuple[int, int]] = {}  # on tr1: (rate bit/s, burst bytes)
        self.big_file_bytes = big_file_bytes
        self.keep_dir = keep_dir
        self.agent_token = secrets.token_urlsafe(24)
        self.api_token = secrets.token_urlsafe(24)
        self.dir = Path(tempfile.mkdtemp(prefix=self.prefix))
        self.ca_file = self.dir / "ca.pem"
        self._procs: dict[str, _Proc] = {}
        self._paths: dict[tuple[str, str], _PathState] = {}
        self._namespaces: list[str] = []
        self._core_exec: ThreadPoolExecutor | None = None
        self._closed = False
        self._started = False

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> Lab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def coordinator(self) -> str:
        return f"{COORDINATOR_ADDR}:{GRPC_PORT}"

    @property
    def metrics_url(self) -> str:
        return f"http://{COORDINATOR_ADDR}:{METRICS_PORT}/metrics"

    def start(self) -> None:
        if self._started:
            raise LabError("lab already started")
        self._started = True
        atexit.register(self.close)
        self._build_network()
        self._core_exec = netns_executor(self.core_ns)
        self._write_files()
        for target in self.targets.values():
            self._start_target(target)
        self._start_resolver()
        for target in self.targets.values():
            self._wait_tcp(target.address, 80, what=f"target {target.name}")
        self._wait_tcp(DOT_ADDR, 853, what="the lab's DoT resolver", proc="resolver")
        if self.run_vantage:
            self._start_coordinator()
            for host in self.hosts:
                self._start_agent(host)

    def close(self) -> None:
        """Stop every process, delete every namespace; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        # agents first (they drain into the coordinator), then the coordinator, then targets
        order = sorted(
            self._procs.values(),
            key=lambda p: (0 if p.name.startswith("agent") else 1 if p.name == "coord" else 2),
        )
        for proc in order:
            self._stop_proc(proc)
        if self._core_exec is not None:
            self._core_exec.shutdown(wait=False, cancel_futures=True)
        for ns in reversed(self._namespaces):
            _kill_namespace_processes(ns)
            run(["ip", "netns", "del", ns], check=False)
        if not self.keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ network
    def _ns_add(self, ns: str) -> None:
        run(["ip", "netns", "add", ns])
        self._namespaces.append(ns)
        run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def _build_network(self) -> None:
        clash = [ns for ns in list_namespaces() if ns.startswith(self.prefix)]
        if clash:
            raise LabError(f"prefix: namespaces {clash} already exist (run `down` first)")
        core = self.core_ns
        self._ns_add(core)
        run(["ip", "-n", core, "addr", "add", f"{COORDINATOR_ADDR}/32", "dev", "lo"])
        for address in (BLOCK_PAGE_ADDR, RESOLVER_ADDR, DOT_ADDR):
            run(["ip", "-n", core, "addr", "add", f"{address}/32", "dev", "lo"])
        self._build_transit()
        for host in self.hosts:
            self._ns_add(host.ns)
            run(
                [
                    "ip", "link", "add", host.core_if, "netns", core, "type", "veth",
                    "peer", "name", "eth0", "netns", host.ns,
                ]
            )  # fmt: skip
            run(["ip", "-n", core, "addr", "add", f"{host.core_addr}/24", "dev", host.core_if])
            # small GSO segments, so tc sees ~MTU packets and the shaped rate is smooth
            run(["ip", "-n", core, "link", "set", host.core_if, "gso_max_size", "1500", "up"])
            run(["ip", "-n", host.ns, "addr", "add", f"{host.addr}/24", "dev", "eth0"])
            run(["ip", "-n", host.ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", host.ns, "route", "add", "default", "via", host.core_addr])
            if self.uplink_rate_bit is not None:
                self._uplink_root(host)
            # HTB root without a default class: unclassified traffic (gRPC, control, ...)
            # goes out unshaped; classes appear only for shaped or dropped targets
            if self.line_rate_bit is None:
                run(["tc", "-n", core, "qdisc", "add", "dev", host.core_if, "root", "handle",
                     "1:", "htb"])  # fmt: skip
            else:
                run(["tc", "-n", core, "qdisc", "add", "dev", host.core_if, "root", "handle",
                     "1:", "htb", "default", "ff"])  # fmt: skip
                run(["tc", "-n", core, "class", "add", "dev", host.core_if, "parent", "1:",
                     "classid", "1:ff", "htb", "rate", f"{self.line_rate_bit}bit",
                     "ceil", f"{self.line_rate_bit}bit"])  # fmt: skip

    def _build_transit(self) -> None:
        """core -> tr1 -> tr2 -> www, a /30 per link, the targets on www's ``lo``."""
        chain = [self.core_ns, *self.router_ns, self.www_ns]
        for ns in chain[1:]:
            self._ns_add(ns)
        for i, (near, far) in enumerate(itertools.pairwise(chain)):
            up, down = f"{TRANSIT_NET}.{4 * i + 1}", f"{TRANSIT_NET}.{4 * i + 2}"
            run(["ip", "link", "add", "t-up", "netns", near, "type", "veth", "peer", "name", "t-down", "netns", far])
            run(["ip", "-n", near, "addr", "add", f"{up}/30", "dev", "t-up"])
            run(["ip", "-n", far, "addr", "add", f"{down}/30", "dev", "t-down"])
            run(["ip", "-n", near, "link", "set", "t-up", "up"])
            run(["ip", "-n", far, "link", "set", "t-down", "up"])
            run(["ip", "-n", near, "route", "add", TARGET_NET, "via", down])
            run(["ip", "-n", far, "route", "add", "default", "via", up])
        for ns in chain:
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0"])
        for target in self.targets.values():
            run(["ip", "-n", self.www_ns, "addr", "add", f"{target.address}/32", "dev", "lo"])
        # The targets send MTU-sized segments, not 64 kB TSO ones: a GSO packet crosses the
        # veths and routers whole, and the core's shapers would then account and release
        # it in 64 kB steps.
        run(["ip", "-n", self.www_ns, "link", "set", "t-down", "gso_max_size", "1500"])

    def path(self, host: Host, target: str) -> list[str]:
        """The hops from ``host`` to ``target``, as a traceroute must see them."""
        routers = [f"{TRANSIT_NET}.{4 * i + 2}" for i in range(len(ROUTERS))]
        return [host.core_addr, *routers, self.target(target).address]

    @property
    def censor_hop(self) -> tuple[int, str]:
        """The TTL and the address at which the censor (tr1) sits, from any agent host."""
        return 1 + 1 + ROUTERS.index(CENSOR_ROUTER), f"{TRANSIT_NET}.{4 * ROUTERS.index(CENSOR_ROUTER) + 2}"

    def hosts_of(self, region: str) -> list[Host]:
        hosts = [h for h in self.hosts if h.region == region]
        if not hosts:
            raise LabError(f"region: {region!r} is not one of {list(self.regions)}")
        return hosts

    def target(self, name: str) -> Target:
        try:
            return self.targets[name]
        except KeyError:
            raise LabError(f"target: {name!r} is not one of {list(self.targets)}") from None

    def url(self, target: str, *, https: bool = False, path: str = "/big.bin") -> str:
        t = self.target(target)
        return f"{'https' if https else 'http'}://{t.address}{path}"

    def _tc_slot(self, target: Target) -> tuple[str, str]:
        minor = f"{0x10 + target.index:x}"
        return f"1:{minor}", str(10 + target.index)  # classid, filter prio

    def _clear_path(self, region: str, target: Target) -> None:
        state = self._paths.pop((region, target.name), None)
        if state is None:
            return
        classid, prio = self._tc_slot(target)
        for host in self.hosts_of(region):
            if state.rate_bit is not None and state.broken is None:
                run(["tc", "-n", self.core_ns, "filter", "del", "dev", host.core_if,
                     "parent", "1:", "prio", prio], check=False)  # fmt: skip
                run(["tc", "-n", self.core_ns, "class", "del", "dev", host.core_if,
                     "classid", classid], check=False)  # fmt: skip
            if state.broken == "unreachable":
                run(["ip", "-n", host.ns, "route", "del", "unreachable",
                     f"{target.address}/32"], check=False)  # fmt: skip
        if state.broken in ("reset", "drop", "police"):
            self._policed.pop((region, target.name), None)
            self._apply_censor()
        if state.broken == "block_page":
            self._block_pages.discard((region, target.name))
            self._apply_nft()
        if state.broken == "dns":
            self._dns_lies.discard((region, target.name))
            self._write_lie_file()

    def _classify(self, host: Host, target: Target, *, rate_bit: int, leaf: list[str]) -> None:
        classid, prio = self._tc_slot(target)
        dev = host.core_if
        burst = "1600"  # about one frame: the rate holds at the 100 ms scale
        run(["tc", "-n", self.core_ns, "class", "replace", "dev", dev, "parent", "1:",
             "classid", classid, "htb", "rate", f"{rate_bit}bit", "ceil", f"{rate_bit}bit",
             "burst", burst, "cburst", burst, "quantum", "1514"])  # fmt: skip
        run(["tc", "-n", self.core_ns, "qdisc", "replace", "dev", dev, "parent", classid,
             *leaf])  # fmt: skip
        run(["tc", "-n", self.core_ns, "filter", "replace", "dev", dev, "parent", "1:",
             "protocol", "ip", "prio", prio, "u32", "match", "ip", "src",
             f"{target.address}/32", "flowid", classid])  # fmt: skip

    def shape(self, region: str, target: str, rate_bit: int = TWITTER_2021_RATE_BIT) -> None:
        """Throttle ``target`` -> hosts of ``region`` to ``rate_bit`` bits/s (on the wire).

        HTB on the core-side veth, classified by the target's source address, with a short
        byte FIFO (half a second at the rate) so excess is dropped, as a policer would.
        """
        if rate_bit < 8000:
            raise LabError(f"rate_bit: at least 8000 bit/s, got {rate_bit}")
        t = self.target(target)
        hosts = self.hosts_of(region)
        self._clear_path(region, t)
        queue_bytes = max(4 * 1514, rate_bit // 16)
        for host in hosts:
            self._classify(host, t, rate_bit=rate_bit, leaf=["bfifo", "limit", str(queue_bytes)])
        self._paths[(region, target)] = _PathState(rate_bit=rate_bit)

    def police(
        self,
        region: str,
        target: str,
        rate_bit: int = 1_000_000,
        burst_bytes: int = 1_000_000,
    ) -> None:
        """A policer with a burst on ``target`` -> hosts of ``region``: a token bucket (tc
        ``tbf``) that lets ``burst_bytes`` through at the line's speed and holds the flow
        to ``rate_bit`` after that; the bucket refills at the rate while the flow is idle,
        so each download (a round apart) gets its burst again. Under the HTB class of the
        target (at the line rate, so the burst runs at line speed), with a queue of 50 ms
        at the rate: the excess is dropped, as a policer's is."""
        if rate_bit < 8000:
            raise LabError(f"rate_bit: at least 8000 bit/s, got {rate_bit}")
        if not 16_000 <= burst_bytes <= 100_000_000:
            raise LabError(f"burst_bytes: 16000 to 100000000, got {burst_bytes}")
        t = self.target(target)
        hosts = self.hosts_of(region)
        self._clear_path(region, t)
        line = self.line_rate_bit or 1_000_000_000
        for host in hosts:
            self._classify(
                host, t, rate_bit=max(line, rate_bit),
                leaf=["tbf", "rate", f"{rate_bit}bit", "burst", str(burst_bytes),
                      "latency", "50ms"],
            )  # fmt: skip
        self._paths[(region, target)] = _PathState(rate_bit=rate_bit, burst_bytes=burst_bytes)

    def _uplink_root(self, host: Host) -> None:
        """The HTB root on the host's eth0 (its upstream), with the line class 1:ff as
        the default when there is an uplink rate; created once."""
        if host.ns in self._uplinks:
            return
        if self.uplink_rate_bit is None:
            run(["tc", "-n", host.ns, "qdisc", "add", "dev", "eth0", "root", "handle", "1:",
                 "htb"])  # fmt: skip
        else:
            run(["tc", "-n", host.ns, "qdisc", "add", "dev", "eth0", "root", "handle", "1:",
                 "htb", "default", "ff"])  # fmt: skip
            run(["tc", "-n", host.ns, "class", "add", "dev", "eth0", "parent", "1:", "classid",
                 "1:ff", "htb", "rate", f"{self.uplink_rate_bit}bit", "ceil",
                 f"{self.uplink_rate_bit}bit"])  # fmt: skip
        self._uplinks.add(host.ns)

    def shape_upload(self, region: str, target: str, rate_bit: int = 1_000_000) -> None:
        """Throttle uploads from the hosts of ``region`` to ``target`` to ``rate_bit``: an
        HTB class on each host's eth0 (its upstream), selected by the target's destination
        address, with a half-second byte FIFO (the excess is dropped)."""
        if rate_bit < 8000:
            raise LabError(f"rate_bit: at least 8000 bit/s, got {rate_bit}")
        t = self.target(target)
        hosts = self.hosts_of(region)
        classid, prio = self._tc_slot(t)
        burst = "1600"
        queue_bytes = max(4 * 1514, rate_bit // 16)
        for host in hosts:
            self._uplink_root(host)
            # MTU-sized segments, as on the core side: a 64 kB GSO packet is larger than the
            # whole FIFO and was dropped whole, so only single-segment retransmissions got
            # through and a throttled upload read 0 B/s
            run(["ip", "-n", host.ns, "link", "set", "eth0", "gso_max_size", "1500"])
            run(["tc", "-n", host.ns, "class", "replace", "dev", "eth0", "parent", "1:",
                 "classid", classid, "htb", "rate", f"{rate_bit}bit", "ceil", f"{rate_bit}bit",
                 "burst", burst, "cburst", burst, "quantum", "1514"])  # fmt: skip
            run(["tc", "-n", host.ns, "qdisc", "replace", "dev", "eth0", "parent", classid,
                 "bfifo", "limit", str(queue_bytes)])  # fmt: skip
            run(["tc", "-n", host.ns, "filter", "replace", "dev", "eth0", "parent", "1:",
                 "protocol", "ip", "prio", prio, "u32", "match", "ip", "dst",
                 f"{t.address}/32", "flowid", classid])  # fmt: skip
        self._uploads[(region, target)] = rate_bit

    def unshape_upload(self, region: str, target: str) -> None:
        t = self.target(target)
        classid, prio = self._tc_slot(t)
        for host in self.hosts_of(region):
            run(["tc", "-n", host.ns, "filter", "del", "dev", "eth0", "parent", "1:", "prio",
                 prio], check=False)  # fmt: skip
            run(["tc", "-n", host.ns, "class", "del", "dev", "eth0", "classid", classid],
                check=False)  # fmt: skip
        self._uploads.pop((region, target), None)

    def congest(self, region: str, rate_bit: int) -> None:
        """Make the whole line of each host of ``region`` slow, both ways (a congested
        provider): the line classes run at ``rate_bit``, so every target, the controls
        among them, is slow alike. Needs ``line_rate_bit`` (and ``uplink_rate_bit`` for
        the upstream). Shaped or broken paths keep their own classes."""
        if self.line_rate_bit is None:
            raise LabError("congest: the lab has no line rate (line_rate_bit) to lower")
        if rate_bit < 100_000:
            raise LabError(f"rate_bit: at least 100000 bit/s, got {rate_bit}")
        self._set_line(region, rate_bit)
        self._congested[region] = rate_bit

    def uncongest(self, region: str) -> None:
        if self.line_rate_bit is None:
            return
        self._set_line(region, self.line_rate_bit, self.uplink_rate_bit)
        self._congested.pop(region, None)

    def _set_line(self, region: str, rate_bit: int, uplink_bit: int | None = -1) -> None:
        up = rate_bit if uplink_bit == -1 else uplink_bit
        for host in self.hosts_of(region):
            run(["tc", "-n", self.core_ns, "class", "change", "dev", host.core_if, "parent",
                 "1:", "classid", "1:ff", "htb", "rate", f"{rate_bit}bit", "ceil",
                 f"{rate_bit}bit"])  # fmt: skip
            if self.uplink_rate_bit is not None and up is not None:
                run(["tc", "-n", host.ns, "class", "change", "dev", "eth0", "parent", "1:",
                     "classid", "1:ff", "htb", "rate", f"{up}bit", "ceil", f"{up}bit"])  # fmt: skip

    def unshape(self, region: str, target: str) -> None:
        self.hosts_of(region)
        self._clear_path(region, self.target(target))

    def shape_sni(self, region: str, target: str, rate_bytes: int = TWITTER_2021_RATE_BIT // 8) -> None:
        """Throttle HTTPS under ``target``'s server name (``<name>.lab``) for the hosts of
        ``region`` to ``rate_bytes`` bytes/s, toward any address: a DPI box keyed on the
        SNI, as in 2021. The kernel has no DPI, so every lab target server applies it
        (``targets.py --sni-pace-file``): a check that sends the name to another server is
        slow too, one that sends another name to the target's address is not."""
        t = self.target(target)
        self.hosts_of(region)
        if isinstance(rate_bytes, bool) or not isinstance(rate_bytes, int) or rate_bytes < 1000:
            raise LabError(f"rate_bytes: an integer of at least 1000 bytes/s, got {rate_bytes!r}")
        self._sni_paces[(region, t.name)] = rate_bytes
        self._write_sni_paces()

    def unshape_sni(self, region: str, target: str) -> None:
        self._sni_paces.pop((region, self.target(target).name), None)
        self._write_sni_paces()

    def _write_sni_paces(self) -> None:
        """One line per name (the file's format): a name throttled in several regions
        gets all their hosts, at the lowest of the rates."""
        rules: dict[str, tuple[int, list[str]]] = {}
        for (region, name), rate in sorted(self._sni_paces.items()):
            hostname = self.target(name).hostname
            low, nets = rules.get(hostname, (rate, []))
            rules[hostname] = (min(low, rate), nets + [f"{h.addr}/32" for h in self.hosts_of(region)])
        path = self.dir / "sni-paces"
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(f"{n} {rate} {' '.join(nets)}\n" for n, (rate, nets) in rules.items()))
        tmp.replace(path)

    def break_target(self, region: str, target: str, how: str = "reset") -> None:
        """Make ``target`` fail from ``region``.

        - ``reset``: the censor on tr1 (the middle hop) answers the first data segment of a
          connection from the region's hosts to the target (the HTTP request, or the TLS
          ClientHello) with a TCP reset, as a DPI box does once it has seen what it looks
          for; the handshake itself goes through. nft ``reject with tcp reset`` in tr1's
          prerouting, so it acts before tr1 decrements the TTL: a trigger that reaches
          tr1 with TTL 1 meets it, and ``-o locate=true`` finds it at hop 2.
        - ``drop``: the censor on tr1 drops every TCP packet from the region's hosts to the
          target; clients see timeouts. Other protocols pass, so a UDP traceroute still
          maps the path (a censor that blocks a service, not the address for everything).
        - ``unreachable``: an unreachable route in the region's hosts; connects fail at
          once with "no route to host", like an ICMP reject.
        - ``dns``: the regions' resolver (198.19.0.3) answers the target's name
          (``<target>.lab``) to the region's hosts with the block-page server's address
          (198.19.0.2) instead; the honest DoT resolver (tls://198.19.1.4) does not lie.
          Only dns jobs that ask the lab's resolver see it (``-o resolver=198.19.0.3``).
        - ``block_page``: an ISP's transparent proxy. An nft DNAT on the core sends the
          region's new HTTP connections (port 80) to the target to the lab's block-page
          server (198.19.0.2), which answers every request with the ISP's page and status
          200 (``targets.BLOCK_PAGE``). Needs Debian's ``nftables``.
        """
        t = self.target(target)
        hosts = self.hosts_of(region)
        self._clear_path(region, t)
        if how in ("reset", "drop"):
            self._need_nft(f"how: {how}")
        if how == "unreachable":
            for host in hosts:
                run(["ip", "-n", host.ns, "route", "add", "unreachable", f"{t.address}/32"])
        elif how == "block_page":
            self._need_nft("how: block_page")
            self._block_page_server()
            self._block_pages.add((region, target))
            self._apply_nft()
        elif how == "dns":
            self._block_page_server()
            self._dns_lies.add((region, target))
            self._write_lie_file()
        elif how not in ("reset", "drop"):
            raise LabError(f"how: {how!r} must be reset, drop, unreachable, block_page or dns")
        self._paths[(region, target)] = _PathState(broken=how)
        if how in ("reset", "drop"):
            self._apply_censor()

    @staticmethod
    def _need_nft(what: str) -> None:
        if shutil.which("nft") is None:
            raise LabError(f"{what} needs nft (apt-get install nftables)")

    def police_path(self, region: str, target: str, rate_bit: int = TWITTER_2021_RATE_BIT,
                    burst_bytes: int = 16_000) -> None:  # fmt: skip
        """A policer on the path: the censor on tr1 drops the target's packets toward each of
        the region's hosts beyond ``rate_bit`` (nft ``limit rate over ... burst ... drop``,
        one bucket per host). Unlike ``shape`` (an HTB queue on the core, which delays the
        excess) nothing is queued: TCP sees losses and settles below the rate."""
        if rate_bit < 8000:
            raise LabError(f"rate_bit: at least 8000 bit/s, got {rate_bit}")
        if not 1500 <= burst_bytes <= 100_000_000:
            raise LabError(f"burst_bytes: 1500 to 100000000, got {burst_bytes}")
        self._need_nft("police_path")
        t = self.target(target)
        self.hosts_of(region)
        self._clear_path(region, t)
        self._paths[(region, target)] = _PathState(rate_bit=rate_bit, burst_bytes=burst_bytes, broken="police")
        self._policed[(region, target)] = (rate_bit, burst_bytes)
        self._apply_censor()

    def _apply_censor(self) -> None:
        """Write tr1's nft table from the reset, drop and police paths in one transaction."""
        rules = []
        for (region, name), state in sorted(self._paths.items()):
            address = self.target(name).address
            hosts = ", ".join(h.addr for h in self.hosts_of(region))
            if state.broken == "reset":
                rules.append(f"ip saddr {{ {hosts} }} ip daddr {address} ct state established "
                             "tcp flags & psh == psh reject with tcp reset")  # fmt: skip
            elif state.broken == "drop":
                rules.append(f"ip saddr {{ {hosts} }} ip daddr {address} meta l4proto tcp drop")
            elif state.broken == "police":
                rate_bit, burst = self._policed[(region, name)]
                rules.extend(
                    f"ip saddr {address} ip daddr {h.addr} limit rate over {rate_bit // 8} bytes/second "
                    f"burst {burst} bytes drop"
                    for h in self.hosts_of(region)
                )  # fmt: skip
        text = f"table inet {CENSOR_TABLE}\ndelete table inet {CENSOR_TABLE}\n"
        if rules:
            text += (f"table inet {CENSOR_TABLE} {{\n  chain pre {{\n"
                     "    type filter hook prerouting priority -150; policy accept;\n"
                     + "".join(f"    {r}\n" for r in rules) + "  }\n}\n")  # fmt: skip
        censor = f"{self.prefix}{CENSOR_ROUTER}"
        proc = subprocess.run(["ip", "netns", "exec", censor, "nft", "-f", "-"], input=text,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        if proc.returncode != 0:
            raise LabError(f"nft -f (censor): exit {proc.returncode}: {proc.stderr.strip()}")

    def _write_lie_file(self) -> None:
        lines = [
            f"{h.addr}/32 {self.target(name).hostname} {BLOCK_PAGE_ADDR}"
            for region, name in sorted(self._dns_lies) for h in self.hosts_of(region)
        ]  # fmt: skip
        tmp = self.dir / "lies.tmp"
        tmp.write_text("".join(f"{line}\n" for line in lines))
        tmp.replace(self.dir / "lies")

    def _start_resolver(self) -> None:
        zone = ",".join(f"{t.hostname}={t.address}" for t in self.targets.values())
        self._spawn("resolver", self.core_ns, [
            sys.executable, "-m", "deploy.lab.resolver", "--zone", zone, "--plain", RESOLVER_ADDR,
            "--tls", DOT_ADDR, "--cert", str(self.dir / "server.pem"), "--key", str(self.dir / "server.key"),
            "--lie-file", str(self.dir / "lies"),
        ])  # fmt: skip

    def _block_page_server(self) -> None:
        if "blockpage" in self._procs:
            return
        self._spawn("blockpage", self.core_ns, [
            sys.executable, "-m", "deploy.lab.targets", "--name", "blockpage", "--block-page",
            "--address", BLOCK_PAGE_ADDR, "--root", str(self.dir / "www"),
        ])  # fmt: skip
        self._wait_tcp(BLOCK_PAGE_ADDR, 80, what="block-page server", proc="blockpage")

    def _apply_nft(self) -> None:
        """Write the core's nft table from ``_block_pages`` in one transaction (the
        ``table``/``delete table`` pair makes it work whether or not it exists)."""
        rules = []
        for region, name in sorted(self._block_pages):
            ifaces = ", ".join(f'"{h.core_if}"' for h in self.hosts_of(region))
            rules.append(f"    iifname {{ {ifaces} }} ip daddr {self.target(name).address} "
                         f"tcp dport 80 dnat to {BLOCK_PAGE_ADDR}:80")  # fmt: skip
        text = f"table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n"
        if rules:
            text += (f"table ip {NFT_TABLE} {{\n  chain pre {{\n"
                     "    type nat hook prerouting priority dstnat; policy accept;\n"
                     + "\n".join(rules) + "\n  }\n}\n")  # fmt: skip
        proc = subprocess.run(["ip", "netns", "exec", self.core_ns, "nft", "-f", "-"], input=text,
                              capture_output=True, text=True, timeout=30)  # fmt: skip
        if proc.returncode != 0:
            raise LabError(f"nft -f: exit {proc.returncode}: {proc.stderr.strip()}")

    def unbreak(self, region: str, target: str) -> None:
        self.unshape(region, target)

    # tc slot of a cut: before every per-target class and filter (prio 10 and up)
    _CUT_CLASS = "1:fe"
    _CUT_PRIO = "2"

    def cut(self, region: str) -> None:
        """Cut the region's hosts off every target, as when their provider loses its
        upstream: tc drops every packet from any target toward them (SYNs go out, nothing
        comes back, so every probe times out), ahead of any shaping or break. Their path
        to the coordinator stays, so the agents keep reporting what they see (a real
        outage often takes that path too; the agents' outboxes then deliver later)."""
        hosts = self.hosts_of(region)
        if region in self._cut:
            return
        for host in hosts:
            dev = host.core_if
            run(["tc", "-n", self.core_ns, "class", "replace", "dev", dev, "parent", "1:",
                 "classid", self._CUT_CLASS, "htb", "rate", "1gbit"])  # fmt: skip
            run(["tc", "-n", self.core_ns, "qdisc", "replace", "dev", dev, "parent",
                 self._CUT_CLASS, "pfifo", "limit", "0"])  # fmt: skip
            for target in self.targets.values():
                run(["tc", "-n", self.core_ns, "filter", "add", "dev", dev, "parent", "1:",
                     "protocol", "ip", "prio", self._CUT_PRIO, "u32", "match", "ip", "src",
                     f"{target.address}/32", "flowid", self._CUT_CLASS])  # fmt: skip
        self._cut.add(region)

    def restore(self, region: str) -> None:
        """Undo ``cut``: the region reaches the targets again (shaping and breaks as before)."""
        hosts = self.hosts_of(region)
        for host in hosts:
            run(["tc", "-n", self.core_ns, "filter", "del", "dev", host.core_if, "parent", "1:",
                 "prio", self._CUT_PRIO], check=False)  # fmt: skip
            run(["tc", "-n", self.core_ns, "class", "del", "dev", host.core_if, "classid",
                 self._CUT_CLASS], check=False)  # fmt: skip
        self._cut.discard(region)

    def pace(self, target: str, rate_bytes: int) -> None:
        """Make ``target`` slow for every region at the target side: its server writes
        /big.bin at ``rate_bytes`` bytes/s to everyone (an overloaded origin or CDN, not a
        network throttle)."""
        t = self.target(target)
        if isinstance(rate_bytes, bool) or not isinstance(rate_bytes, int) or rate_bytes < 1000:
            raise LabError(f"rate_bytes: an integer of at least 1000 bytes/s, got {rate_bytes!r}")
        self._write_pace_file(t, str(rate_bytes))

    def unpace(self, target: str) -> None:
        self._write_pace_file(self.target(target), "")

    def _write_pace_file(self, target: Target, text: str) -> None:
        path = self.dir / "paces" / target.name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text + "\n" if text else "")
        tmp.replace(path)

    def take_down(self, target: str) -> None:
        """Stop the target's server: connection refused from every region."""
        t = self.target(target)
        proc = self._procs.pop(f"target-{t.name}", None)
        if proc is not None:
            self._stop_proc(proc)

    def bring_up(self, target: str) -> None:
        t = self.target(target)
        if f"target-{t.name}" not in self._procs:
            self._start_target(t)
            self._wait_tcp(t.address, 80, what=f"target {t.name}")

    # -------------------------------------------------------------- processes
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            VANTAGE_AGENT_TOKEN=self.agent_token,
            VANTAGE_API_TOKEN=self.api_token,
            PYTHONPATH=os.pathsep.join(
                p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
            ),
            PYTHONUNBUFFERED="1",
        )
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
            env.pop(var, None)
        return env

    def _spawn(self, name: str, ns: str, argv: Sequence[str]) -> _Proc:
        log_path = self.dir / "logs" / f"{name}.log"
        log_file = log_path.open("ab")
        popen = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=self._env(),
            cwd=self.dir,
            start_new_session=True,
        )
        proc = _Proc(name=name, popen=popen, log_path=log_path, log_file=log_file)
        self._procs[name] = proc
        return proc

    def _stop_proc(self, proc: _Proc, grace_s: float = 5.0) -> None:
        self._procs.pop(proc.name, None)
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
            if proc.popen.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(wait)
        proc.log_file.close()

    def _vantage(self) -> list[str]:
        return [sys.executable, "-m", "vantage.cli"]

    def _start_target(self, target: Target) -> None:
        self._spawn(
            f"target-{target.name}",
            self.www_ns,
            [
                sys.executable, "-m", "deploy.lab.targets",
                "--name", target.name, "--address", target.address,
                "--root", str(self.dir / "www"),
                "--cert", str(self.dir / "server.pem"), "--key", str(self.dir / "server.key"),
                "--pace-file", str(self.dir / "paces" / target.name),
                "--sni-pace-file", str(self.dir / "sni-paces"),
            ],
        )  # fmt: skip

    def _start_coordinator(self) -> None:
        self._spawn(
            "coord",
            self.core_ns,
            [
                *self._vantage(), "coordinator",
                "--listen", self.coordinator,
                "--metrics-listen", f"{COORDINATOR_ADDR}:{METRICS_PORT}",
                "--db", str(self.dir / "vantage.db"),
                "--insecure",
                *self.coordinator_args,
            ],
        )  # fmt: skip
        self._wait_tcp(COORDINATOR_ADDR, GRPC_PORT, what="coordinator gRPC", proc="coord")
        self._wait_tcp(COORDINATOR_ADDR, METRICS_PORT, what="coordinator /metrics", proc="coord")

    def _start_agent(self, host: Host) -> None:
        state = self.dir / "agents" / host.agent_id
        state.mkdir(parents=True, exist_ok=True)
        self._spawn(
            f"agent-{host.agent_id}",
            host.ns,
            [
                *self._vantage(), "agent",
                "--coordinator", self.coordinator,
                "--region", host.region, "--id", host.agent_id,
                "--state-dir", str(state),
                "--allow-private-targets",
                # The lab's private network (namespaces on one host): plaintext is fine.
                "--insecure",
                # Jobs name the lab's CA with -o ca_file=<lab dir>/ca.pem.
                "--ca-dir", str(self.dir),
                # Traceroute hops and located censors carry the lab's ASNs (LAB_ASNS).
                "--asn-file", str(self.dir / "asn.txt"),
                *self._country_args(host.region),
                *self.agent_args,
                *self.agent_args_by_id.get(host.agent_id, ()),
            ],
        )  # fmt: skip

    @staticmethod
    def _country_args(region: str) -> list[str]:
        """A two-letter region (ru, de, us) is also the agents' country, so the analysis
        knows the regions are in different countries (the degraded rule needs that)."""
        return ["--country", region.upper()] if len(region) == 2 and region.isalpha() else []

    def _write_files(self) -> None:
        import trustme  # a dev dependency: only the lab needs it

        for sub in ("www", "logs", "agents", "paces"):
            (self.dir / sub).mkdir(exist_ok=True)
        (self.dir / "www" / "big.bin").write_bytes(os.urandom(self.big_file_bytes))
        (self.dir / "asn.txt").write_text("".join(f"{prefix} AS{asn}\n" for prefix, asn in LAB_ASNS))
        ca = trustme.CA(organization_name="vantage lab")
        names = [t.hostname for t in self.targets.values()]
        names += [t.address for t in self.targets.values()]
        names.append(DOT_ADDR)  # the DoT resolver's certificate names its address
        cert = ca.issue_cert(*names)
        ca.cert_pem.write_to_path(str(self.ca_file))
        cert.private_key_pem.write_to_path(str(self.dir / "server.key"))
        (self.dir / "server.pem").write_bytes(b"".join(p.bytes() for p in cert.cert_chain_pems))

    def logs(self, name: str, tail: int = 40) -> str:
        path = self.dir / "logs" / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:])

    def in_core(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the thread that lives in the core namespace."""
        if self._core_exec is None:
            raise LabError("lab not started")
        return self._core_exec.submit(fn, *args).result()

    def _wait_tcp(self, addr: str, port: int, *, what: str, proc: str | None = None,
                  timeout_s: float = 30.0) -> None:  # fmt: skip
        deadline = time.monotonic() + timeout_s

        def attempt() -> bool:
            with socket.socket() as s:
                s.settimeout(1)
                return s.connect_ex((addr, port)) == 0

        while time.monotonic() < deadline:
            if proc and proc in self._procs and self._procs[proc].popen.poll() is not None:
                raise LabError(f"{what} exited early:\n{self.logs(proc)}")
            if self.in_core(attempt):
                return
            time.sleep(0.2)
        raise LabError(f"{what} did not listen on {addr}:{port} within {timeout_s:.0f}s")

    # ----------------------------------------------------------------- queries
    def metrics_text(self, timeout_s: float = 10.0) -> str:
        def fetch() -> str:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(self.metrics_url, timeout=timeout_s) as resp:
                body: bytes = resp.read()
            return body.decode()

        return self.in_core(fetch)

    def metrics(self) -> dict[str, dict[frozenset[tuple[str, str]], float]]:
        return parse_metrics(self.metrics_text())

    def vantage(self, *args: str, timeout_s: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a ``vantage`` client command in the core namespace with the API token."""
        env = self._env()
        env["VANTAGE_COORDINATOR"] = self.coordinator
        env["VANTAGE_INSECURE"] = "1"  # the lab's private network
        return subprocess.run(
            ["ip", "netns", "exec", self.core_ns, *self._vantage(), *args],
            capture_output=True, text=True, timeout=timeout_s, env=env, cwd=self.dir,
        )  # fmt: skip

    def submit(
        self,
        kind: str,
        targets: Iterable[str],
        *,
        every: str | None = None,
        count: int | None = None,
        regions: Sequence[str] | None = None,
        per_region: int | None = None,
        options: Mapping[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> dict[str, Any]:
        """``vantage submit KIND TARGET... --json``; returns the printed job."""
        args = ["submit", kind, *targets, "--coordinator", self.coordinator]
        if every:
            args += ["--every", every]
        if count is not None:
            args += ["--count", str(count)]
        if regions:
            args += ["--regions", ",".join(regions)]
        if per_region is not None:
            args += ["--per-region", str(per_region)]
        for k, v in (options or {}).items():
            args += ["-o", f"{k}={v}"]
        args += [*extra, "--json"]
        proc = self.vantage(*args)
        if proc.returncode != 0:
            raise LabError(f"vantage {' '.join(args)}: exit {proc.returncode}: {proc.stderr}")
        job: dict[str, Any] = json.loads(proc.stdout)
        return job

    def exec_in(self, ns: str, argv: Sequence[str], timeout_s: float = 30.0
                ) -> subprocess.CompletedProcess[str]:  # fmt: skip
        return subprocess.run(
            ["ip", "netns", "exec", ns, *argv],
            capture_output=True, text=True, timeout=timeout_s, env=self._env(),
        )  # fmt: skip

    def curl(self, host: Host, url: str, *, max_time: float = 4.0) -> dict[str, float]:
        """Download ``url`` from ``host`` with curl; size, speed (B/s) and curl's exit code."""
        proc = self.exec_in(
            host.ns,
            ["curl", "-s", "-o", "/dev/null", "--noproxy", "*", "--cacert", str(self.ca_file),
             "-m", str(max_time), "-w", "%{size_download} %{speed_download} %{exitcode}", url],
            timeout_s=max_time + 10,
        )  # fmt: skip
        size, speed, code = proc.stdout.split()
        return {"size": float(size), "speed": float(speed), "exitcode": float(code)}

    def describe(self) -> str:
        lines = [f"vantage lab {self.prefix}  (files in {self.dir})"]
        lines.append(f"  core namespace {self.core_ns}: coordinator {self.coordinator}")
        lines.append(f"    metrics {self.metrics_url}")
        for t in self.targets.values():
            lines.append(
                f"    target {t.name:<9} {t.address:<13} http://{t.address}/big.bin  "
                f"https://{t.address}/ (-o ca_file={self.ca_file})"
            )
        for h in self.hosts:
            lines.append(
                f"  host {h.ns}: region {h.region} agent {h.agent_id} {h.addr} "
                f"(core side {self.core_ns}:{h.core_if} {h.core_addr})"
            )
        routers = " -> ".join(f"{ns} {TRANSIT_NET}.{4 * i + 2}" for i, ns in enumerate(self.router_ns))
        lines.append(f"  path to the targets: core -> {routers} -> {self.www_ns}; the censor is on "
                     f"{self.prefix}{CENSOR_ROUTER} (hop {self.censor_hop[0]})")  # fmt: skip
        for (region, target), state in sorted(self._paths.items()):
            what = f"shaped {state.rate_bit} bit/s" if state.rate_bit else f"broken ({state.broken})"
            if state.burst_bytes:
                what = f"policed {state.rate_bit} bit/s after a {state.burst_bytes}-byte burst"
            if state.broken == "police":
                what = f"policed on tr1 at {state.rate_bit} bit/s (burst {state.burst_bytes} bytes)"
            elif state.broken in ("reset", "drop"):
                what = f"broken on tr1 ({state.broken})"
            lines.append(f"  path {region} -> {target}: {what}")
        for (region, target), rate in sorted(self._uploads.items()):
            lines.append(f"  path {region} -> {target}: uploads shaped {rate} bit/s")
        for (region, target), rate in sorted(self._sni_paces.items()):
            lines.append(f"  path {region} -> {target}: HTTPS under its name shaped {rate} bytes/s")
        for region, rate in sorted(self._congested.items()):
            lines.append(f"  region {region}: congested, its lines at {rate} bit/s")
        return "\n".join(lines)

