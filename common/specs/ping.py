"""The ping kind's spec: a host, how many echoes, how often, how big, and the method.

``method=auto`` (the default) sends ICMP echo requests over an unprivileged datagram
socket where the host allows them (``net.ipv4.ping_group_range`` includes the agent's
group) and otherwise falls back to ``tcp``: a TCP SYN to ``port`` whose SYN-ACK or reset
is the reply (the way tcping and Globalping's TCP ping work). ``size`` is the ICMP
payload; a TCP ping carries none. The probe is ``agent/probes/ping.py``.

Bounded: at most ``MAX_COUNT`` echoes, and ``(count - 1) * interval + wait`` must fit in
the timeout, so a task never runs past its deadline.
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

NAME = "ping"
METHODS = ("auto", "icmp", "tcp")
MAX_COUNT = 100
# ping(8) lets an unprivileged user go no faster than 0.2 s: the same floor here, so a
# job cannot turn the fleet into a flood.
MIN_INTERVAL_S = 0.2
MAX_SIZE = 1472  # an ICMP payload that fits one 1500-byte Ethernet frame over IPv4
OPTIONS: Mapping[str, str] = {
    "count": f"echo requests to send, 1 to {MAX_COUNT} (default 5)",
    "interval": f"seconds between requests, {MIN_INTERVAL_S:g} to 10 (default 1)",
    "size": f"ICMP payload bytes, 0 to {MAX_SIZE} (default 56, as ping(8)); a TCP ping carries none",
    "wait": "seconds to wait for each reply, 0.05 to 10 (default 2)",
    "method": "auto (ICMP where the host allows unprivileged echo, else TCP), icmp or tcp (default auto)",
    "port": "the port a TCP ping sends its SYN to (default 443)",
    "timeout": TIMEOUT_HELP,
}


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    host: str
    count: int
    interval_s: float
    size: int
    wait_s: float
    method: str
    port: int
    timeout_s: float


def parse(target: str, options: Mapping[str, str], limits: Limits) -> Spec:
    check_known(NAME, options, OPTIONS)
    host = check_host(target.strip())
    count = opt_int(options, "count", default=5, minimum=1, maximum=MAX_COUNT)
    interval = opt_float(options, "interval", default=1.0, minimum=MIN_INTERVAL_S, maximum=10.0)
    wait = opt_float(options, "wait", default=2.0, minimum=0.05, maximum=10.0)
    timeout = opt_timeout(options, limits)
    needed = (count - 1) * interval + wait
    if needed > timeout:
        field = "options.count" if "count" in options or "interval" in options else "options.wait"
        raise SpecError(
            field,
            f"{count} requests {interval:g} s apart, each waiting {wait:g} s, take {needed:g} s: "
            f"more than the timeout ({timeout:g} s)",
        )
    return Spec(
        target=target.strip(),
        host=host,
        count=count,
        interval_s=interval,
        size=opt_int(options, "size", default=56, minimum=0, maximum=MAX_SIZE),
        wait_s=wait,
        method=opt_choice(options, "method", default="auto", choices=METHODS),
        port=opt_int(options, "port", default=443, minimum=1, maximum=65535),
        timeout_s=timeout,
    )
