"""One lab target: an HTTP and an HTTPS listener on one address, run inside the core namespace.

    python -m deploy.lab.targets --name twitter --address 198.18.0.10 --root DIR \
        [--cert CHAIN.pem --key KEY.pem] [--reset-file FILE]

Serves ``/`` (a small index page naming the target) and ``/big.bin`` (the large file the
lab wrote into ``--root``) on port 80, and on 443 when a certificate is given.

``--reset-file`` emulates a DPI middlebox that resets connections (the 2021 TSPU sent
resets after seeing a forbidden name): the file lists client networks, one CIDR a line;
a request from such a peer gets its TCP connection aborted with a RST (SO_LINGER 0)
instead of a response. The file is re-read when it changes. The lab uses it for
``break_target(..., how="reset")`` because this kernel has no iptables, nftables or tc
gact action to reset in the network itself.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ResetList:
    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._mtime: float | None = None
        self._nets: list[Network] = []

    def networks(self) -> list[Network]:
        if self._path is None:
            return []
        try:
            mtime = self._path.stat().st_mtime
        except FileNotFoundError:
            self._nets, self._mtime = [], None
            return []
        if mtime != self._mtime:
            lines = self._path.read_text().split()
            self._nets = [ipaddress.ip_network(x, strict=False) for x in lines if x]
            self._mtime = mtime
        return self._nets


def build_app(name: str, root: Path, resets: ResetList) -> web.Application:
    @web.middleware
    async def reset_middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer and resets.networks():
            addr = ipaddress.ip_address(peer[0])
            if any(addr in net for net in resets.networks()):
                sock = request.transport.get_extra_info("socket") if request.transport else None
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                if request.transport is not None:
                    request.transport.abort()
                raise asyncio.CancelledError  # aiohttp ends the handler without a response
        return await handler(request)

    async def index(request: web.Request) -> web.Response:
        return web.Response(
            text=f"<!doctype html><title>{name}</title><h1>{name}</h1><p>vantage lab target</p>\n",
            content_type="text/html",
        )

    async def big(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / "big.bin")

    app = web.Application(middlewares=[reset_middleware])
    app.router.add_get("/", index)
    app.router.add_get("/big.bin", big)
    return app


async def serve(args: argparse.Namespace) -> None:
    resets = ResetList(Path(args.reset_file) if args.reset_file else None)
    runner = web.AppRunner(build_app(args.name, Path(args.root), resets), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.address, args.http_port).start()
    if args.cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
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
    parser.add_argument("--reset-file")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
