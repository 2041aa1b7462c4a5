"""What the download and the upload of the throughput kind share: a transfer's figures,
its per-window series (which also ends a settled transfer early) and the errors of the
HTTP exchange. ``agent/probes/throughput.py`` says how the figures are computed."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from yarl import URL

from agent.policy import ResolvedAddress, resolve_checked
from agent.probes import failures as f
from agent.probes import rates
from agent.probes.base import Limits, SpecError
from agent.probes.tcp import connect
from agent.probes.tls import make_context
from common.specs.options import url_host, url_port
from common.specs.throughput import Spec


class HTTPProtocolError(Exception):
    """The server's response is not HTTP/1.x we can read (failure ``http_error``)."""


#: A Content-Length longer than this many digits is not one we read (10^19 bytes).
MAX_LENGTH_DIGITS = 19


def is_status(text: str) -> bool:
    """Three ASCII digits: ``str.isdigit`` alone takes ``²00``, which ``int`` refuses (a
    hostile server's status once read ``unknown_failure`` instead of ``http_error``)."""
    return len(text) == 3 and text.isascii() and text.isdigit()


class ServerClosed(ConnectionError):
    """The server closed before the body was complete (failure ``connection_closed``)."""


def failure_of(exc: BaseException) -> str:
    """The failure class of a transfer that ended with ``exc``: the HTTP exchange's own
    errors first, then the network's (``failures.classify``)."""
    if isinstance(exc, HTTPProtocolError):
        return f.HTTP_ERROR
    if isinstance(exc, ServerClosed):
        return f.CONNECTION_CLOSED
    return f.classify(exc)


class Counted(Protocol):
    """A transfer in progress as the sampler sees it: body bytes so far (received, or
    acknowledged by the server for an upload) and the times of the first and last."""

    first_body: asyncio.Event

    @property
    def count(self) -> int: ...

    @property
    def t_first_body(self) -> float | None: ...

    @property
    def t_last_body(self) -> float | None: ...

    def settle(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Transfer:
    """The figures of one download (the target's or the control's)."""

    url: str
    bytes: int = 0
    duration_s: float | None = None
    bytes_per_second: float | None = None
    ttfb_s: float | None = None
    stall_s: float = 0.0
    series_bps: tuple[float, ...] = ()
    first_part_bps: float | None = None
    sustained_bps: float | None = None
    drop_at_s: float | None = None
    # the sustained rate's 95% interval and whether it is within rates.PRECISION (in
    # process only: the wire's ThroughputData has no field for them yet)
    rate_low_bps: float | None = None
    rate_high_bps: float | None = None
    rate_precise: bool = False
    status: int | None = None
    headers: Mapping[str, str] | None = None
    complete: bool = False
    stopped_by: str = ""
    address: str = ""
    failure: str | None = None
    failure_detail: str = ""


class Series:
    """bytes/s per fixed window, filled by a sampler task while the download runs; the
    sampler also ends a download that has settled (``burst``, ``settle``).

    Settled means all of: past ``burst`` bytes (so a policer's burst is behind it),
    ``settle`` seconds on, and its sustained rate known to within ``rates.PRECISION``
    (``rates.split``: a 95% interval over at least ``rates.MIN_PRECISE_WINDOWS`` windows,
    ``MIN_PRECISE_S`` seconds and ``MIN_PRECISE_BYTES`` after slow start, or after the
    drop). Short of that precision it runs on to ``max_bytes`` or ``max_seconds``: the
    early end saves time on a fast, steady path, and never costs the figure."""

    def __init__(self, interval: float, *, burst_bytes: int = 0, settle_s: float = 0.0) -> None:
        self.interval = interval
        self.values: list[float] = []
        self.counts: list[int] = []  # body bytes in each window
        self.seconds: list[float] = []  # each window's length
        self.t_prev: float | None = None  # end of the last window
        self.c_prev = 0  # body bytes at the end of the last window
        self._burst_bytes = burst_bytes
        self._settle_s = settle_s
        self.t_past_burst: float | None = None  # first window end with burst bytes in
        self._t_check = 0.0  # the next time the precision may be checked

    async def sample(self, proto: Counted) -> None:
        """Append a window's bytes/s every ``interval`` from the first body byte until cancelled."""
        await proto.first_body.wait()
        assert proto.t_first_body is not None
        self.t_prev = proto.t_first_body
        t_next = self.t_prev + self.interval
        while True:
            await asyncio.sleep(max(0.0, t_next - time.perf_counter()))
            t = time.perf_counter()
            c = proto.count
            self.values.append((c - self.c_prev) / (t - self.t_prev))
            self.counts.append(c - self.c_prev)
            self.seconds.append(t - self.t_prev)
            self.t_prev, self.c_prev = t, c
            if self._burst_bytes and c >= self._burst_bytes:
                if self.t_past_burst is None:
                    self.t_past_burst = t
                elif t - self.t_past_burst >= self._settle_s and t >= self._t_check:
                    # the precision check splits the whole series: at most 4 times a second
                    self._t_check = t + 0.25
                    if self.precise():
                        proto.settle()
                        return
            t_next += self.interval
            if t_next <= t:  # the loop fell behind: skip windows rather than emit tiny ones
                t_next = t + self.interval

    def precise(self) -> bool:
        """Whether the windows so far give the sustained rate to ``rates.PRECISION``."""
        return rates.split([float(c) for c in self.counts], self.seconds).precise

    def _tail(self, proto: Counted, until: float | None) -> tuple[int, float] | None:
        """The last, partial window, when it is worth one: up to the last body byte, or
        to ``until`` (when a limit stopped a transfer that was still running: the time
        since the last byte is part of the window, or a slow stream's last read would
        end its window early and overstate its rate)."""
        start = self.t_prev if self.t_prev is not None else proto.t_first_body
        end = until if until is not None else proto.t_last_body
        if start is None or end is None or proto.t_last_body is None:
            return None
        tail_t = end - start
        tail_b = proto.count - self.c_prev
        if tail_t > self.interval * 0.1 and tail_b > 0:
            return tail_b, tail_t
        return None

    def closed(self, proto: Counted, until: float | None = None) -> list[float]:
        """The windows' rates plus the last, partial one."""
        tail = self._tail(proto, until)
        return [*self.values, tail[0] / tail[1]] if tail else list(self.values)

    def split(self, proto: Counted, until: float | None = None) -> rates.Split:
        """The first part's and the sustained rate, and when the rate dropped."""
        tail = self._tail(proto, until)
        counts: list[float] = [float(c) for c in self.counts]
        seconds = list(self.seconds)
        if tail:
            counts.append(float(tail[0]))
            seconds.append(tail[1])
        return rates.split(counts, seconds)


def round3(value: float | None) -> float | None:
    return None if value is None else round(value, 3)




async def tls_context(url: URL, spec: Spec, limits: Limits, sni: str) -> ssl.SSLContext | None:
    """The client TLS context of an https URL (None for http), made in a thread."""
    if url.scheme != "https":
        return None
    try:
        return await asyncio.to_thread(
            make_context, verify=spec.verify, sni=sni, ca_file=spec.ca_file, alpn=("http/1.1",),
            ca_dir=limits.ca_dir,
        )  # fmt: skip
    except SpecError:
        raise
    except (OSError, ValueError) as exc:  # the system's roots could not be loaded
        raise SpecError("options.ca_file", f"cannot load the CA certificates: {exc}") from exc


async def open_socket(
    url: URL, limits: Limits, address: str | None = None
) -> tuple[socket.socket, ResolvedAddress]:
    """A connected socket to the URL's host (or to ``address`` instead, a trigger check's
    swap), its addresses checked by the target policy."""
    addresses = await resolve_checked(
        address or url_host(url), url_port(url), allow_private=limits.allow_private_targets,
        overrides=limits.host_overrides,
    )  # fmt: skip
    sock, connected, _connect_s = await connect(addresses)
    return sock, connected


def host_header(url: URL) -> str:
    host = url_host(url)
    value = host if ":" not in host else f"[{host}]"
    return f"{value}:{url_port(url)}" if url.explicit_port else value
