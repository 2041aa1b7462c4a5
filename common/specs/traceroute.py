"""The traceroute kind's spec: a host, the method, and the bounds on hops and time.

Methods, each Paris-style (every probe of one trace has the same flow identifier, so a
load balancer hashing on it sends them all the same way) and each without privileges
(the ICMP errors come back on the probe's own socket through ``IP_RECVERR``, as with
tracepath):

- ``udp`` (default): datagrams to ``port`` (default 33434) from one source port;
- ``tcp``: SYNs to ``port`` (default 443) from one source port; the destination answers
  with a SYN-ACK or a reset;
- ``icmp``: echo requests, where the host allows unprivileged ICMP sockets
  (``net.ipv4.ping_group_range``).

The probe is ``agent/probes/traceroute.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.specs.base import Limits, SpecError
from common.specs.options import (
    TIMEOUT_HELP,
    check_host,
    check_known,
    opt_choice,
    opt_float,
    opt_int,
    opt_timeout,
)

NAME = "traceroute"
METHODS = ("udp", "tcp", "icmp")
DEFAULT_PORTS = {"udp": 33434, "tcp": 443, "icmp": 0}
MAX_HOPS = 64
MAX_QUERIES = 5
OPTIONS: Mapping[str, str] = {
    "method": "udp, tcp or icmp (default udp)",
    "port": "the destination port of udp and tcp probes (default 33434 for udp, 443 for tcp)",
    "max_hops": f"the largest TTL tried, 1 to {MAX_HOPS} (default 30)",
    "first_hop": "the first TTL tried (default 1)",
    "queries": f"probes per hop, 1 to {MAX_QUERIES} (default 3)",
    "wait": "seconds to wait for a hop's replies, 0.05 to 5 (default 1)",
    "gap_limit": "stop after this many hops in a row give no reply, 1 to 64 (default 5)",
    "timeout": TIMEOUT_HELP,
}


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    host: str
    method: str
    port: int
    first_hop: int
    max_hops: int
    queries: int
    wait_s: float
    gap_limit: int
    timeout_s: float


def parse(target: str, options: Mapping[str, str], limits: Limits) -> Spec:
    check_known(NAME, options, OPTIONS)
    host = check_host(target.strip())
    method = opt_choice(options, "method", default="udp", choices=METHODS)
    if method == "icmp" and "port" in options:
        raise SpecError("options.port", "an icmp traceroute has no port")
    max_hops = opt_int(options, "max_hops", default=30, minimum=1, maximum=MAX_HOPS)
    first_hop = opt_int(options, "first_hop", default=1, minimum=1, maximum=max_hops)
    return Spec(
        target=target.strip(),
        host=host,
        method=method,
        port=0 if method == "icmp" else opt_int(options, "port", default=DEFAULT_PORTS[method], minimum=1, maximum=65535),
        first_hop=first_hop,
        max_hops=max_hops,
        queries=opt_int(options, "queries", default=3, minimum=1, maximum=MAX_QUERIES),
        wait_s=opt_float(options, "wait", default=1.0, minimum=0.05, maximum=5.0),
        gap_limit=opt_int(options, "gap_limit", default=5, minimum=1, maximum=MAX_HOPS),
        timeout_s=opt_timeout(options, limits),
    )
