"""The lab's resolvers, run inside the core namespace: an ISP's that can lie, and an honest
one over TLS.

    python -m deploy.lab.resolver --zone news.lab=198.18.0.10,... --plain 198.19.0.3 \
        --tls 198.19.1.4 --cert CHAIN.pem --key KEY.pem --lie-file FILE

- ``--plain ADDRESS``: plain DNS (UDP and TCP, port 53): the region's own resolver, the one
  an agent's network gives it. For a client in a network that ``--lie-file`` lists, it
  answers the listed name with the listed address instead: the lie a censor's resolver
  tells (the file has lines ``CIDR NAME ADDRESS`` and is re-read when it changes).
- ``--tls ADDRESS``: DNS over TLS (port 853) with the lab's certificate: a resolver the
  operator runs outside the region, which the region's network cannot rewrite. It never
  lies.

The zone: each ``--zone`` name has one A record; other names are NXDOMAIN; AAAA and other
types of a known name are empty answers.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import ipaddress
import os
import signal
import ssl
import struct
from pathlib import Path

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

from deploy.lab.targets import Network, WatchedFile

Lie = tuple[Network, str, str]  # client network, name, address


def lie_file(path: Path | None) -> WatchedFile[list[Lie]]:
    def parse(text: str) -> list[Lie]:
        out: list[Lie] = []
        for line in text.splitlines():
            if line.strip():
                net, name, address = line.split()
                out.append((ipaddress.ip_network(net, strict=False), name.lower().rstrip("."), address))
        return out

    return WatchedFile(path, parse, [])


def answer(query: dns.message.Message, zone: dict[str, str], client: str | None,
           lies: WatchedFile[list[Lie]] | None) -> dns.message.Message:  # fmt: skip
    response = dns.message.make_response(query)
    if not query.question:
        response.set_rcode(dns.rcode.FORMERR)
        return response
    question = query.question[0]
    name = question.name.to_text(omit_final_dot=True).lower()
    address = zone.get(name)
    if lies is not None and client is not None:
        peer = ipaddress.ip_address(client)
        for net, lied, to in lies.value():
            if lied == name and peer in net:
                address = to
    if address is None:
        response.set_rcode(dns.rcode.NXDOMAIN)
    elif question.rdtype == dns.rdatatype.A:
        response.answer.append(dns.rrset.from_text(f"{name}.", 60, "IN", "A", address))
    return response


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, zone: dict[str, str], lies: WatchedFile[list[Lie]]) -> None:
        self.zone, self.lies = zone, lies

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            query = dns.message.from_wire(data)
        except Exception:
            return
        self.transport.sendto(answer(query, self.zone, addr[0], self.lies).to_wire(), addr)


async def _stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                  zone: dict[str, str], lies: WatchedFile[list[Lie]] | None) -> None:  # fmt: skip
    peer = writer.get_extra_info("peername")
    try:
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            query = dns.message.from_wire(await reader.readexactly(length))
            wire = answer(query, zone, peer[0] if peer else None, lies).to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, dns.exception.DNSException):
        pass
    finally:
        writer.close()


async def serve(args: argparse.Namespace) -> None:
    zone = dict(item.split("=", 1) for item in args.zone.split(",") if item)
    lies = lie_file(Path(args.lie_file) if args.lie_file else None)
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(lambda: _UDP(zone, lies), local_addr=(args.plain, 53))
    plain = await asyncio.start_server(functools.partial(_stream, zone=zone, lies=lies), args.plain, 53)
    servers = [plain]
    if args.tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        servers.append(await asyncio.start_server(
            functools.partial(_stream, zone=zone, lies=None), args.tls, 853, ssl=ctx))  # fmt: skip
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"resolver on {args.plain}:53, DoT on {args.tls}:853 (pid {os.getpid()})", flush=True)
    await stop.wait()
    udp.close()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.lab.resolver")
    parser.add_argument("--zone", required=True, help="name=address,... (one A record each)")
    parser.add_argument("--plain", required=True, help="address of the plain resolver (port 53)")
    parser.add_argument("--tls", help="address of the DoT resolver (port 853)")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--lie-file", help="lines CIDR NAME ADDRESS: lie to those clients")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
