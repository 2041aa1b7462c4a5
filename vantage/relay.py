"""A userspace token-bucket TCP relay: throttles one path without root.

``vantage demo`` runs without root, so it cannot shape with ``tc``. Instead the agents of
the "throttled" region reach a target through this relay, which forwards bytes between a
client and an upstream and paces each direction with a token bucket:

- the bucket holds at most ``bucket_bytes`` (4 KiB by default), so a reader sees the
  configured rate at the 100 ms scale, not a burst followed by silence;
- the downstream bucket (upstream -> client) is shared by all connections through the
  relay, like one subscriber line that a middlebox throttles; so is the upstream one;
- a pump reads at most one bucket's worth, waits for the tokens (``asyncio.sleep``, never a
  busy loop), writes and drains, so each direction buffers at most one chunk plus the
  stream's own bounded buffers.

The rate counts TCP payload bytes; ``tc`` (used by the lab) counts whole frames, so the
goodput through ``tc`` at the same nominal rate is about 4% lower.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from types import TracebackType

import structlog

from agent.clock import Clock, SystemClock

log = structlog.get_logger(__name__)

DEFAULT_BUCKET_BYTES = 4096
_UNTHROTTLED_CHUNK = 64 * 1024
_STREAM_LIMIT = 64 * 1024
_UPLOAD_RCVBUF = 8 * 1024
_UPLOAD_STREAM_LIMIT = 8 * 1024


class TokenBucket:
    """``rate`` bytes per second, at most ``capacity`` bytes of burst; starts full.
    ``clock`` is the real one unless a test passes its own."""

    def __init__(
        self, *, rate: float, capacity: int = DEFAULT_BUCKET_BYTES, clock: Clock | None = None
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate: must be > 0 bytes/s, got {rate!r}")
        if capacity < 1:
            raise ValueError(f"capacity: must be >= 1 byte, got {capacity!r}")
        self.rate = float(rate)
        self.capacity = capacity
        self._clock: Clock = clock or SystemClock()
        self._tokens = float(capacity)
        self._stamp = self._clock.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def consume(self, n: int) -> None:
        """Wait until ``n`` tokens (``n <= capacity``) are available and take them.

        Callers queue on a lock, so concurrent connections are served in turn.
        """
        if n > self.capacity:
            raise ValueError(f"n: {n} exceeds the bucket capacity {self.capacity}")
        async with self._lock:
            self._refill()
            if self._tokens < n:
                # One wait for the shortfall. A timer may fire a hair early (clock
                # resolution) and float arithmetic rounds: the bucket then dips a hair
                # below zero, which the next refill repays. (A loop "until enough" could
                # spin on sub-nanosecond waits that move no clock.)
                await self._clock.sleep((n - self._tokens) / self.rate)
                self._refill()
            self._tokens -= n


class ThrottlingRelay:
    """Listens on (host, port) and forwards each connection to (upstream_host, upstream_port).

    ``downstream_rate`` and ``upstream_rate`` are bytes per second, or None for no limit.
    Use as ``async with ThrottlingRelay(...) as relay:``; ``relay.port`` is the bound port.
    """

    def __init__(
        self,
        *,
        upstream_host: str,
        upstream_port: int,
        host: str = "127.0.0.1",
        port: int = 0,
        downstream_rate: float | None = None,
        upstream_rate: float | None = None,
        bucket_bytes: int = DEFAULT_BUCKET_BYTES,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port: must be 0..65535, got {port}")
        if not 0 < upstream_port <= 65535:
            raise ValueError(f"upstream_port: must be 1..65535, got {upstream_port}")
        self.host = host
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self._requested_port = port
        self._connect_timeout_s = connect_timeout_s
        self._down = (
            TokenBucket(rate=downstream_rate, capacity=bucket_bytes)
            if downstream_rate is not None
            else None
        )
        self._up = (
            TokenBucket(rate=upstream_rate, capacity=bucket_bytes)
            if upstream_rate is not None
            else None
        )
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port: int = 0
        self.bytes_down = 0
        self.bytes_up = 0

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("relay already started")
        if self._up is None:
            self._server = await asyncio.start_server(
                self._on_client, self.host, self._requested_port, limit=_STREAM_LIMIT
            )
        else:
            # Throttled uploads: keep what the relay takes in ahead of its rate small (a
            # small receive buffer, an Ethernet-sized MSS, a short stream buffer), so a
            # client that counts what was acknowledged sees the rate, as behind tc.
            listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _UPLOAD_RCVBUF)
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1400)
            listener.bind((self.host, self._requested_port))
            self._server = await asyncio.start_server(
                self._on_client, sock=listener, limit=_UPLOAD_STREAM_LIMIT
            )
        self.port = int(self._server.sockets[0].getsockname()[1])
        log.info(
            "relay_started",
            listen=f"{self.host}:{self.port}",
            upstream=f"{self.upstream_host}:{self.upstream_port}",
            downstream_rate=self._down.rate if self._down else None,
            upstream_rate=self._up.rate if self._up else None,
        )

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        for task in list(self._connections):
            task.cancel()
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await server.wait_closed()

    async def __aenter__(self) -> ThrottlingRelay:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _on_client(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._relay(client_reader, client_writer)
        except asyncio.CancelledError:
            # aclose() cancels live connections; end this top-level task quietly, because
            # asyncio.streams (3.11) calls task.exception() on it and would log the
            # CancelledError as an error
            client_writer.transport.abort()
        finally:
            self._connections.discard(task)

    async def _relay(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.upstream_host, self.upstream_port, limit=_STREAM_LIMIT
                ),
                self._connect_timeout_s,
            )
        except (OSError, TimeoutError) as exc:
            log.warning("relay_upstream_failed", error=repr(exc))
            client_writer.transport.abort()
            return
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pump(client_reader, up_writer, self._up, upstream=True))
                tg.create_task(self._pump(up_reader, client_writer, self._down, upstream=False))
        except* (ConnectionError, OSError):
            # one side went away abruptly: drop both, as a middlebox would
            pass
        finally:
            for writer in (client_writer, up_writer):
                writer.close()
            for writer in (client_writer, up_writer):
                with contextlib.suppress(ConnectionError, OSError):
                    await writer.wait_closed()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        bucket: TokenBucket | None,
        *,
        upstream: bool,
    ) -> None:
        chunk = bucket.capacity if bucket is not None else _UNTHROTTLED_CHUNK
        while True:
            data = await reader.read(chunk)
            if not data:
                if writer.can_write_eof():
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                return
            if bucket is not None:
                await bucket.consume(len(data))
            writer.write(data)
            await writer.drain()
            if upstream:
                self.bytes_up += len(data)
            else:
                self.bytes_down += len(data)
