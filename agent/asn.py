"""The agent's offline IP-to-ASN table, for traceroute hops (``--asn-file``).

A text file, one prefix per line: ``PREFIX ASN`` (whitespace between), where PREFIX is
an IPv4 or IPv6 network in CIDR notation and ASN a number, optionally written
``AS64500``; ``#`` starts a comment. This is the shape ``pyasn_util_convert.py`` writes
from a RouteViews dump and that most IP-to-ASN exports reduce to with one ``awk``. The
agent never asks the network who owns an address: the operator ships the file, so a
probe reveals nothing beyond the trace itself.

The longest matching prefix wins. A malformed line is an error naming the file and the
line (the agent refuses to start rather than silently dropping part of the table).

Memory: a Python dict entry per prefix, about 200 bytes each: a full routing table
(~1.2 million prefixes) costs the agent some 250 MB, so on a small VPS ship the prefixes
of the networks it will trace rather than the whole table.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

MAX_LINES = 5_000_000  # a full routing table is about 1.2 million prefixes
MAX_ASN = 2**32 - 1


class AsnFileError(ValueError):
    pass


class AsnTable:
    """Longest-prefix lookups: per family and prefix length, network -> ASN."""

    def __init__(self) -> None:
        self._by_len: dict[int, dict[int, dict[int, int]]] = {4: {}, 6: {}}
        self.size = 0

    def add(self, prefix: str, asn: int) -> None:
        net = ipaddress.ip_network(prefix, strict=False)
        table = self._by_len[net.version].setdefault(net.prefixlen, {})
        table[int(net.network_address)] = asn
        self.size += 1

    def lookup(self, address: str) -> int | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        bits = 32 if ip.version == 4 else 128
        value = int(ip)
        tables = self._by_len[ip.version]
        for length in sorted(tables, reverse=True):
            mask = ((1 << length) - 1) << (bits - length) if length else 0
            asn = tables[length].get(value & mask)
            if asn is not None:
                return asn
        return None


def load(path: Path) -> AsnTable:
    table = AsnTable()
    try:
        handle = path.open(encoding="utf-8", errors="strict")
    except OSError as exc:
        raise AsnFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        try:
            for number, line in enumerate(handle, 1):
                if number > MAX_LINES:
                    raise AsnFileError(f"{path}: more than {MAX_LINES} lines")
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                parts = text.split()
                if len(parts) != 2:
                    raise AsnFileError(f"{path}:{number}: expected 'PREFIX ASN', got {text[:80]!r}")
                prefix, raw = parts
                raw = raw.upper().removeprefix("AS")
                if not (raw.isascii() and raw.isdigit() and len(raw) <= 10) or not 0 < int(raw) <= MAX_ASN:
                    raise AsnFileError(f"{path}:{number}: {parts[1][:40]!r} is not an AS number")
                try:
                    table.add(prefix, int(raw))
                except ValueError:
                    raise AsnFileError(f"{path}:{number}: {prefix[:60]!r} is not an IP prefix") from None
        except UnicodeDecodeError:
            raise AsnFileError(f"{path}: not UTF-8 text") from None
    return table
