"""Real servers on 127.0.0.1 for the probe tests: DNS, raw TCP behaviours, HTTP(S)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

LIE = "10.10.34.35"
OK_A = "93.184.216.34"  # only DNS data: nothing connects to it
OK_AAAA = "2606:2800:220:1::34"


def dns_answer(query: dns.message.Message, *, tcp: bool) -> dns.message.Message | None:
    """The test zone: names that answer, lie, fail and stay silent."""
    response = dns.message.make_response(query)
    question = query.question[0]
    name = question.name.to_text().lower()
    qtype = question.rdtype

    def add(owner: str, rdtype: str, *values: str) -> None:
        response.answer.append(dns.rrset.from_text(owner, 300, "IN", rdtype, *values))

    if name == "silent.test.":
        return None
    if name == "ok.test.":
        if qtype == dns.rdatatype.A:
            add(name, "A", OK_A)
        elif qtype == dns.rdatatype.AAAA:
            add(name, "AAAA", OK_AAAA)
    elif name == "alias.test.":
        add(name, "CNAME", "middle.test.")
        add("middle.test.", "CNAME", "ok.test.")
        if qtype == dns.rdatatype.A:
            add("ok.test.", "A", OK_A)
    elif name == "blocked.test.":
        if qtype == dns.rdatatype.A:
            add(name, "A", LIE)
    elif name == "v4only.test.":
        if qtype == dns.rdatatype.A:
            add(name, "A", OK_A)
    elif name == "big.test.":
        if not tcp:
            response.flags |= dns.flags.TC
            return response
        if qtype == dns.rdatatype.A:
            add(name, "A", *(f"93.184.216.{i}" for i in range(1, 61)))
    elif name == "nx.test.":
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif name == "servfail.test.":
        response.set_rcode(dns.rcode.SERVFAIL)
    elif name == "refused.test.":
        response.set_rcode(dns.rcode.REFUSED)
    elif name == "noanswer.test.":
        pass
    else:
        response.set_rcode(dns.rcode.NXDOMAIN)
    return response


Zone = Callable[..., "dns.message.Message | None"]


def zone_of(names: dict[str, str]) -> Zone:
    """A zone answering each name (no trailing dot) with one A record, NXDOMAIN else."""

    def answer(query: dns.message.Message, *, tcp: bool) -> dns.message.Message:
        response = dns.message.make_response(query)
        name = query.question[0].name.to_text(omit_final_dot=True).lower()
        if name not in names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif query.question[0].rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(f"{name}.", 300, "IN", "A", names[name]))
        return response

    return answer


class _DNSUDP(asyncio.DatagramProtocol):
    def __init__(self, zone: Zone = dns_answer) -> None:
        self.zone = zone

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        response = self.zone(dns.message.from_wire(data), tcp=False)
        if response is not None:
            self.transport.sendto(response.to_wire(), addr)


async def _dns_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, zone: Zone = dns_answer) -> None:
    try:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            response = zone(dns.message.from_wire(await reader.readexactly(length)), tcp=True)
            if response is None:
                await asyncio.sleep(30)
                return
            wire = response.to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def dns_server(zone: Zone = dns_answer) -> AsyncIterator[int]:
    """A DNS server on 127.0.0.1 (UDP and TCP on the same port); yields the port."""
    loop = asyncio.get_running_loop()
    for _ in range(20):
        tcp = await asyncio.start_server(functools.partial(_dns_tcp, zone=zone), "127.0.0.1", 0)
        port = tcp.sockets[0].getsockname()[1]
        try:
            udp, _ = await loop.create_datagram_endpoint(lambda: _DNSUDP(zone), local_addr=("127.0.0.1", port))
        except OSError:
            tcp.close()
            await tcp.wait_closed()
            continue
        break
    else:
        raise RuntimeError("no free port for UDP and TCP")
    try:
        yield port
    finally:
        udp.close()
        tcp.close()
        await tcp.wait_closed()


@contextlib.asynccontextmanager
async def dot_server(context: ssl.SSLContext, zone: Zone = dns_answer) -> AsyncIterator[int]:
    """DNS over TLS on 127.0.0.1 (the TCP framing inside TLS); yields the port."""
    server = await asyncio.start_server(functools.partial(_dns_tcp, zone=zone), "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def doh_server(context: ssl.SSLContext, zone: Zone = dns_answer) -> AsyncIterator[int]:
    """DNS over HTTPS on 127.0.0.1: POST /dns-query answers, GET /html answers a web page
    (not a DNS message); yields the port."""
    from aiohttp import web

    async def query(request: web.Request) -> web.Response:
        response = zone(dns.message.from_wire(await request.read()), tcp=True)
        assert response is not None
        return web.Response(body=response.to_wire(), content_type="application/dns-message")

    async def split(request: web.Request) -> web.StreamResponse:
        response = zone(dns.message.from_wire(await request.read()), tcp=True)
        assert response is not None
        wire = response.to_wire()
        out = web.StreamResponse(headers={"Content-Type": "application/dns-message"})
        await out.prepare(request)
        await out.write(wire[: len(wire) // 2])
        await asyncio.sleep(0.05)
        await out.write(wire[len(wire) // 2 :])
        await out.write_eof()
        return out

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<html>a portal</html>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/dns-query", query)
    app.router.add_post("/dns-query-split", split)
    app.router.add_post("/html", html)
    async with serve_app(app, context) as port:
        yield port


@contextlib.contextmanager
def silent_udp() -> Iterator[int]:
    """A UDP socket that receives and never answers; yields its port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound then released)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """Accepts TCP connections into the kernel's queue and never reads: TLS/HTTP time out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@contextlib.contextmanager
def full_backlog_listener() -> Iterator[int]:
    """A listener whose accept queue is full, so the next SYN is dropped: connect times out."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0) instead of a FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_server(
    handler: Handler, ssl_context: object = None, *, rcvbuf: int | None = None
) -> AsyncIterator[int]:
    """A raw asyncio TCP server on 127.0.0.1; yields its port. ``rcvbuf`` sets the
    accepted connections' receive buffer (small: a slow reader holds the sender back)."""
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            tasks.discard(task)
            writer.transport.abort()

    if rcvbuf is None:
        server = await asyncio.start_server(wrapped, "127.0.0.1", 0, ssl=ssl_context)  # type: ignore[arg-type]
    else:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # inherited on accept
        listener.bind(("127.0.0.1", 0))
        server = await asyncio.start_server(wrapped, sock=listener, ssl=ssl_context)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


def uploads(rate: float = 0.0, status: int = 200, early: bool = False) -> Handler:
    """A server for POST uploads: reads the body at ``rate`` bytes/s (0: at once), then
    answers ``status`` with the count; ``early`` answers before reading any of it."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        length = int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])
        got = 0
        if not early:
            started = asyncio.get_running_loop().time()
            while got < length:
                block = await reader.read(min(8192, length - got))
                if not block:
                    return
                got += len(block)
                if rate:
                    due = started + got / rate
                    await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
        body = f"{got}\n".encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        await asyncio.sleep(0.05)

    return handler


@contextlib.contextmanager
def slow_reader(rate: float, *, burst: int = 0, rcvbuf: int = 16 * 1024) -> Iterator[int]:
    """An upload server that reads the body straight from its socket (no user-space
    buffer in between), the first ``burst`` bytes at once and then at ``rate`` bytes/s,
    with a small receive buffer and an Ethernet-sized MSS: the client's bytes are
    acknowledged as they are read, smoothly, as over a slow path. One connection at a
    time, in a thread; yields the port."""
    import threading
    import time

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1400)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.5)
                got = 0
                started = None
                try:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        head += conn.recv(1024)
                    got = len(head.split(b"\r\n\r\n", 1)[1])
                    while not stop.is_set():
                        block = conn.recv(4096)
                        if not block:
                            break
                        got += len(block)
                        if got > burst:
                            started = started or time.monotonic()
                            time.sleep(max(0.0, started + (got - burst) / rate - time.monotonic()))
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def reset_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read whatever the client sends first (a request, a ClientHello), then reset."""
    await reader.read(1)
    await asyncio.sleep(0.05)
    reset(writer)


async def reset_on_accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    reset(writer)


BLOCK_PAGE = b"<html><body>This site is blocked by order of ...</body></html>"
# An ISP's page served with 200 in the place of the site (windows-1251, as Russian ISPs'
# often are): a title, a refresh and an iframe toward the block host.
ISP_PAGE = (
    "<html><head><meta http-equiv='Refresh' content='5; URL=http://Warning.Example-ISP.ru/?u=1'>"
    "<title>\n  Доступ &amp; ограничен </title></head><body>"
    "<iframe src=\"http://10.10.34.34/?type=Invalid\"></iframe>"
    "<a href=\"https://warning.example-isp.ru/faq\">faq</a> <a href='http://bad_host/'>x</a>"
    "</body></html>"
).encode("cp1251")


def http_app() -> object:
    """An aiohttp app with the paths the http and throughput tests use."""
    from aiohttp import web

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="hello", headers={"Server": "vantage-test", "X-Other": "no"})

    async def blocked(request: web.Request) -> web.Response:
        return web.Response(body=BLOCK_PAGE, status=451, content_type="text/html")

    async def isp(request: web.Request) -> web.Response:
        return web.Response(body=ISP_PAGE, headers={"Content-Type": "text/html; charset=windows-1251"})

    async def redirect(request: web.Request) -> web.Response:
        hops = int(request.match_info["hops"])
        if hops == 0:
            raise web.HTTPFound("/ok")
        raise web.HTTPFound(f"/redirect/{hops - 1}")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def sized(request: web.Request) -> web.StreamResponse:
        size = int(request.match_info["size"])
        chunked = request.query.get("chunked") == "1"
        pause = float(request.query.get("pause", "0"))
        rate = float(request.query.get("rate", "0"))  # bytes/s, 0: as fast as possible
        burst = int(request.query.get("burst", "0"))  # bytes sent at full speed before rate
        response = web.StreamResponse()
        response.content_type = "application/octet-stream"
        if chunked:
            response.enable_chunked_encoding()
        else:
            response.content_length = size
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        block = b"x" * 16384
        sent = 0
        while sent < size:
            piece = block[: min(len(block), size - sent)]
            await response.write(piece)
            sent += len(piece)
            if pause and sent >= size // 2 and sent - len(piece) < size // 2:
                await asyncio.sleep(pause)
            if rate and sent > burst:
                await asyncio.sleep(len(piece) / rate)
        await response.write_eof()
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/blocked", blocked)
    app.router.add_get("/isp", isp)
    app.router.add_get("/redirect/{hops}", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/bytes/{size}", sized)
    app.router.add_get("/slow", slow)
    return app


@contextlib.asynccontextmanager
async def serve_app(app: object, ssl_context: object = None) -> AsyncIterator[int]:
    """An aiohttp app on 127.0.0.1 (HTTPS with ``ssl_context``); yields the port."""
    from aiohttp import web

    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)  # type: ignore[arg-type]
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)  # type: ignore[arg-type]
    await site.start()
    port: int = runner.addresses[0][1]
    try:
        yield port
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def http_server(ssl_context: object = None) -> AsyncIterator[int]:
    """The aiohttp test app on 127.0.0.1 (HTTPS with ``ssl_context``); yields the port."""
    async with serve_app(http_app(), ssl_context) as port:
        yield port
