"""throughput: download a URL until ``max_bytes`` or ``max_seconds`` and measure the rate.

Why not aiohttp here: throttling is a rate, so the probe must be able to read as fast as
the path delivers, on a fast path too; with aiohttp every chunk goes through its parser,
its ``StreamReader`` buffers and a Python iteration, and on loopback it falls well short
of curl. This module speaks plain HTTP/1.1 (one GET, ``Accept-Encoding: identity``,
``Connection: close``) over an ``asyncio.BufferedProtocol``: the kernel copies straight
into one preallocated 1 MiB buffer (``recv_into``) and the per-read Python work is a few
additions: count, time of the read, a stall check. The headers are parsed once; bodies
framed by Content-Length, chunked transfer coding or the end of the connection are all
handled, and only body bytes are counted. Redirects are not followed (a throughput
target is a file URL; a 3xx is reported as ``http_error`` with its ``Location``).

How the figures are computed (all times from ``time.perf_counter``):

- ``ttfb_s``: from the request being written to the first response byte.
- ``bytes``: body bytes received (chunk framing excluded), at most ``max_bytes``.
- ``duration_s``: from the request being written to the last body byte.
- ``bytes_per_second`` (the mean): the bytes after the first read divided by the time
  from that first read to the last one. The wait for the first byte (connection setup,
  server think time, one RTT) is left out, and so are the bytes of that first read,
  which arrived all at once and carry no timing. Slow start is short on any path this
  probe cares about and is included; what a user would call "the download speed" is
  what remains. When the body came in a single read the figure falls back to
  ``bytes / duration_s``.
- ``series_bps``: body bytes/s in each ``interval_s`` window (default 0.25 s) from the
  first body byte on; the last, partial window is divided by its actual length.
- ``stall_s``: the sum of the gaps between consecutive reads that lasted longer than
  ``stall_threshold`` (default 0.5 s): time with the connection open and nothing coming.
- ``sustained_bps``, ``first_part_bps``, ``drop_at_s``: from the windows
  (``agent/probes/rates.py``): the rate after a policer's burst when the series shows
  one (a burst of at least 128 KiB, then a flat, much slower rate for at least a second),
  else the rate of the steady part, every window after slow start. Slow start, a loss
  into a short queue or a congested link's swings are not a burst.
- ``stopped_by``: "complete", "max_bytes", "max_seconds", "failure", or "settled": ended
  early, past ``burst`` bytes and ``settle`` seconds, and only once the sustained rate
  was known to +-10% (a 95% interval over at least 8 windows, 2 s and 64 KiB after slow
  start, ``rates.py``). The interval itself: ``rate_low_bps``, ``rate_high_bps``,
  ``rate_precise``.

``control=URL`` downloads a second URL right after the target, from the same agent with
the same limits, and reports it under ``control`` with ``ratio`` = target bytes/s over
control bytes/s. ``sni=`` sends a chosen server name (or none) in the TLS handshake while
connecting to the URL's host: the same server fetched under the target's name and under
a neutral one.

``trigger_check=URL`` (an https URL the operator controls) adds two transfers after
those, each swapping one thing, reported under ``trigger_checks``: ``swap`` "sni" fetches
the target URL from the address the target was reached at, under the check URL's server
name ("" when it is an address: no SNI); ``swap`` "address" fetches the check URL under
the target's server name. Neither verifies the certificate (the names are swapped on
purpose). A throttle keyed on the name follows the name; one keyed on the address stays
with the address (``coordinator/analysis/trigger.py``).

``timeout`` bounds connecting and the wait for the response headers; ``max_seconds``
bounds the whole download. Reaching ``max_bytes`` or ``max_seconds`` is not a failure.
The spec and its options are parsed in ``common/specs/throughput.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import replace
from typing import Any

from yarl import URL

from agent.probes import failures as f
from agent.probes import rates, upload
from agent.probes.base import Limits, ProbeOutcome, SpecError
from agent.probes.common import MIN_CHECK_S, budget_left, failed, now, rounded, skipped_check
from agent.probes.transfer import (
    MAX_LENGTH_DIGITS,
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
from common.specs.options import url_host
from common.specs.throughput import NAME, Spec

BUFFER_SIZE = 1024 * 1024
MAX_HEAD = 64 * 1024
# Interim (1xx) responses accepted before the real one.
MAX_INTERIM = 8


_HEAD, _LENGTH, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_CRLF, _UNTIL_CLOSE, _DONE = range(7)


class _Download(asyncio.BufferedProtocol):
    """Counts body bytes as the kernel delivers them into one reusable buffer."""

    def __init__(self, *, max_bytes: int, stall_threshold: float) -> None:
        self._buffer = bytearray(BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._max_bytes = max_bytes
        self._stall_threshold = stall_threshold
        self._state = _HEAD
        self._head = bytearray()
        self._interim = 0
        self._remaining = 0  # body bytes left (Content-Length) or in the current chunk
        self._line = bytearray()  # a chunk-size line being assembled
        self.transport: asyncio.BaseTransport | None = None
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self.count = 0
        self.first_read_bytes = 0
        self.t_first_byte: float | None = None  # first response byte
        self.t_first_body: float | None = None
        self.t_last_body: float | None = None
        self.stall_s = 0.0
        self.headers_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.complete = False  # the body ended as framed (not cut by a limit)
        self.settled = False  # ended early: past the burst and steady for settle_s
        self.first_body = asyncio.Event()

    # asyncio.BufferedProtocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        t = time.perf_counter()
        if self._state == _LENGTH or self._state == _UNTIL_CLOSE:
            # The hot path: a body byte count and the time of the read.
            if self._state == _LENGTH and nbytes >= self._remaining:
                nbytes = self._remaining
                self._remaining = 0
                self.complete = True
                self._state = _DONE
            elif self._state == _LENGTH:
                self._remaining -= nbytes
            self._count(nbytes, t)
            return
        try:
            if self._state == _HEAD:
                if self.t_first_byte is None:
                    self.t_first_byte = t
                self._on_head(nbytes, t)
            elif self._state != _DONE:
                self._on_chunked(0, nbytes, t)
        except HTTPProtocolError as exc:
            self._finish(exc)

    def eof_received(self) -> bool:
        if self._state == _UNTIL_CLOSE:
            self.complete = True
            self._finish(None)
        elif self._state == _HEAD:
            self._finish(ServerClosed("the server closed before sending a response"))
        elif self._state != _DONE:
            self._finish(ServerClosed(f"the server closed after {self.count} body bytes"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None and self._state == _UNTIL_CLOSE:
            self.complete = True
        if exc is None and self._state not in (_DONE, _UNTIL_CLOSE):
            exc = ServerClosed(f"the connection closed after {self.count} body bytes")
        self._finish(exc)

    def settle(self) -> None:
        """End the download now: it has settled (the sampler saw it past the burst)."""
        if self._state != _DONE:
            self.settled = True
            self._finish(None)

    # bookkeeping
    def _count(self, nbytes: int, t: float) -> None:
        if nbytes <= 0:
            if self._state == _DONE:
                self._finish(None)
            return
        last = self.t_last_body
        if last is None:
            self.t_first_body = t
            self.first_read_bytes = nbytes
            self.first_body.set()
        elif t - last > self._stall_threshold:
            self.stall_s += t - last
        self.t_last_body = t
        self.count += nbytes
        if self.count >= self._max_bytes:
            self.count = self._max_bytes if self.count > self._max_bytes else self.count
            self._state = _DONE
        if self._state == _DONE:
            self._finish(None)

    def _finish(self, exc: BaseException | None) -> None:
        if self._state != _DONE:
            self._state = _DONE
        if not self.headers_done.done():
            if exc is None:
                self.headers_done.set_result(None)
            else:
                self.headers_done.set_exception(exc)
        if not self.done.done():
            if exc is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(exc)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # parsing
    def _on_head(self, nbytes: int, t: float) -> None:
        self._head += self._view[:nbytes]
        while True:  # one pass per response head; interim (1xx) heads loop, bounded
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > MAX_HEAD:
                    raise HTTPProtocolError("response headers larger than 64 KiB")
                return
            head = bytes(self._head[:end]).decode("latin-1")
            rest = bytes(self._head[end + 4 :])
            self._head = bytearray()
            lines = head.split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not is_status(parts[1]):
                raise HTTPProtocolError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
            self.status = int(parts[1])
            self.reason = parts[2] if len(parts) > 2 else ""
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise HTTPProtocolError(f"bad header line: {line[:80]!r}")
                key = name.strip().lower()
                value = value.strip()
                self.headers[key] = f"{self.headers[key]}, {value}" if key in self.headers else value
            if not 100 <= self.status < 200:
                break
            # An interim response: the real one follows (a server that sends nothing but
            # interim heads is not answering).
            self._interim += 1
            if self._interim > MAX_INTERIM:
                raise HTTPProtocolError(f"more than {MAX_INTERIM} interim (1xx) responses")
            self.status, self.reason, self.headers = 0, "", {}
            self._head = bytearray(rest)
        if not self.headers_done.done():
            self.headers_done.set_result(None)
        encoding = self.headers.get("transfer-encoding", "").lower()
        if self.status == 204 or self.status == 304:
            self.complete = True
            self._state = _DONE
            self._finish(None)
            return
        if "chunked" in encoding:
            self._state = _CHUNK_SIZE
            self._on_bytes(rest, t)
        elif "content-length" in self.headers:
            length = self.headers["content-length"].split(",")[0].strip()
            if not (length.isascii() and length.isdigit() and len(length) <= MAX_LENGTH_DIGITS):
                raise HTTPProtocolError(f"bad Content-Length {length[:40]!r}")
            self._remaining = int(length)
            self._state = _LENGTH
            if self._remaining == 0:
                self.complete = True
                self._state = _DONE
                self._finish(None)
                return
            self._on_bytes(rest, t)
        else:
            self._state = _UNTIL_CLOSE
            self._on_bytes(rest, t)

    def _on_bytes(self, data: bytes, t: float) -> None:
        """Feed bytes that arrived with the headers through the body states."""
        if not data:
            return
        self._view[: len(data)] = data
        if self._state in (_LENGTH, _UNTIL_CLOSE):
            self.buffer_updated(len(data))
        else:
            self._on_chunked(0, len(data), t)

    def _on_chunked(self, pos: int, end: int, t: float) -> None:
        view = self._view
        counted = 0
        while pos < end and self._state != _DONE:
            if self._state == _CHUNK_DATA:
                take = min(self._remaining, end - pos)
                counted += take
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _CHUNK_CRLF
                    self._line = bytearray()
            elif self._state == _CHUNK_CRLF:
                take = min(2 - len(self._line), end - pos)
                self._line += view[pos : pos + take]
                pos += take
                if len(self._line) == 2:
                    if self._line != b"\r\n":
                        raise HTTPProtocolError("chunk not followed by CRLF")
                    self._line = bytearray()
                    self._state = _CHUNK_SIZE
            else:  # _CHUNK_SIZE
                newline = self._buffer.find(b"\n", pos, end)
                stop = end if newline < 0 else newline + 1
                self._line += view[pos:stop]
                pos = stop
                if len(self._line) > 1024:
                    raise HTTPProtocolError("chunk size line too long")
                if newline < 0:
                    continue
                size_text = bytes(self._line).split(b";", 1)[0].strip()
                self._line = bytearray()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    raise HTTPProtocolError(f"bad chunk size {size_text[:20]!r}") from None
                if size == 0:  # the last chunk; trailers are not needed
                    self.complete = True
                    self._state = _DONE
                else:
                    self._remaining = size
                    self._state = _CHUNK_DATA
        if counted or self._state == _DONE:
            self._count(counted, t)


async def _fetch(
    url_text: str, spec: Spec, limits: Limits, *, sni: str, address: str | None = None
) -> Transfer:
    url = URL(url_text)
    loop = asyncio.get_running_loop()
    result = Transfer(url=url_text)
    context = await tls_context(url, spec, limits, sni)
    proto = _Download(max_bytes=spec.max_bytes, stall_threshold=spec.stall_threshold_s)
    series = Series(spec.interval_s, burst_bytes=spec.burst_bytes, settle_s=spec.settle_s)
    sampler: asyncio.Task[None] | None = None
    transport: asyncio.Transport | None = None
    started = now()
    t_sent: float | None = None
    t_stop: float | None = None  # when max_seconds cut a transfer that was still running
    stopped_by = ""
    try:
        async with asyncio.timeout(spec.timeout_s) as setup_deadline:
            sock, connected = await open_socket(url, limits, address)
            result = replace(result, address=connected.address)
            try:
                transport, _ = await loop.create_connection(
                    lambda: proto, sock=sock, ssl=context, server_hostname=sni if context else None
                )
            except BaseException:
                sock.close()
                raise
            request = (
                f"GET {url.raw_path_qs or '/'} HTTP/1.1\r\n"
                f"Host: {host_header(url)}\r\n"
                "User-Agent: vantage-probe/0.1\r\n"
                "Accept: */*\r\n"
                "Accept-Encoding: identity\r\n"
                "Connection: close\r\n\r\n"
            ).encode("latin-1")
            transport.write(request)
            t_sent = now()
            sampler = asyncio.create_task(series.sample(proto))
            await proto.headers_done
            setup_deadline.reschedule(None)
        if proto.status and not 200 <= proto.status < 300:
            transport.close()
            raise HTTPProtocolError(f"status {proto.status} {proto.reason}".strip())
        remaining = spec.max_seconds - (now() - started)
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                await asyncio.shield(proto.done)
        except TimeoutError:
            stopped_by = "max_seconds"
            t_stop = time.perf_counter()
        else:
            stopped_by = "complete" if proto.complete else "settled" if proto.settled else "max_bytes"
    except Exception as exc:
        result = replace(result, failure=failure_of(exc), failure_detail=f.describe(exc))
    finally:
        if sampler is not None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        if transport is not None:
            transport.abort()
        for future in (proto.headers_done, proto.done):
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # retrieved: the failure is reported above
    return _figures(result, proto, series, t_sent, stopped_by, t_stop)


def _figures(
    result: Transfer, proto: _Download, series: Series, t_sent: float | None, stopped_by: str,
    t_stop: float | None = None,
) -> Transfer:
    duration = None
    mean = None
    ttfb = None
    if t_sent is not None and proto.t_first_byte is not None:
        ttfb = proto.t_first_byte - t_sent
    if t_sent is not None and proto.t_last_body is not None and proto.t_first_body is not None:
        duration = proto.t_last_body - t_sent
        span = proto.t_last_body - proto.t_first_body
        if span > 0 and proto.count > proto.first_read_bytes:
            mean = (proto.count - proto.first_read_bytes) / span
        elif duration > 0:
            mean = proto.count / duration
    parts = series.split(proto, t_stop)
    if proto.status and not 200 <= proto.status < 300:
        mean = None  # an error page's size over its time is no throughput
        parts = rates.Split()
    return replace(
        result,
        bytes=proto.count,
        duration_s=rounded(duration),
        bytes_per_second=None if mean is None else round(mean, 3),
        ttfb_s=rounded(ttfb),
        stall_s=round(proto.stall_s, 6),
        series_bps=tuple(round(x, 3) for x in series.closed(proto, t_stop)),
        first_part_bps=round3(parts.first_part_bps),
        sustained_bps=round3(parts.sustained_bps),
        drop_at_s=rounded(parts.drop_at_s),
        rate_low_bps=round3(parts.rate_low_bps),
        rate_high_bps=round3(parts.rate_high_bps),
        rate_precise=parts.precise,
        status=proto.status or None,
        headers={k: v for k, v in proto.headers.items() if k in _REPORTED_HEADERS},
        complete=proto.complete,
        stopped_by=stopped_by if result.failure is None else "failure",
    )


_REPORTED_HEADERS = (
    "content-type",
    "content-length",
    "transfer-encoding",
    "server",
    "location",
    "via",
)


def _judged(fetch: Transfer) -> float | None:
    """The rate the analysis judges: the sustained one, else the mean."""
    return fetch.sustained_bps if fetch.sustained_bps is not None else fetch.bytes_per_second


async def _trigger_checks(
    spec: Spec, limits: Limits, transfer: Any, target: Transfer, started: float
) -> list[dict[str, Any]]:
    """The two transfers of ``trigger_check``, each fitted into what is left of the task's
    time (half of it for the first). The names are swapped, so no certificate can match
    them: the checks verify nothing (they carry no data worth protecting, only a rate)."""
    assert spec.trigger_check is not None
    out: list[dict[str, Any]] = []
    for swap, url, sni, address, share in (
        ("sni", spec.target, spec.trigger_sni, target.address or None, 2),
        ("address", spec.trigger_check, spec.sni, None, 1),
    ):
        left = budget_left(started)
        check_spec = replace(spec, verify=False)
        if left is not None:
            if left / share < MIN_CHECK_S:
                out.append(skipped_check(swap, url, sni))
                continue
            check_spec = replace(check_spec, max_seconds=min(spec.max_seconds, left / share),
                                 timeout_s=min(spec.timeout_s, left / share))  # fmt: skip
        check: Transfer = await transfer(url, check_spec, limits, sni=sni, address=address)
        out.append({
            "swap": swap, "url": check.url, "address": check.address, "sni": sni,
            "bytes": check.bytes, "bytes_per_second": check.bytes_per_second,
            "sustained_bps": check.sustained_bps, "failure": check.failure or "",
            "failure_detail": check.failure_detail,
        })  # fmt: skip
    return out


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    try:
        transfer = upload.upload if spec.direction == "upload" else _fetch
        target = await transfer(spec.target, spec, limits, sni=spec.sni)
        control = None
        if spec.control is not None:
            control = await transfer(spec.control, spec, limits, sni=url_host(URL(spec.control)))
        checks = None
        if spec.trigger_check is not None:
            checks = await _trigger_checks(spec, limits, transfer, target, started)
    except SpecError:
        raise
    except Exception as exc:  # a bug, not a network failure: report it as data anyway
        outcome = failed(kind=NAME, target=spec.target, exc=exc, started=started)
        if outcome.failure == f.UNKNOWN_FAILURE:  # not a network error: the probe's own
            outcome = replace(outcome, failure=f.AGENT_INTERNAL_ERROR)
        return outcome
    data: dict[str, Any] = {
        "url": target.url,
        "direction": spec.direction,
        "address": target.address,
        "sni": spec.sni,
        "status": target.status,
        "headers": dict(target.headers or {}),
        "bytes": target.bytes,
        "duration_s": target.duration_s,
        "bytes_per_second": target.bytes_per_second,
        "ttfb_s": target.ttfb_s,
        "stall_s": target.stall_s,
        "interval_s": spec.interval_s,
        "series_bps": list(target.series_bps),
        "first_part_bps": target.first_part_bps,
        "sustained_bps": target.sustained_bps,
        "drop_at_s": target.drop_at_s,
        "rate_low_bps": target.rate_low_bps,
        "rate_high_bps": target.rate_high_bps,
        "rate_precise": bool(target.rate_precise),
        "complete": target.complete,
        "stopped_by": target.stopped_by,
        "max_bytes": spec.max_bytes,
        "max_seconds": spec.max_seconds,
        "burst_bytes": spec.burst_bytes,
        "settle_s": spec.settle_s,
    }
    if control is not None:
        data["control"] = {
            "url": control.url,
            "bytes": control.bytes,
            "duration_s": control.duration_s,
            "bytes_per_second": control.bytes_per_second,
            "sustained_bps": control.sustained_bps,
            "drop_at_s": control.drop_at_s,
            "failure": control.failure or "",
            "failure_detail": control.failure_detail,
            "ttfb_s": control.ttfb_s,
            "status": control.status,
        }
        ratio = None
        if target.bytes_per_second is not None and control.bytes_per_second:
            ratio = round(target.bytes_per_second / control.bytes_per_second, 6)
        data["ratio"] = ratio
        sustained = None
        t_rate, c_rate = _judged(target), _judged(control)
        if t_rate is not None and c_rate:
            sustained = round(t_rate / c_rate, 6)
        data["sustained_ratio"] = sustained
    if checks is not None:
        data["trigger_checks"] = checks
    return ProbeOutcome(
        kind=NAME,
        target=spec.target,
        failure=target.failure,
        failure_detail=target.failure_detail,
        duration_s=round(now() - started, 6),
        data=data,
    )
