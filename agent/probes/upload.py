"""throughput with ``direction=upload``: POST a body of ``max_bytes`` to the URL and measure
the rate the server acknowledges.

A censor that slows a service's uploads (photos, videos: in 2021 they were slowed too)
slows the bytes going out, so the probe sends a body and counts what the far end has
**acknowledged**, not what the agent wrote: written bytes first fill the kernel's send
buffer (megabytes on a fast path) and would read as a fast upload however slow the path.
On each sample the probe takes

    acknowledged = body bytes handed to the transport
                   - what the transport still buffers
                   - what the kernel has not had acknowledged (``ioctl(TIOCOUTQ)``, Linux)

so the figure moves with the TCP acknowledgements of the server's kernel. (Over TLS the
last two are counted in TLS record bytes, about 0.2% more than the plaintext: close
enough for a rate. On a kernel without ``TIOCOUTQ`` the send buffer is not subtracted
and the figure runs ahead by it; the agents run on Linux.)

The body is ``max_bytes`` of random bytes (64 KiB repeated: nothing on the path can
compress it), sent with ``Content-Length`` and ``Content-Type: application/octet-stream``.
The URL must accept such a POST and answer once it has read it (any 2xx). An error status
is ``http_error`` with the status, whether it came before the body was done (a server that
refuses uploads) or after. The same limits as downloads apply: ``max_seconds`` ends the
upload (``stopped_by`` "max_seconds"), and past ``burst`` acknowledged bytes and
``settle`` seconds more, once its sustained rate is known to +-10% (``rates.py``), it
ends early ("settled"); either way the connection is aborted. The rules of the sustained
rate (a drop needs a policer's burst, else the steady part after slow start) are the
download's: a throttled upload that TCP could not keep going (losses, retransmission
timeouts) reports the rate it got, with a wide interval on its ``Transfer``.

The figures mean what they mean for a download (see ``agent/probes/throughput.py``),
with "body byte received" read as "body byte acknowledged": ``bytes`` is the
acknowledged body bytes, ``duration_s`` runs from the request head being written to the
last acknowledgement, ``bytes_per_second`` is ``bytes`` over the time from the first body
byte written to the last acknowledgement (nothing to leave out: the first samples already
wait on the path), ``series_bps`` and the split (``rates.py``) are of acknowledged bytes,
and ``ttfb_s`` is the server's answer after the last acknowledgement.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import struct
import termios
import time
from dataclasses import replace
from typing import Any

from yarl import URL

from agent.probes import failures as f
from agent.probes.base import Limits
from agent.probes.common import now, rounded
from agent.probes.transfer import (
    HTTPProtocolError,
    Series,
    ServerClosed,
    Transfer,
    failure_of,
    host_header,
    is_status,
    open_socket,
    round3,
    tls_context,
)
from common.specs.throughput import Spec

CHUNK = 64 * 1024
_BODY = os.urandom(CHUNK)
MAX_HEAD = 64 * 1024
# How often the acknowledged count is read while waiting for the last acknowledgement.
_ACK_POLL_S = 0.005
# The transport's buffer above which it stops asking for more (the kernel's send buffer
# holds the rest): small, so what is buffered in Python is never much.
_WRITE_HIGH = 256 * 1024


def _unsent(fd: int) -> int:
    """Bytes in the kernel's send queue not yet acknowledged by the peer (0 when unknown)."""
    try:
        raw = fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):  # closed (-1), or not a socket this kernel can tell
        return 0
    value: int = struct.unpack("i", raw)[0]
    return max(0, value)


class _Upload(asyncio.Protocol):
    """Writes the body as the transport allows and reads the server's answer."""

    def __init__(self, *, total: int, head: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.total = total
        self._head = head
        self._fd = -1
        self.transport: asyncio.Transport | None = None
        self.written = 0  # body bytes handed to the transport
        self._writable = asyncio.Event()
        self._writable.set()
        self._response = bytearray()
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self.answered: asyncio.Future[None] = loop.create_future()
        self.first_body = asyncio.Event()
        self._t_first_body: float | None = None
        self._t_last_body: float | None = None
        self._final: int | None = None  # the acknowledged count, frozen at the end
        self.t_response: float | None = None
        self.settled = False
        self.stop = asyncio.Event()

    # Counted (agent/probes/transfer.py)
    @property
    def count(self) -> int:
        if self._final is not None:
            return self._final
        if self.transport is None:
            return 0
        pending = self.transport.get_write_buffer_size() + _unsent(self._fd)
        acked = len(self._head) + self.written - pending
        return min(self.total, max(0, acked - len(self._head)))

    @property
    def t_first_body(self) -> float | None:
        return self._t_first_body

    @property
    def t_last_body(self) -> float | None:
        return self._t_last_body

    def settle(self) -> None:
        self.settled = True
        self.stop.set()

    def freeze(self, t: float) -> None:
        """The transfer is over (done, stopped or failed): keep its count and end time."""
        if self._final is None:
            self._final = self.count
            if self._t_first_body is not None and self._final > 0:
                self._t_last_body = self._t_last_body or t

    def mark_acked(self, t: float) -> None:
        self._t_last_body = t
        self._final = self.total

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        self._fd = sock.fileno() if sock is not None else -1
        transport.set_write_buffer_limits(high=_WRITE_HIGH)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        if self.answered.done():
            return
        self._response += data
        while not self.answered.done():
            end = self._response.find(b"\r\n\r\n")
            if end < 0:
                if len(self._response) > MAX_HEAD:
                    self._answer(HTTPProtocolError("response headers larger than 64 KiB"))
                return
            lines = bytes(self._response[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not is_status(parts[1]):
                self._answer(HTTPProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}"))
                return
            status = int(parts[1])
            if 100 <= status < 200:  # an interim answer: the real one follows, maybe in this segment
                self._response = self._response[end + 4 :]
                continue
            self.status, self.reason = status, parts[2] if len(parts) > 2 else ""
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if sep:
                    self.headers[name.strip().lower()] = value.strip()
            self.t_response = time.perf_counter()
            self._answer(None)

    def eof_received(self) -> bool:
        self._answer(ServerClosed("the server closed before answering the upload"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._writable.set()  # a pump waiting to write must see the end
        self._answer(exc or ServerClosed("the connection closed before the server answered"))

    def _answer(self, exc: BaseException | None) -> None:
        if self.answered.done():
            return
        if exc is None:
            self.answered.set_result(None)
        else:
            self.answered.set_exception(exc)

    async def pump(self) -> None:
        """Write the body as fast as the transport takes it; returns when all is written
        or the upload is stopped."""
        assert self.transport is not None
        view = memoryview(_BODY)
        while self.written < self.total and not self.stop.is_set():
            if self.answered.done() or self.transport.is_closing():
                return
            await self._writable.wait()
            n = min(CHUNK, self.total - self.written)
            if self._t_first_body is None:
                self._t_first_body = time.perf_counter()
                self.first_body.set()
            self.transport.write(view[:n])
            self.written += n
            await asyncio.sleep(0)  # let the sampler and the reader run between chunks

    async def all_acked(self) -> None:
        """Returns once the server has acknowledged every body byte (or answered)."""
        # polled: the kernel's send queue draining has no event to wait on
        while self.count < self.total and not self.answered.done():  # noqa: ASYNC110
            await asyncio.sleep(_ACK_POLL_S)
        self.mark_acked(time.perf_counter())


async def upload(
    url_text: str, spec: Spec, limits: Limits, *, sni: str, address: str | None = None
) -> Transfer:
    """One upload's figures (the target's or the control's)."""
    url = URL(url_text)
    loop = asyncio.get_running_loop()
    result = Transfer(url=url_text)
    context = await tls_context(url, spec, limits, sni)
    head = (
        f"POST {url.raw_path_qs or '/'} HTTP/1.1\r\n"
        f"Host: {host_header(url)}\r\n"
        "User-Agent: vantage-probe/0.1\r\n"
        "Accept: */*\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {spec.max_bytes}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    proto = _Upload(total=spec.max_bytes, head=head)
    series = Series(spec.interval_s, burst_bytes=spec.burst_bytes, settle_s=spec.settle_s)
    sampler: asyncio.Task[None] | None = None
    transport: asyncio.Transport | None = None
    started = now()
    t_sent: float | None = None
    stopped_by = ""
    try:
        async with asyncio.timeout(spec.timeout_s):
            sock, connected = await open_socket(url, limits, address)
            result = replace(result, address=connected.address)
            try:
                transport, _ = await loop.create_connection(
                    lambda: proto, sock=sock, ssl=context, server_hostname=sni if context else None
                )
            except BaseException:
                sock.close()
                raise
        transport.write(head)
        t_sent = now()
        sampler = asyncio.create_task(series.sample(proto))
        remaining = spec.max_seconds - (now() - started)
        stopped = asyncio.ensure_future(proto.stop.wait())
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                sending = asyncio.ensure_future(_send(proto))
                try:
                    waits: set[asyncio.Future[Any]] = {sending, stopped, proto.answered}
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sending.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sending
                if proto.stop.is_set() and not proto.answered.done():
                    stopped_by = "settled"
                else:
                    # the body is acknowledged (or the server answered early): its answer
                    await proto.answered
                    stopped_by = "complete"
        except TimeoutError:
            stopped_by = "max_seconds"
        finally:
            stopped.cancel()
        proto.freeze(time.perf_counter())
        if proto.status and not 200 <= proto.status < 300:
            raise HTTPProtocolError(f"status {proto.status} {proto.reason}".strip())
    except Exception as exc:
        proto.freeze(time.perf_counter())
        result = replace(result, failure=failure_of(exc), failure_detail=f.describe(exc))
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        if transport is not None:
            transport.abort()
        if proto.answered.done() and not proto.answered.cancelled():
            proto.answered.exception()  # retrieved: the failure is reported above
        else:
            proto.answered.cancel()
    return _figures(result, proto, series, t_sent, stopped_by)


async def _send(proto: _Upload) -> None:
    await proto.pump()
    await proto.all_acked()


def _figures(
    result: Transfer, proto: _Upload, series: Series, t_sent: float | None, stopped_by: str
) -> Transfer:
    duration = mean = ttfb = None
    t_first, t_last = proto.t_first_body, proto.t_last_body
    if t_sent is not None and t_last is not None:
        duration = t_last - t_sent
    if t_first is not None and t_last is not None and t_last > t_first:
        mean = proto.count / (t_last - t_first)
    if proto.t_response is not None and t_last is not None:
        ttfb = max(0.0, proto.t_response - t_last)
    parts = series.split(proto)
    error_status = bool(proto.status) and not 200 <= proto.status < 300
    if error_status:
        mean = None
    return replace(
        result,
        bytes=proto.count,
        duration_s=rounded(duration),
        bytes_per_second=None if mean is None else round(mean, 3),
        ttfb_s=rounded(ttfb),
        stall_s=0.0,
        series_bps=tuple(round(x, 3) for x in series.closed(proto)),
        first_part_bps=None if error_status else round3(parts.first_part_bps),
        sustained_bps=None if error_status else round3(parts.sustained_bps),
        drop_at_s=None if error_status else rounded(parts.drop_at_s),
        rate_low_bps=None if error_status else round3(parts.rate_low_bps),
        rate_high_bps=None if error_status else round3(parts.rate_high_bps),
        rate_precise=not error_status and parts.precise,
        status=proto.status or None,
        headers={k: v for k, v in proto.headers.items() if k in ("content-type", "server", "via")},
        complete=stopped_by == "complete" and proto.count >= proto.total,
        stopped_by=stopped_by if result.failure is None else "failure",
    )
