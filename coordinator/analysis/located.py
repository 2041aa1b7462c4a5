"""Where on the path a block sits, as the agents that located it saw it (``locate``).

An agent's ``locate`` data (agent/probes/locate.py) is read defensively: ``at`` must be
one of ``LOCATIONS``, the TTL a small positive integer, the hop an IP address (normalised)
or empty, the ASN a 32-bit number. Anything else and the measurement simply carries no
location: a hostile agent can claim a wrong hop for its own results, never put an
arbitrary string into a metric label.

A blocked verdict carries :func:`where` over the failing measurements it was judged on:
the location most of them report (one vote per agent, its latest located measurement), a
tie going to the nearer TTL.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

LOCATIONS = frozenset({"path", "destination", "unknown"})
MAX_TTL = 255
MAX_ASN = 2**32 - 1
MAX_HOP_CHARS = 45  # the longest textual IPv6 address


@dataclass(frozen=True, slots=True)
class Located:
    at: str  # path, destination or unknown
    ttl: int
    hop: str  # the router at that TTL ("" when not known, and at the destination)
    asn: int  # 0 when not known

    @classmethod
    def of(cls, data: Mapping[str, object]) -> Located | None:
        found = data.get("locate")
        if not isinstance(found, Mapping):
            return None
        at, ttl, hop, asn = found.get("at"), found.get("censor_ttl"), found.get("censor_hop"), found.get("censor_asn")
        if at not in LOCATIONS or isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 < ttl <= MAX_TTL:
            return None
        address = ""
        if isinstance(hop, str) and hop:
            # An address only: no IPv6 scope id ("fe80::1%<anything>" parses, and would carry
            # any string into a label and a terminal).
            if len(hop) > MAX_HOP_CHARS or "%" in hop:
                return None
            try:
                address = str(ipaddress.ip_address(hop))
            except ValueError:
                return None
        number = asn if isinstance(asn, int) and not isinstance(asn, bool) and 0 < asn <= MAX_ASN else 0
        return cls(at=str(at), ttl=ttl, hop=address, asn=number)


def where(votes: Iterable[tuple[str, float, Located]]) -> Located | None:
    """The location most agents report: ``votes`` are (agent, at, location) of failing
    measurements; each agent counts once, with its latest."""
    latest: dict[str, tuple[float, Located]] = {}
    for agent, at, located in votes:
        held = latest.get(agent)
        if held is None or held[0] <= at:
            latest[agent] = (at, located)
    if not latest:
        return None
    counts = Counter(located for _, located in latest.values())
    return min(counts, key=lambda loc: (-counts[loc], loc.ttl, loc.hop))
