"""ping: echo requests to a host; loss, and min/avg/max/mdev RTT and jitter.

The host is resolved (``getaddrinfo``) and checked by the target policy; the first
address is pinged. ``method=icmp`` sends ICMP echo over an unprivileged datagram socket
(:func:`agent.probes.netpath.icmp_socket`); ``method=tcp`` times a TCP connect to
``spec.port``: a SYN-ACK or a reset (connection refused) is the reply, so a host that
answers on no port still answers. ``method=auto`` tries ICMP and, where the host closes
unprivileged ICMP (``net.ipv4.ping_group_range``), uses TCP and says why in
``icmp_unavailable``.

Requests go out every ``interval`` seconds whether or not the previous reply came
(ping(8)'s behaviour); a reply later than ``wait`` seconds counts as lost. The result:

- ``sent``, ``received``, ``loss`` (0..1), ``rtts_s`` (the replies' RTTs in request
  order) and ``lost_seqs`` (the requests no reply came for, 0-based);
- ``rtt_min_s``, ``rtt_avg_s``, ``rtt_max_s``, ``rtt_mdev_s`` (the standard deviation,
  as ping's mdev), ``jitter_s`` (the mean difference between consecutive replies' RTTs,
  RFC 3550's idea without its smoothing); None when nothing came back;
- ``replies_from``: for ICMP, addresses other than the target's that answered (a router
  sending unreachables), each with a count.

When no reply comes back at all the result is a failure: the last error's class
(``host_unreachable``, ``network_unreachable``...) or ``generic_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import socket
from collections import Counter
from typing import Any

from agent.policy import ResolvedAddress, resolve_checked
from agent.probes import netpath
from agent.probes.base import Limits, ProbeOutcome
from agent.probes.common import failed, now, rounded
from agent.probes.failures import GENERIC_TIMEOUT, classify, describe
from common.specs.ping import NAME, Spec


def summarise(rtts: list[float | None]) -> dict[str, Any]:
    """Loss and RTT statistics over per-request RTTs (None: lost)."""
    got = [r for r in rtts if r is not None]
    sent = len(rtts)
    out: dict[str, Any] = {
        "sent": sent,
        "received": len(got),
        "loss": round(1 - len(got) / sent, 6) if sent else None,
        "rtts_s": [rounded(r) for r in got],
        "lost_seqs": [i for i, r in enumerate(rtts) if r is None],
        "rtt_min_s": None, "rtt_avg_s": None, "rtt_max_s": None, "rtt_mdev_s": None, "jitter_s": None,
    }  # fmt: skip
    if got:
        avg = sum(got) / len(got)
        out["rtt_min_s"] = rounded(min(got))
        out["rtt_avg_s"] = rounded(avg)
        out["rtt_max_s"] = rounded(max(got))
        out["rtt_mdev_s"] = rounded(math.sqrt(sum((r - avg) ** 2 for r in got) / len(got)))
        if len(got) > 1:
            out["jitter_s"] = rounded(sum(abs(b - a) for a, b in itertools.pairwise(got)) / (len(got) - 1))
    return out


async def _tcp_once(address: ResolvedAddress, port: int, wait: float) -> tuple[float | None, BaseException | None]:
    """One TCP ping: (rtt, None) on a SYN-ACK or a reset, (None, error) otherwise."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(address.family, socket.SOCK_STREAM)
    sock.setblocking(False)
    sockaddr = (address.address, port, *address.sockaddr[2:])
    netpath.enable_recverr(sock)
    started = now()
    try:
        async with asyncio.timeout(wait):
            await loop.sock_connect(sock, sockaddr)
    except ConnectionRefusedError as exc:
        # a reset is a reply; an ICMP port-unreachable from a router (Linux maps it to
        # ECONNREFUSED too) is not the host answering
        errors = netpath.read_errors(sock)
        if errors and errors[-1].offender != address.address:
            err = errors[-1]
            return None, OSError(exc.errno, f"{netpath.icmp_name(address.family, err.icmp_type, err.icmp_code)} "
                                            f"from {err.offender}")  # fmt: skip
        return now() - started, None
    except (OSError, TimeoutError) as exc:
        return None, exc
    finally:
        # A reset rather than a FIN: no TIME_WAIT left behind for each request.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        sock.close()
    return now() - started, None


async def _tcp(spec: Spec, address: ResolvedAddress) -> tuple[list[float | None], BaseException | None, Counter[str]]:
    tasks: list[asyncio.Task[tuple[float | None, BaseException | None]]] = []
    try:
        for i in range(spec.count):
            if i:
                await asyncio.sleep(spec.interval_s)
            tasks.append(asyncio.create_task(_tcp_once(address, spec.port, spec.wait_s)))
        results = await asyncio.gather(*tasks)
    finally:
        for task in tasks:  # cancelled (the probe's timeout): no request outlives the probe
            task.cancel()
    errors = [e for _, e in results if e is not None]
    return [r for r, _ in results], (errors[-1] if errors else None), Counter()


async def _icmp(
    spec: Spec, address: ResolvedAddress, sock: socket.socket
) -> tuple[list[float | None], BaseException | None, Counter[str]]:
    family = address.family
    netpath.enable_recverr(sock)
    sock.connect((address.address, 0, *address.sockaddr[2:]))
    payload = bytes(i & 0xFF for i in range(spec.size))
    sent_at: list[float] = []
    rtts: list[float | None] = [None] * spec.count
    others: Counter[str] = Counter()
    last_error: BaseException | None = None
    loop = asyncio.get_running_loop()
    first = now()

    def next_send() -> float:
        return first + len(sent_at) * spec.interval_s

    while True:
        t = now()
        if len(sent_at) < spec.count and t >= next_send():
            seq = len(sent_at)
            try:
                await loop.sock_sendall(sock, netpath.echo_request(family, seq, payload))
            except OSError:
                # an error queued by an earlier request surfaced on send: read it, try again
                for err in netpath.read_errors(sock):
                    if err.offender != address.address:
                        others[err.offender] += 1
                try:
                    await loop.sock_sendall(sock, netpath.echo_request(family, seq, payload))
                except OSError as exc:
                    last_error = exc
            sent_at.append(now())
            continue
        end = next_send() if len(sent_at) < spec.count else sent_at[-1] + spec.wait_s
        if t >= end or (len(sent_at) == spec.count and None not in rtts):
            break
        if not await netpath.readable(sock, end - t):
            continue
        arrived = now()
        for err in netpath.read_errors(sock):
            if err.offender != address.address:
                others[err.offender] += 1
            last_error = OSError(err.errno, f"{netpath.icmp_name(family, err.icmp_type, err.icmp_code)} "
                                            f"from {err.offender}")  # fmt: skip
        for _ in range(spec.count + 8):  # bounded: a flood of replies cannot keep us here
            try:
                data = sock.recv(netpath.MAX_PAYLOAD)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # an error the queue has reported already
                last_error = exc
                break
            echoed = netpath.parse_echo_reply(family, data)
            if echoed is not None and echoed < len(sent_at) and rtts[echoed] is None:
                rtt = arrived - sent_at[echoed]
                if rtt <= spec.wait_s:
                    rtts[echoed] = rtt
    return rtts, last_error, others


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    data: dict[str, Any] = {"host": spec.host, "count": spec.count, "interval_s": spec.interval_s}
    try:
        # The resolution has the timeout; the requests are bounded by the spec itself
        # ((count - 1) * interval + wait fits in it), so what they measured is never lost
        # to a timeout that the resolution brought near.
        async with asyncio.timeout(spec.timeout_s):
            addresses = await resolve_checked(
                spec.host, spec.port, allow_private=limits.allow_private_targets,
                overrides=limits.host_overrides,
            )
        address = addresses[0]
        data["address"] = address.address
        data["family"] = "ipv6" if address.family == socket.AF_INET6 else "ipv4"
        method = spec.method
        sock: socket.socket | None = None
        if method in ("auto", "icmp"):
            try:
                sock = netpath.icmp_socket(address.family)
                method = "icmp"
            except netpath.IcmpUnavailable as exc:
                if method == "icmp":
                    raise
                data["icmp_unavailable"] = str(exc)
                method = "tcp"
        data["method"] = method
        if method == "tcp":
            data["port"] = spec.port
            rtts, error, others = await _tcp(spec, address)
        else:
            assert sock is not None
            data["size"] = spec.size
            try:
                rtts, error, others = await _icmp(spec, address, sock)
            finally:
                sock.close()
    except Exception as exc:
        return failed(kind=NAME, target=spec.target, exc=exc, started=started, data=data)
    data.update(summarise(rtts))
    if others:
        data["replies_from"] = dict(others.most_common(8))
    failure = None
    detail = ""
    if isinstance(error, TimeoutError):
        error = None  # a reply that did not come in time: said below, in words
    if not data["received"]:
        failure = classify(error) if error is not None else GENERIC_TIMEOUT
        detail = describe(error) if error is not None else f"no reply to {spec.count} requests within {spec.wait_s:g} s"
    return ProbeOutcome(
        kind=NAME, target=spec.target, failure=failure, failure_detail=detail,
        duration_s=round(now() - started, 6), data=data,
    )  # fmt: skip
