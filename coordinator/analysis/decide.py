"""Pure pieces of each evaluation: a (group, target)'s raw verdict before hysteresis,
success ratios, and the words of a held verdict. ``analyzer.py`` keeps the state."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from coordinator.analysis import rules
from coordinator.analysis.model import (
    AGENT_ERRORS,
    VERDICTS,
    AnalysisConfig,
    Measurement,
    RegionHealth,
    RegionVerdict,
    SuccessRatio,
    Verdict,
)
from coordinator.analysis.rules import Held, ReachStats
from coordinator.analysis.throttle import ThroughputJudgement
from coordinator.analysis.throughput import Spread, settle


@dataclass(frozen=True, kw_only=True, slots=True)
class Raw:
    verdict: Verdict
    reason: str
    failure: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class DirectionState:
    """One direction's (downloads' or uploads') throughput judgements of a target over
    its groups, its spread, and the target's held degraded state for that direction
    (``note`` says why it is held while the raw spread is not degraded)."""

    judged: dict[str, tuple[ThroughputJudgement, float]]
    spread: Spread
    held: Held
    note: str
    # each group's 95% interval of its window median (stats.median_interval)
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)

    def interval(self, group: str) -> tuple[float | None, float | None]:
        low_high = self.intervals.get(group)
        return (None, None) if low_high is None else low_high

    @property
    def degraded(self) -> bool:
        return self.held.state == "degraded"

    @property
    def degraded_reason(self) -> str:
        if self.degraded and self.spread.kind != "degraded":
            return self.note + (f" (now {self.spread.reason})" if self.spread.reason else "")
        return self.spread.reason

    def settled(self, group: str) -> tuple[ThroughputJudgement | None, float | None]:
        """The group's final judgement (``throughput.settle``) and window median."""
        found = self.judged.get(group)
        if found is None:
            return None, None
        judgement, group_median = found
        return settle(group, judgement, self.spread, self.degraded, self.note), group_median


def degraded_fields(down: DirectionState, up: DirectionState | None) -> dict[str, Any]:
    """TargetVerdict's degraded, degraded_since and degraded_reason over both directions
    (an upload's reason says "upload:")."""
    states = [(down, "")] + ([(up, "upload: ")] if up is not None else [])
    degraded = [(d, tag) for d, tag in states if d.degraded]
    reasons = [f"{tag}{d.degraded_reason}" for d, tag in states if d.degraded_reason]
    return {
        "degraded": bool(degraded),
        "degraded_since": min((d.held.since for d, _ in degraded), default=down.held.since),
        "degraded_reason": "; ".join(reasons),
    }


_RANK = {"throttled": 3, "degraded": 2, "inconclusive": 1, "ok": 0}
_SLOW = ("throttled", "degraded")


def combine_directions(
    down: ThroughputJudgement | None, up: ThroughputJudgement | None
) -> tuple[ThroughputJudgement | None, str]:
    """One throughput judgement of a (group, target) out of its download's and its
    upload's, and the directions a slow one is about. The worse status wins (throttled,
    then degraded, inconclusive, ok); the reason names the upload's part. Without uploads
    the download's judgement is returned as it is."""
    if up is None:
        return down, "download" if down is not None and down.status in _SLOW else ""
    if down is None:
        return replace(up, reason=f"upload: {up.reason}"), "upload" if up.status in _SLOW else ""
    if down.status == up.status:
        both = replace(down, reason=f"download: {down.reason}; upload: {up.reason}")
        return both, "download,upload" if down.status in _SLOW else ""
    if _RANK[up.status] > _RANK[down.status]:
        worse = replace(up, reason=f"upload: {up.reason}; download {down.status}")
        return worse, "upload" if up.status in _SLOW else ""
    worse = replace(down, reason=f"download: {down.reason}; upload {up.status}")
    return worse, "download" if down.status in _SLOW else ""


def slow_everywhere(
    down: DirectionState,
    down_j: ThroughputJudgement | None,
    up: DirectionState | None,
    up_j: ThroughputJudgement | None,
) -> bool:
    """A held throttle of the group is dropped at once when the target turns degraded in
    the direction it is about (and the other direction is not throttled here)."""
    up_throttled = up_j is not None and up_j.status == "throttled"
    down_throttled = down_j is not None and down_j.status == "throttled"
    if down.degraded and not up_throttled:
        return True
    return up is not None and up.degraded and not down_throttled


def as_verdict(state: str) -> Verdict:
    for verdict in VERDICTS:
        if verdict == state:
            return verdict
    raise AssertionError(f"not a verdict: {state!r}")


def samples(kinds: dict[str, dict[str, list[Measurement]]]) -> list[Measurement]:
    """Every measurement of one (group, target) in the window, all kinds and agents."""
    return [m for by_agent in kinds.values() for ms in by_agent.values() for m in ms]


def recovery(held: Held, now: float, cfg: AnalysisConfig) -> str:
    if held.recovering_since is None:
        return "not recovering"
    return (
        f"recovering for {held.recovering_count} evaluations / {now - held.recovering_since:.0f} s "
        f"(needs {cfg.recover_evaluations} and {cfg.recover_s:.0f} s)"
    )


def success_ratios(
    target: str, groups: dict[str, dict[str, dict[str, list[Measurement]]]], out: list[SuccessRatio]
) -> int:
    """Append the success ratio of each (group, kind) of ``target`` over everything its
    agents ran (agent errors aside) to ``out``; returns how many samples were looked at."""
    seen = 0
    for group, kinds in sorted(groups.items()):
        for kind, by_agent in sorted(kinds.items()):
            all_samples = [m for ms in by_agent.values() for m in ms]
            seen += len(all_samples)
            ran = [m for m in all_samples if m.failure not in AGENT_ERRORS]
            if not ran:
                continue
            good = sum(1 for m in ran if m.failure is None and not m.block_page and not m.dns_manipulation)
            out.append(SuccessRatio(group=group, target=target, kind=kind, ratio=good / len(ran), samples=len(ran)))
    return seen


def unreachable(
    group: str, target: str, kinds: dict[str, dict[str, list[Measurement]]], region: RegionHealth
) -> RegionVerdict:
    """The verdict of a target in a region that is down: no verdict on the target."""
    ms = samples(kinds)
    return RegionVerdict(
        group=group, target=target, verdict="unreachable", failure="", throughput_bps=None,
        ratio=None, samples=len(ms), agents=len({m.agent_id for m in ms}), since=region.since,
        reason=region.reason,
    )  # fmt: skip


def raw_verdict(
    group: str,
    reach: dict[str, dict[str, ReachStats]],
    tput: ThroughputJudgement | None,
    outage: bool,
    cfg: AnalysisConfig,
) -> Raw:
    """This evaluation's verdict for (group, target), before hysteresis: blocked by a
    significant failure against groups where it works, then the throughput judgement,
    then what the evidence allows."""
    blocked: list[tuple[str, float, list[str]]] = []
    if not outage:
        for kind, per_group in sorted(reach.items()):
            found = rules.blocked_p_value(group, per_group)
            if found is not None and found[0] <= cfg.alpha:
                blocked.append((kind, found[0], found[1]))
    if blocked:
        failure = rules.dominant_failure(reach[k][group].failure_classes for k, _, _ in blocked)
        parts = []
        for kind, p, working in blocked:
            s = reach[kind][group]
            parts.append(
                f"{kind} failed {s.failures}/{s.samples} from {s.agents} agents, works from "
                f"{','.join(working)}, p={p:.2g}"
            )
        return Raw(verdict="blocked", reason=f"{failure}: {'; '.join(parts)}", failure=failure)
    if tput is not None and tput.status in ("throttled", "degraded"):
        return Raw(verdict=tput.status, reason=tput.reason)
    if outage:
        return Raw(
            verdict="inconclusive",
            reason="target outage: it fails from every group, so a regional block is not observable",
        )
    mine = {kind: per_group[group] for kind, per_group in reach.items() if group in per_group}
    troubled = sorted(k for k, s in mine.items() if s.klass in ("fails", "mixed"))
    if troubled:
        parts = []
        for kind in troubled:
            s = mine[kind]
            dominant = rules.dominant_failure([s.failure_classes])
            if s.klass == "fails":
                found = rules.blocked_p_value(group, reach[kind])
                why = (
                    f"not significant (p={found[0]:.2g})"
                    if found is not None
                    else "no group where it works to compare"
                )
            else:
                why = "mixed results"
            parts.append(f"{kind} failed {s.failures}/{s.samples} ({dominant}), {why}")
        return Raw(verdict="inconclusive", reason="; ".join(parts))
    if tput is not None:
        return Raw(verdict=tput.status, reason=tput.reason)
    works = sorted(k for k, s in mine.items() if s.klass == "works")
    if works:
        detail = ", ".join(
            f"{k} {mine[k].samples - mine[k].failures}/{mine[k].samples} ok" for k in works
        )
        return Raw(verdict="ok", reason=f"works: {detail}")
    total = sum(s.samples for s in mine.values())
    agents = max((s.agents for s in mine.values()), default=0)
    return Raw(
        verdict="inconclusive",
        reason=(
            f"too little evidence: {total} samples, at most {agents} agents per kind "
            f"(need {cfg.min_samples} from {cfg.min_agents})"
        ),
    )
