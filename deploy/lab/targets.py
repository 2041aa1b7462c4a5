"""One lab target: an HTTP and an HTTPS listener on one address, run inside the lab's target namespace.

    python -m deploy.lab.targets --name twitter --address 198.18.0.10 --root DIR \
        [--cert CHAIN.pem --key KEY.pem] [--pace-file FILE]
        [--sni-pace-file FILE]

Serves ``/`` (a small index page naming the target), ``/big.bin`` (the large file the
lab wrote into ``--root``) and ``POST /upload`` (reads and discards the body, for
``throughput -o direction=upload``) on port 80, and on 443 when a certificate is given.

``--pace-file`` makes the target slow for everyone, at the target side, as an overloaded
origin or CDN is: the file holds a rate in bytes/s, and while it does, ``/big.bin`` is
written at that rate (small chunks, paced by the server's own clock) to every client.
An empty or missing file serves at full speed. The file is re-read when it changes.

``--sni-pace-file`` emulates a DPI box that throttles by the TLS server name (the 2021
throttle keyed on ``*.twimg.com``, not on addresses; the kernel here has no DPI, so the
target server does it): each line is ``NAME RATE CIDR...``, and an HTTPS connection
whose ClientHello named NAME, from a peer in one of the networks, gets ``/big.bin`` at
RATE bytes/s. Every target process of the lab reads the same file, so the name is slow
toward any address, as on a path through the DPI box. Re-read when it changes.

``--block-page`` makes this process the lab ISP's block-page server instead of a target:
every GET, whatever its path and Host, gets the ISP's "access restricted" page with
status 200 (``BLOCK_PAGE``), as a transparent proxy's injected page is. The lab sends a
region's connections to a target here with an nft DNAT on the core (``Lab.break_target
(..., how="block_page")``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import os
import signal
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


T = TypeVar("T")


class WatchedFile(Generic[T]):
    """A control file the lab rewrites while the target runs: ``value()`` parses it again
    only when its mtime changes; a missing (or absent) file gives ``empty``."""

    def __init__(self, path: Path | None, parse: Callable[[str], T], empty: T) -> None:
        self._path = path
        self._parse = parse
        self._empty = empty
        self._mtime: float | None = None
        self._value = empty

    def value(self) -> T:
        if self._path is None:
            return self._empty
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            self._value, self._mtime = self._empty, None
            return self._empty
        if mtime != self._mtime:
            self._value = self._parse(self._path.read_text())
            self._mtime = mtime
        return self._value


SniPaces = dict[str, tuple[int, list[Network]]]


def _sni_paces(text: str) -> SniPaces:
    out: SniPaces = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            out[parts[0].lower()] = (int(parts[1]), [ipaddress.ip_network(x, strict=False) for x in parts[2:]])
    return out


def sni_pace_file(path: Path | None) -> WatchedFile[SniPaces]:
    """Server names throttled for some client networks: ``NAME RATE CIDR...`` a line."""
    return WatchedFile(path, _sni_paces, {})


def remember_sni(ssl_object: object, server_name: str | None, _context: ssl.SSLContext) -> None:
    """The server context's SNI callback: keep the name the client sent on its session."""
    ssl_object.lab_sni = server_name or ""  # type: ignore[attr-defined]


def _sni_rate(request: web.Request, paces: WatchedFile[SniPaces] | None) -> int | None:
    """The rate an SNI rule sets for this request's connection, if one does."""
    if paces is None or request.transport is None:
        return None
    rules = paces.value()
    if not rules:
        return None
    ssl_object = request.transport.get_extra_info("ssl_object")
    rule = rules.get(getattr(ssl_object, "lab_sni", ""))
    peer = request.transport.get_extra_info("peername")
    if rule is None or not peer:
        return None
    addr = ipaddress.ip_address(peer[0])
    return rule[0] if any(addr in net for net in rule[1]) else None


def pace_file(path: Path | None) -> WatchedFile[int | None]:
    """The rate (bytes/s) to serve /big.bin at, or None (empty file): full speed."""
    return WatchedFile(path, lambda text: int(text) if text.strip() else None, None)


# Paced writes: about 20 chunks a second, so the rate is even over any 4-s download.
PACE_CHUNKS_PER_S = 20


@functools.cache
def _body(path: Path) -> bytes:
    return path.read_bytes()  # once per process: the lab's file does not change


async def _paced(request: web.Request, path: Path, rate: int) -> web.StreamResponse:
    body = _body(path)
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = len(body)
    await response.prepare(request)
    chunk = max(256, rate // PACE_CHUNKS_PER_S)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for sent in range(0, len(body), chunk):
        try:
            await response.write(body[sent : sent + chunk])
        except ConnectionError:
            return response  # the client stopped at its max_seconds or max_bytes
        # sleep until the moment the bytes written so far are due at the rate
        due = started + min(len(body), sent + chunk) / rate
        await asyncio.sleep(max(0.0, due - loop.time()))
    await response.write_eof()
    return response


# The lab ISP's page: a title of its own, a link to its block host, 542 bytes (the
# sites' pages in the lab are under 100), as Russian ISPs' pages under RKN orders read.
BLOCK_PAGE = (
    "<!doctype html><html><head><meta charset=\"utf-8\">"
    "<title>Доступ ограничен</title></head><body>"
    "<h1>Доступ к ресурсу ограничен</h1>"  # noqa: RUF001 (Russian, as the page is)
    "<p>Доступ к запрашиваемому ресурсу ограничен по решению органов государственной власти."  # noqa: RUF001
    " Access to the requested resource is restricted by order of the authorities.</p>"
    "<p>Подробнее: <a href=\"http://warning.lab-isp.example/reestr\">реестр</a>.</p>"
    "<p>Lab ISP, vantage lab.</p></body></html>\n"
)


def build_block_page_app() -> web.Application:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=BLOCK_PAGE, content_type="text/html", charset="utf-8")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return app


def build_app(
    name: str,
    root: Path,
    pace: WatchedFile[int | None] | None = None,
    sni_paces: WatchedFile[SniPaces] | None = None,
) -> web.Application:
    async def index(request: web.Request) -> web.Response:
        return web.Response(
            text=f"<!doctype html><title>{name}</title><h1>{name}</h1><p>vantage lab target</p>\n",
            content_type="text/html",
        )

    async def big(request: web.Request) -> web.StreamResponse:
        rate = _sni_rate(request, sni_paces) or (pace.value() if pace is not None else None)
        if rate:
            return await _paced(request, root / "big.bin", rate)
        return web.FileResponse(root / "big.bin")

    async def upload(request: web.Request) -> web.Response:
        """Reads and discards the body, then says how many bytes came."""
        got = 0
        async for block in request.content.iter_any():
            got += len(block)
        return web.Response(text=f"{got}\n", content_type="text/plain")

    # No body limit: aiohttp's client_max_size applies to read(), not to streaming.
    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/big.bin", big)
    app.router.add_post("/upload", upload)
    return app


async def serve(args: argparse.Namespace) -> None:
    pace = pace_file(Path(args.pace_file) if args.pace_file else None)
    sni_paces = sni_pace_file(Path(args.sni_pace_file) if args.sni_pace_file else None)
    # A short shutdown: an upload whose client went away behind a shaper that dropped its
    # reset would otherwise hold the exit for aiohttp's default 60 s.
    app = build_block_page_app() if args.block_page else build_app(args.name, Path(args.root), pace, sni_paces)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    await web.TCPSite(runner, args.address, args.http_port).start()
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.sni_callback = remember_sni
        await web.TCPSite(runner, args.address, args.https_port, ssl_context=ctx).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"target {args.name} serving on {args.address} (pid {os.getpid()})", flush=True)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.lab.targets")
    parser.add_argument("--name", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--root", required=True, help="directory holding big.bin")
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--pace-file", help="a file holding a rate in bytes/s: serve that slowly")
    parser.add_argument("--sni-pace-file",
                        help="lines NAME RATE CIDR...: HTTPS under that server name from those networks is slow")
    parser.add_argument("--block-page", action="store_true",
                        help="serve the lab ISP's block page (status 200) on every path instead")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
