"""The stateful part of the analysis core: sliding windows of measurements and the
hysteresis of verdicts. ``add`` is O(1); ``evaluate`` does the work.

Not thread-safe for add/evaluate (call both from the coordinator's event loop);
``snapshot`` returns an immutable object and may be read from any thread.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from urllib.parse import urlsplit

import structlog

from coordinator.analysis import (
    blockpage,
    decide,
    dnslie,
    health,
    located,
    rules,
    throughput,
    trigger,
)
from coordinator.analysis.model import (
    DNS_MANIPULATION,
    UPLOAD_SERIES,
    AgentHealth,
    AnalysisConfig,
    Measurement,
    RegionHealth,
    RegionVerdict,
    Snapshot,
    SuccessRatio,
    TargetVerdict,
)
from coordinator.analysis.paths import PathStats
from coordinator.analysis.rules import Held, ReachStats

log = structlog.get_logger("vantage.analysis")

_REGION_BAD = frozenset({"throttled", "blocked"})

# (group, target, kind) -> agent_id -> the agent's most recent measurements.
SeriesKey = tuple[str, str, str]
# target -> group -> kind -> agent_id -> measurements in the window.
View = dict[str, dict[str, dict[str, dict[str, list[Measurement]]]]]


class Analyzer:
    """Sliding windows per (group, target, kind) and the verdicts decided over them."""

    def __init__(self, config: AnalysisConfig | None = None) -> None:
        self.config = config or AnalysisConfig()
        self._series: dict[SeriesKey, dict[str, deque[Measurement]]] = {}
        self._targets: set[str] = set()
        self._groups: set[str] = set()
        self._region_held: dict[tuple[str, str], Held] = {}
        self._region_failure: dict[tuple[str, str], str] = {}
        self._target_held: dict[str, Held] = {}
        self._degraded_held: dict[str, Held] = {}
        self._degraded_up_held: dict[str, Held] = {}  # the same for uploads
        self._unreachable_held: dict[str, Held] = {}
        self.health = health.HealthLog(self.config)
        # ping and traceroute: path figures beside the verdicts, never in their windows.
        self.paths = PathStats(self.config)
        self.dropped_targets = 0
        self.dropped_groups = 0
        self.added = 0
        self._snapshot = Snapshot(evaluated_at=0.0)
        # Targets whose evaluation raised (``evaluate``), since start.
        self.evaluation_errors = 0
        # Who brought each target in (an API token's name) and when it was last measured:
        # the fair eviction of ``add``.
        self._owners: dict[str, str] = {}
        self._last_added: dict[str, float] = {}
        self.evicted_targets = 0

    # ------------------------------------------------------------------ ingest

    def add(self, m: Measurement, owner: str = "") -> None:
        """Take one measurement into its window. Measurements of a target (group) beyond
        the cap are counted in ``dropped_targets`` (``dropped_groups``) and ignored,
        unless the target's ``owner`` (the API token whose job measured it) holds less
        than its fair share of the cap: then a target of the owner holding the most makes
        room (``_make_room``), so one submitter's junk cannot starve another's targets.
        Canary measurements feed only agent health (``health.HealthLog``)."""
        if (
            m.role != "canary"
            and m.target not in self._targets
            and len(self._targets) >= self.config.max_targets
            and not self._make_room(owner)
        ):
            self.dropped_targets += 1
            return
        if m.group not in self._groups and len(self._groups) >= self.config.max_groups:
            self.dropped_groups += 1
            return
        if m.role == "canary":
            self._groups.add(m.group)
            self.health.add(m)
            self.added += 1
            return
        if m.target not in self._targets:
            self._owners[m.target] = owner
        self._targets.add(m.target)
        self._last_added[m.target] = m.at
        self._groups.add(m.group)
        key = (m.group, m.target, m.series)
        agents = self._series.get(key)
        if agents is None:
            agents = self._series[key] = {}
        window = agents.get(m.agent_id)
        if window is None:
            window = agents[m.agent_id] = deque(maxlen=self.config.max_samples_per_agent)
        window.append(m)
        self.added += 1

    def _make_room(self, owner: str) -> bool:
        """Evict one target to make room for a new one of ``owner``, when ``owner`` holds
        fewer targets than its fair share (the cap over the owners holding targets, itself
        included): the least recently measured target of the owner that holds the most.
        False when ``owner`` has its share already (the new target is dropped)."""
        held: dict[str, int] = {}
        for target in self._targets:
            o = self._owners.get(target, "")
            held[o] = held.get(o, 0) + 1
        share = self.config.max_targets // len(set(held) | {owner})
        if held.get(owner, 0) >= share:
            return False
        biggest = max(held, key=lambda o: (held[o], o))
        if biggest == owner:
            return False
        victim = min(
            (t for t in self._targets if self._owners.get(t, "") == biggest),
            key=lambda t: (self._last_added.get(t, 0.0), t),
        )
        for key in [k for k in self._series if k[1] == victim]:
            del self._series[key]
        self._targets.discard(victim)
        self._owners.pop(victim, None)
        self._last_added.pop(victim, None)
        self.evicted_targets += 1
        return True

    @property
    def snapshot(self) -> Snapshot:
        """The last evaluation's result (cheap: no computation)."""
        return self._snapshot

    # ------------------------------------------------------------------ evaluate

    def _prune(self, cutoff: float) -> View:
        view: View = {}
        for key in list(self._series):
            agents = self._series[key]
            for agent_id in list(agents):
                window = agents[agent_id]
                while window and window[0].at < cutoff:
                    window.popleft()
                if any(m.at < cutoff for m in window):  # arrived out of order
                    kept = [m for m in window if m.at >= cutoff]
                    window.clear()
                    window.extend(kept)
                if not window:
                    del agents[agent_id]
            if not agents:
                del self._series[key]
                continue
            group, target, kind = key
            view.setdefault(target, {}).setdefault(group, {})[kind] = {
                a: list(w) for a, w in agents.items()
            }
        self._targets = set(view)
        for target in [t for t in self._owners if t not in self._targets]:
            del self._owners[target]
            self._last_added.pop(target, None)
        self._groups = {g for groups in view.values() for g in groups}
        self.health.prepare(
            cutoff, (w for agents in self._series.values() for w in agents.values())
        )
        return view

    def _witnessed(self, view: View) -> View:
        """The view with the failures that are not evidence about their target left out:
        those of an agent not seen reaching the outside world around them
        (``health.HealthLog.is_witness``)."""
        out: View = {}
        for target, groups in view.items():
            for group, kinds in groups.items():
                for kind, by_agent in kinds.items():
                    kept = by_agent
                    for agent, ms in by_agent.items():
                        if any(m.failed for m in ms):
                            if kept is by_agent:
                                kept = dict(by_agent)  # copy only what changes
                            kept[agent] = [
                                m for m in ms if not m.failed or self.health.is_witness(m)
                            ]
                    out.setdefault(target, {}).setdefault(group, {})[kind] = kept
        return out

    def _region_health(self, agents: list[AgentHealth], now: float) -> dict[str, RegionHealth]:
        """Each group's reach, held like the other bad states (entered at once, left
        after sustained recovery)."""
        out: dict[str, RegionHealth] = {}
        for group, raw in health.region_states(agents).items():
            held = self._hold(self._unreachable_held, group, "unreachable", not raw.reachable, now)
            down = held.state == "unreachable"
            reason = raw.reason
            if down and raw.reachable:
                reason = f"held; {decide.recovery(held, now, self.config)} (now {reason})"
            out[group] = replace(raw, reachable=not down, since=held.since, reason=reason)
        for group in [g for g in self._unreachable_held if g not in out]:
            del self._unreachable_held[group]
        return out

    def evaluate(self, now: float) -> Snapshot:
        """Decide every verdict over the window ending at ``now`` and advance the
        hysteresis by one step. Call once per evaluation tick."""
        cfg = self.config
        raw_view = self._prune(now - cfg.window_s)
        self.paths.prune(now - cfg.window_s)
        for groups in raw_view.values():
            blockpage.mark(groups)  # a 200 carrying another page than most groups see
            dnslie.mark(groups)  # answers no other group got, with no valid TLS for the name
        agent_health = self.health.agents(now)
        self._groups.update(a.group for a in agent_health)
        region_health = self._region_health(agent_health, now)
        down = {g for g, r in region_health.items() if not r.reachable}
        witnessed = self._witnessed(raw_view)

        regions: list[RegionVerdict] = []
        targets: list[TargetVerdict] = []
        success: list[SuccessRatio] = []
        in_window = 0
        live_keys: set[tuple[str, str]] = set()

        for target in sorted(raw_view):
            # One target's failure (a bug, or a value no rule foresaw) must not stop the
            # others' verdicts: its rows of the last snapshot stand, its held states are
            # kept, and the error is counted (``evaluation_errors``) and logged.
            marks = (len(regions), len(targets), len(success))
            try:
                in_window += self._judge_target(
                    target, raw_view, witnessed, down, region_health, now,
                    regions, targets, success, live_keys,
                )  # fmt: skip
            except Exception:
                del regions[marks[0]:], targets[marks[1]:], success[marks[2]:]
                self.evaluation_errors += 1
                log.exception("evaluation_failed", target=target[:256])
                live_keys.update(k for k in self._region_held if k[1] == target)
                last = self._snapshot
                regions.extend(r for r in last.regions if r.target == target)
                targets.extend(t for t in last.targets if t.target == target)
                success.extend(r for r in last.success if r.target == target)

        for key in [k for k in self._region_held if k not in live_keys]:
            del self._region_held[key]
            self._region_failure.pop(key, None)
        for by_target in (self._target_held, self._degraded_held, self._degraded_up_held):
            for target in [t for t in by_target if t not in raw_view]:
                del by_target[target]

        regions = _dns_triggered(regions)
        regions.sort(key=lambda r: (r.target, r.group))
        self._snapshot = Snapshot(
            evaluated_at=now,
            regions=tuple(regions),
            agents=tuple(agent_health),
            region_health=tuple(region_health[g] for g in sorted(region_health)),
            targets=tuple(targets),
            success=tuple(success),
            dropped_targets=self.dropped_targets,
            dropped_groups=self.dropped_groups,
            measurements=in_window,
        )
        return self._snapshot

    # ------------------------------------------------------------------ rules glue

    def _judge_target(
        self, target: str, raw_view: View, witnessed: View, down: set[str],
        region_health: dict[str, RegionHealth], now: float, regions: list[RegionVerdict],
        targets: list[TargetVerdict], success: list[SuccessRatio], live_keys: set[tuple[str, str]],
    ) -> int:  # fmt: skip
        """The verdicts of one target, appended to ``regions``, ``targets`` and
        ``success``; returns how many of its measurements are in the window."""
        cfg = self.config
        # success ratios over everything measured (agent errors aside); verdicts over
        # the witnessed failures of reachable groups only
        in_window = decide.success_ratios(target, raw_view[target], success)
        groups = {g: k for g, k in witnessed[target].items() if g not in down}
        for group in sorted(g for g in witnessed[target] if g in down):
            key = (group, target)
            live_keys.add(key)
            region = region_health[group]
            # a region that is down: no verdict about the target either way, and what
            # was held before (a block, say) does not outlive it
            self._region_held[key] = rules.Held(state="unreachable", since=region.since)
            regions.append(decide.unreachable(group, target, raw_view[target][group], region))
        reach: dict[str, dict[str, ReachStats]] = {}
        for group in sorted(groups):
            for kind, by_agent in sorted(groups[group].items()):
                reach.setdefault(kind, {})[group] = rules.reach_stats(by_agent, cfg)

        outage_kinds = sorted(
            k for k, per_group in reach.items() if rules.is_outage(per_group, cfg)
        )
        raw_outage = bool(outage_kinds)
        held_target = self._hold(self._target_held, target, "outage", raw_outage, now)
        outage = held_target.state == "outage"
        if raw_outage:
            failing = sorted(reach[outage_kinds[0]])
            target_reason = (
                f"{'/'.join(outage_kinds)} fails from every group ({', '.join(failing)})"
            )
        elif outage:
            target_reason = f"held; {decide.recovery(held_target, now, cfg)}"
        else:
            target_reason = ""
        downloads = self._direction(groups, target, "throughput", self._degraded_held, now)
        uploads = None
        if (
            any(UPLOAD_SERIES in kinds for kinds in groups.values())
            or target in self._degraded_up_held
        ):
            uploads = self._direction(groups, target, UPLOAD_SERIES, self._degraded_up_held, now)
        targets.append(
            TargetVerdict(
                target=target,
                outage=outage,
                since=held_target.since,
                reason=target_reason,
                **decide.degraded_fields(downloads, uploads),
            )
        )

        for group in sorted(groups):
            key = (group, target)
            live_keys.add(key)
            down_j, tput_median = downloads.settled(group)
            up_j, up_median = uploads.settled(group) if uploads is not None else (None, None)
            judgement, direction = decide.combine_directions(down_j, up_j)
            raw = decide.raw_verdict(group, reach, judgement, outage, cfg)
            if raw.verdict == "blocked":
                self._region_failure[key] = raw.failure
            prev = self._region_held.get(key)
            if outage and prev is not None and prev.state == "blocked":
                prev = None  # an outage is not a regional block: drop it at once
            if (
                prev is not None
                and prev.state == "throttled"
                and decide.slow_everywhere(downloads, down_j, uploads, up_j)
            ):
                prev = None  # nor is a target slow from everywhere a regional throttle
            held = rules.step(prev, raw.verdict, now, cfg, bad=_REGION_BAD, recovered="ok")
            self._region_held[key] = held
            verdict = decide.as_verdict(held.state)
            if verdict == raw.verdict:
                reason = raw.reason
            else:
                reason = (
                    f"held {verdict} (now {raw.verdict}: {raw.reason}); "
                    f"{decide.recovery(held, now, cfg)}"
                )
            samples = decide.samples(raw_view[target][group])
            failure = self._region_failure.get(key, "") if verdict == "blocked" else ""
            regions.append(
                RegionVerdict(
                    group=group, target=target, verdict=verdict, failure=failure,
                    trigger=_trigger(groups[group], failure, direction if verdict == "throttled" else "")
                    if verdict in _REGION_BAD else "",
                    throughput_bps=tput_median,
                    throughput_low_bps=downloads.interval(group)[0],
                    throughput_high_bps=downloads.interval(group)[1],
                    ratio=down_j.ratio if down_j is not None else None,
                    upload_bps=up_median,
                    upload_low_bps=uploads.interval(group)[0] if uploads is not None else None,
                    upload_high_bps=uploads.interval(group)[1] if uploads is not None else None,
                    upload_ratio=up_j.ratio if up_j is not None else None,
                    direction=direction if verdict in ("throttled", "degraded") else "",
                    samples=len(samples), agents=len({m.agent_id for m in samples}),
                    since=held.since, reason=reason,
                    located=_located(samples) if verdict == "blocked" else None,
                )
            )
        return in_window


    def _direction(
        self, groups: dict[str, dict[str, dict[str, list[Measurement]]]], target: str, series: str, held: dict[str, Held], now: float,
    ) -> decide.DirectionState:  # fmt: skip
        """One direction's throughput judgements over the groups and the target's held
        degraded state for it."""
        judged, spread, intervals = throughput.judge_groups(groups, self.config, series)
        held_degraded = self._hold(held, target, "degraded", spread.kind == "degraded", now)
        return decide.DirectionState(
            judged=judged, spread=spread, held=held_degraded, intervals=intervals,
            note=f"held; {decide.recovery(held_degraded, now, self.config)}",
        )  # fmt: skip

    def _hold(self, held: dict[str, Held], target: str, state: str, raw: bool, now: float) -> Held:
        """Advance a target- or group-level state (outage, degraded, unreachable) by one
        evaluation: ``state`` when ``raw`` says so, left only after sustained recovery
        (``rules.step``)."""
        new = rules.step(held.get(target), state if raw else "none", now, self.config,
                         bad=frozenset({state}), recovered="none")  # fmt: skip
        held[target] = new
        return new


def _trigger(kinds: dict[str, dict[str, list[Measurement]]], failure: str, direction: str) -> str:
    """What a throttled or blocked (group, target) keys on (``trigger``): DNS when the
    block is a DNS failure or lie, else what the trigger checks of the measurements it was
    judged on vote (the witnessed ones; of a throttle, those of its direction)."""
    if failure == DNS_MANIPULATION or failure.startswith("dns_"):
        return "dns"
    if direction:  # a throttle: "download", "upload" or both
        series = {"download": "throughput", "upload": UPLOAD_SERIES}
        kinds = {k: v for k, v in kinds.items() if k in {series[d] for d in direction.split(",") if d in series}}
    votes: dict[str, list[trigger.Trigger | None]] = {}
    for by_agent in kinds.values():
        for agent, ms in by_agent.items():
            votes.setdefault(agent, []).extend(
                trigger.vote(m.trigger_checks, failure=m.failure, failed=m.failed,
                             bps=m.throughput_bps, dns_manipulation=m.dns_manipulation)
                for m in ms
            )  # fmt: skip
    return trigger.decide(votes)


def _located(samples: list[Measurement]) -> located.Located | None:
    """Where a blocked (group, target)'s block sits, by its failing located measurements."""
    return located.where((m.agent_id, m.at, m.located) for m in samples if m.failed and m.located is not None)


def _host(target: str) -> str:
    """The name a target is about: a URL's host, a ``host:port``'s host, or the name."""
    if "://" in target:
        try:
            return (urlsplit(target).hostname or "").lower()
        except ValueError:
            return ""
    if target.startswith("["):
        return ""  # an IPv6 address: not a name DNS could lie about
    return target.rsplit(":", 1)[0].lower() if target.count(":") == 1 else target.lower()


def _dns_triggered(regions: list[RegionVerdict]) -> list[RegionVerdict]:
    """Throttled or blocked verdicts on a URL or ``host:port`` whose name is blocked by DNS
    in the same group (a dns target blocked with a DNS failure or lie) say ``dns``: the
    lie sent the fetch elsewhere, whatever its checks say."""
    lied = {(r.group, r.target.lower()) for r in regions if r.verdict == "blocked" and r.trigger == "dns"}
    if not lied:
        return regions
    return [
        replace(r, trigger="dns")
        if r.verdict in _REGION_BAD and r.trigger != "dns" and (r.group, _host(r.target)) in lied
        else r
        for r in regions
    ]
