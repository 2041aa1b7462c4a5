"""Agent and region health: is a failure evidence about the target, or about the agent?

Agents sit on small VPS hosts whose own networks go down, whose resolvers die. Before a
failure may count against a target, the agent must be seen reaching the outside world
around it. What shows that is a **reference**: a canary (the coordinator's own light
probe of the operator's ``--canary`` URLs, role "canary") or the control of a
throughput job (the second URL the same agent downloads right after the target). Each
canary target and each job's control is one reference *key*.

The rules (``H`` is ``AnalysisConfig.health_horizon_s``, 30 s by default):

- **Witness.** A failure at time t measured by agent a counts as evidence about its target
  only if some reference key of a was reached *after* it, at s in [t, t + H], and that
  key did not fail between t - H and s. So the failures of an agent whose network just
  went down never count (nothing is reached after them), nor do those just before it
  came back (the key failed shortly before). A throughput result carries its own
  control, measured right after it: s = t. One blocked canary does not silence an
  agent as long as another key vouches.
- **Resolver.** A resolver-class failure (``RESOLVER_FAILURES``: EAI_AGAIN, timeout,
  SERVFAIL, REFUSED; not NXDOMAIN, the censor's usual lie) does not count when, within
  H either side of it, every measurement of the agent failed that way, on at least 2
  different targets: the agent's resolver is dead, it is not a witness of DNS blocking.
- **No reference at all.** An agent with no reference in the window has unknown health;
  its failures count as they did before canaries existed (configure canaries!).
- **Agent health now.** ``unhealthy`` when its resolver is dead over the last H, or when
  it has references in the last H and the latest of each key failed; ``healthy`` when
  the latest of some key in the last H succeeded; ``unknown`` otherwise.
- **Paths.** An agent with no reference in the last H whose latest traceroute to every
  target it traced there died at its own first hop (``paths.beyond_first_hop``: no router
  past TTL 1 answered and the target did not) is ``unhealthy``: its network is down.
  Traces are not references: one that gets through neither makes an agent healthy nor
  changes which failures count (an occasional trace must not silence the agent's
  failures for want of a later one), and a reference reached outweighs them.
- **Region health.** A group is ``unreachable`` when it has agents and every one is
  unhealthy (unknown agents keep it reachable: no evidence is not bad evidence). The
  analyzer holds it with the usual hysteresis, turns all of the group's verdicts into
  ``unreachable`` (never blocked) and leaves the group out of every cross-group
  comparison (outage, blocking, degraded): a region that is down counts neither way.

Nothing here reads a clock: the caller passes the times.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from coordinator.analysis.model import (
    NOT_EVIDENCE,
    RESOLVER_FAILURES,
    AgentHealth,
    AnalysisConfig,
    Measurement,
    RegionHealth,
)

# Per agent, at most this many observations of each trace are kept (the window prunes
# them first; this bounds an agent that floods results).
MAX_TRACE = 2048
# Per agent, the latest traceroute of at most this many targets is kept.
MAX_TRACED_TARGETS = 256


class _Ref(NamedTuple):
    """One reference observation (a tuple: one is built per paired throughput sample at
    every evaluation). ``key`` is the canary's "kind URL" or the test target whose
    control it is."""

    at: float
    key: str
    ok: bool
    failure: str
    canary: bool

    @property
    def name(self) -> str:
        return f"canary {self.key}" if self.canary else f"control of {self.key}"


# (at, target, failed at the resolver): one per evidence measurement, so a plain tuple
# (a frozen dataclass made Analyzer.add three times slower)
_Name = tuple[float, str, bool]


def reference_of(m: Measurement) -> _Ref | None:
    """The reference observation a measurement carries, if any: a canary's own outcome,
    or a throughput job's control. Outcomes that are not evidence (agent errors,
    ``target_forbidden``) say nothing about the agent's reach."""
    if m.role == "canary":
        if not m.is_evidence:
            return None
        return _Ref(m.at, f"{m.kind} {m.target}", not m.failed, m.failure_class, True)
    if m.control_bps is not None:
        return _Ref(m.at, m.target, True, "", False)
    if m.control_failure is not None and m.control_failure not in NOT_EVIDENCE:
        return _Ref(m.at, m.target, False, m.control_failure, False)
    return None


class HealthLog:
    """What the analysis knows of each agent's reach: its reference observations and,
    for the resolver rule, which of its measurements failed at the resolver.

    Canary measurements are kept here (``add``), bounded by the window and by
    ``MAX_TRACE`` per agent. Everything else is read from the analyzer's windows at
    each evaluation (``prepare``), so ingesting a test measurement costs nothing extra.
    """

    def __init__(self, config: AnalysisConfig) -> None:
        self.config = config
        self._canaries: dict[str, deque[Measurement]] = {}
        self._group: dict[str, str] = {}
        # built by prepare(): per agent, per key, the observations sorted by time
        self._by_key: dict[str, dict[tuple[bool, str], tuple[list[float], list[_Ref]]]] = {}
        self._sorted_names: dict[str, tuple[list[float], list[_Name]]] = {}
        # per agent: target -> (at, got past the first hop, group) of its latest traceroute
        self._traces: dict[str, dict[str, tuple[float, bool, str]]] = {}

    def add_trace(self, agent: str, group: str, target: str, at: float, beyond_first_hop: bool) -> None:
        """Keep an agent's latest traceroute to ``target`` (the Paths rule)."""
        traces = self._traces.setdefault(agent, {})
        held = traces.get(target)
        if held is None and len(traces) >= MAX_TRACED_TARGETS:
            del traces[min(traces, key=lambda t: traces[t][0])]
        if held is None or held[0] <= at:
            traces[target] = (at, beyond_first_hop, group)

    def _path_dead(self, agent: str, start: float, now: float) -> int:
        """How many targets the agent traced in [start, now], when every one of those
        traces died at its first hop; 0 otherwise (none traced, or one got through)."""
        recent = [beyond for at, beyond, _ in self._traces.get(agent, {}).values() if start <= at <= now]
        return len(recent) if recent and not any(recent) else 0

    def add(self, m: Measurement) -> None:
        """Keep one canary measurement (role "canary"; test measurements are read from
        the analyzer's windows instead)."""
        if m.role != "canary":
            raise ValueError(f"HealthLog.add: takes canary measurements, got role {m.role!r}")
        canaries = self._canaries.get(m.agent_id)
        if canaries is None:
            canaries = self._canaries[m.agent_id] = deque(maxlen=MAX_TRACE)
        canaries.append(m)

    def prepare(self, cutoff: float, windows: Iterable[Sequence[Measurement]] = ()) -> None:
        """Index this evaluation's evidence: the canaries at or after ``cutoff`` and the
        test measurements in ``windows`` (each a sequence of one agent's samples, as the
        analyzer keeps them). Runs once per evaluation over everything in the window, so
        it allocates only for what the rules read: references, and the resolver trace
        of agents that had a resolver failure at all."""
        by_agent: dict[str, list[Measurement]] = {}
        for agent in list(self._canaries):
            canaries = self._canaries[agent]
            while canaries and canaries[0].at < cutoff:
                canaries.popleft()
            kept = [m for m in canaries if m.at >= cutoff]  # out-of-order arrivals
            if len(kept) != len(canaries):
                canaries.clear()
                canaries.extend(kept)
            if not canaries:
                del self._canaries[agent]
                continue
            by_agent[agent] = list(canaries)
        for window in windows:
            if window:
                agent = window[0].agent_id
                found = by_agent.get(agent)
                if found is None:
                    by_agent[agent] = list(window)
                else:
                    found.extend(window)
        self._group = {}
        self._by_key = {}
        self._sorted_names = {}
        for agent in list(self._traces):
            traces = {t: v for t, v in self._traces[agent].items() if v[0] >= cutoff}
            if traces:
                self._traces[agent] = traces
                self._group[agent] = max(traces.values())[2]
            else:
                del self._traces[agent]
        for agent, ms in by_agent.items():
            latest = ms[0]
            refs: list[_Ref] = []
            resolver_failed = False
            for m in ms:
                if m.at >= latest.at:
                    latest = m
                if m.role == "canary" or m.control_bps is not None or m.control_failure is not None:
                    ref = reference_of(m)
                    if ref is not None:
                        refs.append(ref)
                if m.failure in RESOLVER_FAILURES:
                    resolver_failed = True
            self._group[agent] = latest.group
            if refs:
                refs.sort(key=lambda r: r.at)
                keys: dict[tuple[bool, str], tuple[list[float], list[_Ref]]] = {}
                for r in refs:
                    times, obs = keys.setdefault((r.canary, r.key), ([], []))
                    times.append(r.at)
                    obs.append(r)
                self._by_key[agent] = keys
            if resolver_failed:
                trace = sorted(
                    (m.at, m.target, m.failure in RESOLVER_FAILURES) for m in ms if m.is_evidence
                )
                self._sorted_names[agent] = ([n[0] for n in trace], trace)

    # ------------------------------------------------------------------ witnesses

    def resolver_dead(self, agent: str, start: float, end: float) -> bool:
        """Every measurement of ``agent`` in [start, end] failed at the resolver, and they
        name at least 2 targets."""
        found = self._sorted_names.get(agent)
        if found is None:
            return False  # no resolver failure at all in the window
        times, names = found
        targets: set[str] = set()
        for at, target, resolver_failed in names[bisect_left(times, start) :]:
            if at > end:
                break
            if not resolver_failed:
                return False
            targets.add(target)
        return len(targets) >= 2

    def is_witness(self, m: Measurement) -> bool:
        """Whether the failed test measurement ``m`` counts as evidence about its target
        (module docstring). Successes always count; call this for failures only."""
        h = self.config.health_horizon_s
        if m.failure in RESOLVER_FAILURES and self.resolver_dead(m.agent_id, m.at - h, m.at + h):
            return False
        keys = self._by_key.get(m.agent_id)
        if not keys:
            return True  # no reference at all: health unknown, counted as before
        for times, obs in keys.values():
            for r in obs[bisect_left(times, m.at - h) :]:
                if r.at > m.at + h or not r.ok:
                    break  # the key failed around it (or was not reached in time)
                if r.at >= m.at:
                    return True
        return False

    # ------------------------------------------------------------------ now

    def agents(self, now: float) -> list[AgentHealth]:
        """Each agent's health over the last H (module docstring), sorted by id."""
        h = self.config.health_horizon_s
        out = []
        for agent in sorted(self._group):
            out.append(self._agent_now(agent, now - h, now))
        return out

    def _agent_now(self, agent: str, start: float, now: float) -> AgentHealth:
        group = self._group[agent]
        h = self.config.health_horizon_s
        if self.resolver_dead(agent, start, now):
            times, names = self._sorted_names[agent]
            n = len({x[1] for x in names[bisect_left(times, start) :] if x[0] <= now})
            return AgentHealth(
                agent_id=agent, group=group, state="unhealthy",
                reason=f"its resolver fails for every name ({n} targets in the last {h:.0f} s)",
            )  # fmt: skip
        latest: list[_Ref] = []
        for times, obs in self._by_key.get(agent, {}).values():
            i = bisect_left(times, now + 1e-9) - 1
            if i >= 0 and obs[i].at >= start:
                latest.append(obs[i])
        if any(r.ok for r in latest):
            reached = sorted(r.name for r in latest if r.ok)
            return AgentHealth(
                agent_id=agent, group=group, state="healthy", reason=f"reaches {_few(reached)}"
            )
        if latest:
            failed = sorted(f"{r.name} ({r.failure})" for r in latest)
            return AgentHealth(
                agent_id=agent, group=group, state="unhealthy",
                reason=f"reached no canary or control in the last {h:.0f} s: {_few(failed)}",
            )  # fmt: skip
        dead = self._path_dead(agent, start, now)
        if dead:
            return AgentHealth(
                agent_id=agent, group=group, state="unhealthy",
                reason=f"its traceroutes die at its own first hop ({dead} targets in the last {h:.0f} s)",
            )  # fmt: skip
        if self._by_key.get(agent):
            why = f"no canary or control measured in the last {h:.0f} s"
        else:
            why = "no canary or control measured (see --canary)"
        return AgentHealth(agent_id=agent, group=group, state="unknown", reason=why)


def region_states(agents: Iterable[AgentHealth]) -> dict[str, RegionHealth]:
    """Each group's raw health (``since`` is left 0: the analyzer's hysteresis sets it).
    Unreachable when every agent of the group is unhealthy."""
    by_group: dict[str, list[AgentHealth]] = {}
    for a in agents:
        by_group.setdefault(a.group, []).append(a)
    out = {}
    for group, members in sorted(by_group.items()):
        healthy = sum(1 for a in members if a.state == "healthy")
        unhealthy = sum(1 for a in members if a.state == "unhealthy")
        reachable = unhealthy < len(members)
        if reachable:
            reason = f"{healthy} of {len(members)} agents healthy, {unhealthy} unhealthy"
        else:
            reason = (
                "region unreachable: no agent reaches a canary or control ("
                + "; ".join(f"{a.agent_id}: {a.reason}" for a in members[:5])
                + (f"; and {len(members) - 5} more" if len(members) > 5 else "")
                + ")"
            )
        out[group] = RegionHealth(
            group=group, reachable=reachable, since=0.0, reason=reason,
            agents=len(members), healthy=healthy, unhealthy=unhealthy,
        )  # fmt: skip
    return out


def _few(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"
