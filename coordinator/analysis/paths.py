"""Path health per (group, target): ping loss and RTT, and the latest traceroute.

ping and traceroute are evidence about the network on the way, not about whether a
service is censored: an ICMP echo filtered by the target's own firewall, or a trace that
never gets an answer from the last hop, is normal on the internet. So they do not feed
the verdict windows (a target that only ever had ping jobs gets no verdict), with one
exception: a traceroute that dies at the agent's own first hop is evidence that the
agent's network is down (``beyond_first_hop``, agent health's Paths rule).
They feed these figures, which the metrics export per region and target
(``vantage_ping_loss_ratio``, ``vantage_ping_rtt_seconds``, ``vantage_traceroute_hops``
...), read in the same window as the verdicts (``AnalysisConfig.window_s``).

Bounded like the analyzer: at most ``max_targets`` targets and ``max_groups`` groups
(more are counted in ``dropped``), and at most ``MAX_SAMPLES`` ping results per (group,
target). Every value is read defensively from an agent's data: a field of the wrong type
or out of range makes the sample count as dropped, never an exception.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from coordinator.analysis.model import AnalysisConfig

PATH_KINDS = frozenset({"ping", "traceroute"})
# How a trace that ran ends on its own without reaching the target (agent/probes/traceroute.py).
DIED = frozenset({"gap_limit", "unreachable"})
MAX_SAMPLES = 256
MAX_RTT_S = 600.0


@dataclass(frozen=True, slots=True)
class PingSample:
    at: float
    sent: int
    received: int
    rtt_min_s: float | None
    rtt_avg_s: float | None
    rtt_max_s: float | None
    jitter_s: float | None


@dataclass(frozen=True, slots=True)
class TraceSample:
    at: float
    reached: bool
    hop_count: int
    last_address: str  # the last hop that answered ("" when none did)


@dataclass(frozen=True, slots=True)
class PingFigures:
    group: str
    target: str
    samples: int
    sent: int
    loss: float
    rtt_min_s: float | None
    rtt_avg_s: float | None
    rtt_max_s: float | None
    jitter_s: float | None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        return None
    return value


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_RTT_S:
        return None
    return float(value)


def ping_sample(at: float, data: Mapping[str, object]) -> PingSample | None:
    """A ping result's figures, or None when they do not hold together."""
    sent, received = _count(data.get("sent")), _count(data.get("received"))
    if sent is None or received is None or received > sent or sent == 0:
        return None
    return PingSample(
        at, sent, received, _seconds(data.get("rtt_min_s")), _seconds(data.get("rtt_avg_s")),
        _seconds(data.get("rtt_max_s")), _seconds(data.get("jitter_s")),
    )  # fmt: skip


def trace_sample(at: float, data: Mapping[str, object]) -> TraceSample | None:
    hops = data.get("hops")
    count = _count(data.get("hop_count"))
    if not isinstance(hops, list) or count is None:
        return None
    last = ""
    for hop in reversed(hops):
        address = hop.get("address") if isinstance(hop, Mapping) else None
        if isinstance(address, str) and address:
            last = address[:64]
            break
    return TraceSample(at, data.get("reached") is True, count, last)


def beyond_first_hop(data: Mapping[str, object]) -> bool | None:
    """Whether a trace got past the agent's own first hop: True when it reached the target
    or a router at TTL 2 or more answered; False when it started at TTL 1 and ended on its
    own (silent hops past the gap limit, or an unreachable) with nothing past TTL 1; None
    when it says nothing of the kind: it never sent a probe (the name did not resolve, the
    target policy refused it), started past TTL 1, stopped at its max_hops or its timeout,
    or its data does not hold together. Agent health's Paths rule reads it
    (coordinator/analysis/health.py): an agent whose traces all die at the first hop is
    down."""
    hops = data.get("hops")
    if not isinstance(hops, list) or not hops:
        return None
    if data.get("reached") is True:
        return True
    first = hops[0]
    first_ttl = first.get("ttl") if isinstance(first, Mapping) else None
    if isinstance(first_ttl, bool) or first_ttl != 1:
        return None
    for hop in hops:
        if not isinstance(hop, Mapping):
            continue
        ttl, address = hop.get("ttl"), hop.get("address")
        if isinstance(ttl, int) and not isinstance(ttl, bool) and ttl >= 2 and isinstance(address, str) and address:
            return True
    return False if data.get("stopped") in DIED else None


class PathStats:
    def __init__(self, config: AnalysisConfig) -> None:
        self.config = config
        self._pings: dict[tuple[str, str], deque[PingSample]] = {}
        self._traces: dict[tuple[str, str], TraceSample] = {}
        self._targets: set[str] = set()
        self._groups: set[str] = set()
        self.dropped = 0

    def _admit(self, group: str, target: str) -> bool:
        if target not in self._targets and len(self._targets) >= self.config.max_targets:
            return False
        if group not in self._groups and len(self._groups) >= self.config.max_groups:
            return False
        self._targets.add(target)
        self._groups.add(group)
        return True

    def add(self, group: str, target: str, kind: str, at: float, data: Mapping[str, object]) -> bool:
        """Take one ping or traceroute result; False (and counted) when it was not usable."""
        sample: PingSample | TraceSample | None
        sample = ping_sample(at, data) if kind == "ping" else trace_sample(at, data) if kind == "traceroute" else None
        if sample is None or not self._admit(group, target):
            self.dropped += 1
            return False
        key = (group, target)
        if isinstance(sample, PingSample):
            samples = self._pings.get(key)
            if samples is None:
                samples = self._pings[key] = deque(maxlen=MAX_SAMPLES)
            samples.append(sample)
        else:
            held = self._traces.get(key)
            if held is None or held.at <= sample.at:
                self._traces[key] = sample
        return True

    def prune(self, cutoff: float) -> None:
        """Forget what has left the window (everything before ``cutoff``), keys and all, so
        the target and group bounds count what is live, not what was ever seen."""
        for key in list(self._pings):
            samples = self._pings[key]
            while samples and samples[0].at < cutoff:
                samples.popleft()
            if not samples or all(s.at < cutoff for s in samples):
                del self._pings[key]
        for key in [k for k, t in self._traces.items() if t.at < cutoff]:
            del self._traces[key]
        live = set(self._pings) | set(self._traces)
        self._targets = {t for _, t in live}
        self._groups = {g for g, _ in live}

    def pings(self, now: float) -> Iterator[PingFigures]:
        """Loss and RTT per (group, target) over the window ending at ``now``."""
        since = now - self.config.window_s
        for (group, target), samples in sorted(self._pings.items()):
            recent = [s for s in samples if s.at >= since]
            if not recent:
                continue
            sent = sum(s.sent for s in recent)
            received = sum(s.received for s in recent)
            mins = [s.rtt_min_s for s in recent if s.rtt_min_s is not None]
            maxes = [s.rtt_max_s for s in recent if s.rtt_max_s is not None]
            weighted = [(s.rtt_avg_s, s.received) for s in recent if s.rtt_avg_s is not None and s.received]
            jitters = [s.jitter_s for s in recent if s.jitter_s is not None]
            weight = sum(n for _, n in weighted)
            yield PingFigures(
                group=group, target=target, samples=len(recent), sent=sent, loss=1 - received / sent,
                rtt_min_s=min(mins) if mins else None,
                rtt_avg_s=sum(a * n for a, n in weighted) / weight if weight else None,
                rtt_max_s=max(maxes) if maxes else None,
                jitter_s=sum(jitters) / len(jitters) if jitters else None,
            )  # fmt: skip

    def traces(self, now: float) -> Iterator[tuple[str, str, TraceSample]]:
        """The latest traceroute per (group, target), when it is in the window."""
        since = now - self.config.window_s
        for (group, target), sample in sorted(self._traces.items()):
            if sample.at >= since:
                yield group, target, sample
