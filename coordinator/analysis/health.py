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
- **Run time.** A failure's "around it" starts when its probe started (``at`` less its
  duration), not when it ended: a 60 s download that began while the agent's network was
  down and timed out after it came back is not evidence, since a reference failed while
  it ran.
- **Memory.** The latest observation of each reference key is remembered past the window
  (at most :data:`MEMORY_S`). A key whose latest observation before a probe started
  failed cannot vouch for that probe's failure, however long ago it failed. An agent
  whose remembered latest references all failed, and which has reached none since, stays
  ``unhealthy`` and its failures are not evidence:
  when a region is cut off its agents are their busiest, every slot waiting on a
  timeout, and references stop arriving; the horizon passing without news is not news.
  Only a reference reached clears it. A missed canary (deadline missed, never run) is no
  reference at all: missing evidence, never a success.
- **No reference at all.** An agent with no reference in the window, and none
  remembered, has unknown health; its failures count as they did before canaries existed
  (configure canaries!).
- **Agent health now.** ``unhealthy`` when its resolver is dead over the last H, or when
  it has references in the last H and none of them vouches; ``healthy`` when the latest
  of some key in the last H succeeded after the newest run of failures of the other keys
  began (an older success says nothing against failures going on); ``unknown`` otherwise.
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
from dataclasses import dataclass
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
# How long the latest reference of each key is remembered past the window (the Memory
# rule), and for how many keys of an agent.
MEMORY_S = 3600.0
MAX_REMEMBERED_KEYS = 64


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


@dataclass(slots=True)
class _Memory:
    runs: list[_Ref]  # the first observation of each run of successes or failures
    latest: _Ref


# Runs of one key remembered (the Memory rule).
MAX_RUNS = 16


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
        # per agent: the latest observation of each reference key, kept past the window
        # (the Memory rule)
        # (per key: the first observation of each run of successes or failures, oldest
        # first, and the latest observation; only what fell out of the window)
        self._last: dict[str, dict[tuple[bool, str], _Memory]] = {}

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
                ref = reference_of(canaries.popleft())
                if ref is not None:  # the Memory rule
                    self._remember(agent, ref)
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
        # the Memory rule: what the last index held below the new cutoff is remembered
        for agent, indexed in self._by_key.items():
            for times, obs in indexed.values():
                for r in obs[: bisect_left(times, cutoff)]:
                    self._remember(agent, r)
        # and what is past the memory is forgotten, also for agents gone from the window
        # (an agent that never comes back must not be remembered for ever)
        for agent in list(self._last):
            last = self._last[agent]
            for key in [k for k, m in last.items() if m.latest.at < cutoff - MEMORY_S]:
                del last[key]
            if not last:
                del self._last[agent]
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

    def _remember(self, agent: str, r: _Ref) -> None:
        """Add ``r`` to what is remembered of its key past the window (oldest first)."""
        last = self._last.setdefault(agent, {})
        mem = last.get((r.canary, r.key))
        if mem is None:
            last[(r.canary, r.key)] = _Memory(runs=[r], latest=r)
        elif r.at >= mem.latest.at:
            if r.ok != mem.latest.ok:
                mem.runs.append(r)
                del mem.runs[:-MAX_RUNS]
            mem.latest = r
        if len(last) > MAX_REMEMBERED_KEYS:
            for key in sorted(last, key=lambda k: last[k].latest.at)[: len(last) - MAX_REMEMBERED_KEYS]:
                del last[key]

    def _before(self, agent: str, key: tuple[bool, str], t: float) -> _Ref | None:
        """The key's latest observation before ``t`` from the window, else (for its state:
        the start of the run it was in) from memory."""
        found = self._by_key.get(agent, {}).get(key)
        if found is not None:
            times, obs = found
            j = bisect_left(times, t) - 1
            if j >= 0:
                return obs[j]
        mem = self._last.get(agent, {}).get(key)
        if mem is None:
            return None
        if mem.latest.at < t:
            return mem.latest
        starts = [r.at for r in mem.runs]
        j = bisect_left(starts, t) - 1
        return mem.runs[j] if j >= 0 else None

    def _run_start(self, agent: str, key: tuple[bool, str], i: int) -> float:
        """When the run of failures that ends at the key's observation ``i`` began (in the
        window, else as remembered)."""
        _times, obs = self._by_key[agent][key]
        j = i
        while j > 0 and not obs[j - 1].ok:
            j -= 1
        if j > 0:
            return obs[j].at
        mem = self._last.get(agent, {}).get(key)
        if mem is not None and not mem.latest.ok and mem.runs[-1].at < obs[0].at:
            return mem.runs[-1].at  # the run began before the window
        return obs[j].at

    def remembered_down(self, agent: str, now: float) -> list[_Ref]:
        """The latest observation of each of the agent's reference keys before ``now``,
        when every one failed and is at most MEMORY_S old (the Memory rule); [] when any
        succeeded, or none is known."""
        last = self._last.get(agent)
        if last:
            for key in [k for k, m in last.items() if m.latest.at < now - MEMORY_S]:
                del last[key]  # past the memory
            if not last:
                del self._last[agent]
        keys = set(self._by_key.get(agent, {})) | set(self._last.get(agent, {}))
        latest = [r for key in keys if (r := self._before(agent, key, now + 1e-9)) is not None]
        latest = [r for r in latest if r.at >= now - MEMORY_S]
        if not latest or any(r.ok for r in latest):
            return []
        return latest

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
            # no reference in the window: not evidence if the latest ones remembered all
            # failed (the Memory rule); else health unknown, counted as before
            return not self.remembered_down(m.agent_id, m.at)
        started = m.at - max(0.0, m.duration_s or 0.0)  # the Run time rule
        for key, (times, obs) in keys.items():
            # the Memory rule: a key whose latest observation before the probe started
            # failed was down when it ran, however long ago that observation was
            before = self._before(m.agent_id, key, started)
            if before is not None and not before.ok:
                continue
            for r in obs[bisect_left(times, started - h) :]:
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
        failing_since = float("-inf")  # when the newest run of failures of any key began
        for key, (times, obs) in self._by_key.get(agent, {}).items():
            i = bisect_left(times, now + 1e-9) - 1
            if i >= 0 and obs[i].at >= start:
                latest.append(obs[i])
                if not obs[i].ok:
                    failing_since = max(failing_since, self._run_start(agent, key, i))
        # A success vouches only when it is newer than the failures going on: a control
        # reached 25 s ago says nothing against the canaries failing since 20 s ago (the
        # region cut off at once), while a canary blocked for hours does not silence an
        # agent whose other key keeps succeeding.
        vouching = [r for r in latest if r.ok and r.at > failing_since]
        if vouching:
            reached = sorted(r.name for r in vouching)
            return AgentHealth(
                agent_id=agent, group=group, state="healthy", reason=f"reaches {_few(reached)}"
            )
        if latest:
            failed = sorted(f"{r.name} ({r.failure})" for r in latest if not r.ok)
            return AgentHealth(
                agent_id=agent, group=group, state="unhealthy",
                reason=f"reached no canary or control since {now - failing_since:.0f} s ago: {_few(failed)}",
            )  # fmt: skip
        down = self.remembered_down(agent, now)
        if down:
            last = max(r.at for r in down)
            failed = sorted(f"{r.name} ({r.failure})" for r in down)
            return AgentHealth(
                agent_id=agent, group=group, state="unhealthy",
                reason=f"its latest references failed, the last {now - last:.0f} s ago, and none "
                f"was reached since: {_few(failed)}",
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
