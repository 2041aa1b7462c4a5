"""The verdict rules as plain functions over plain data (no windows, no state).

Samples arrive here already windowed and grouped by agent: ``{agent_id: [Measurement]}``.
See docs/detection.md for the method, its defaults and its false-positive controls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from coordinator.analysis.model import AnalysisConfig, Measurement
from coordinator.analysis.stats import fisher_greater

ByAgent = Mapping[str, Sequence[Measurement]]

ReachClass = Literal["fails", "works", "mixed", "insufficient"]


# ---------------------------------------------------------------- reachability


@dataclass(frozen=True, kw_only=True, slots=True)
class ReachStats:
    klass: ReachClass
    samples: int
    failures: int
    agents: int
    failure_classes: Counter[str]


def reach_stats(by_agent: ByAgent, cfg: AnalysisConfig) -> ReachStats:
    """Classify one (group, target, kind): fails, works, mixed or insufficient evidence.

    fails: failure ratio >= block_failure_ratio and at least min_agents agents fail on
    most of their own samples; works: success ratio >= works_success_ratio.
    ``target_forbidden`` results are not evidence and are left out.
    """
    samples = 0
    failures = 0
    failing_agents = 0
    agents = 0
    classes: Counter[str] = Counter()
    for ms in by_agent.values():
        evidence = [m for m in ms if m.is_evidence]
        if not evidence:
            continue
        agents += 1
        failed = [m for m in evidence if m.failed]
        samples += len(evidence)
        failures += len(failed)
        classes.update(m.failure_class for m in failed)
        if len(failed) * 2 > len(evidence):
            failing_agents += 1
    klass: ReachClass
    if samples < cfg.min_samples or agents < cfg.min_agents:
        klass = "insufficient"
    elif failures >= cfg.block_failure_ratio * samples and failing_agents >= cfg.min_agents:
        klass = "fails"
    elif samples - failures >= cfg.works_success_ratio * samples:
        klass = "works"
    else:
        klass = "mixed"
    return ReachStats(
        klass=klass, samples=samples, failures=failures, agents=agents, failure_classes=classes
    )


def is_outage(per_group: Mapping[str, ReachStats], cfg: AnalysisConfig) -> bool:
    """The target fails from every group that has enough evidence, and from at least
    outage_min_groups of them (one kind)."""
    decided = [s for s in per_group.values() if s.klass != "insufficient"]
    failing = [s for s in decided if s.klass == "fails"]
    return len(failing) >= cfg.outage_min_groups and len(failing) == len(decided)


def blocked_p_value(
    group: str, per_group: Mapping[str, ReachStats]
) -> tuple[float, list[str]] | None:
    """When ``group`` fails and at least one other group works: the one-sided Fisher p
    of the group's failure rate exceeding the working groups' pooled rate, and their
    names. None when the rule does not apply."""
    mine = per_group.get(group)
    if mine is None or mine.klass != "fails":
        return None
    working = sorted(g for g, s in per_group.items() if g != group and s.klass == "works")
    if not working:
        return None
    ref_total = sum(per_group[g].samples for g in working)
    ref_failed = sum(per_group[g].failures for g in working)
    return fisher_greater(mine.failures, mine.samples, ref_failed, ref_total), working


def dominant_failure(counters: Iterable[Counter[str]]) -> str:
    total: Counter[str] = Counter()
    for c in counters:
        total.update(c)
    if not total:
        return ""
    best = max(total.values())
    return sorted(k for k, v in total.items() if v == best)[0]


# ---------------------------------------------------------------- hysteresis


@dataclass(frozen=True, kw_only=True, slots=True)
class Held:
    """The verdict currently shown for a key, with its hysteresis bookkeeping."""

    state: str
    since: float
    recovering_since: float | None = None
    recovering_count: int = 0


def step(
    prev: Held | None,
    raw: str,
    now: float,
    cfg: AnalysisConfig,
    *,
    bad: frozenset[str],
    recovered: str,
) -> Held:
    """Advance one key's hysteresis by one evaluation.

    Bad states (``bad``) are entered as soon as the raw verdict says so. A bad state is
    left only when the raw verdict has been ``recovered`` on recover_evaluations
    consecutive evaluations spanning at least recover_s; any other raw verdict holds it
    and restarts the count. Other states follow the raw verdict immediately.
    """
    if prev is None:
        return Held(state=raw, since=now)
    if raw in bad:
        if prev.state == raw:
            if prev.recovering_count:
                return Held(state=prev.state, since=prev.since)
            return prev
        return Held(state=raw, since=now)
    if prev.state in bad:
        if raw != recovered:
            if prev.recovering_count:
                return Held(state=prev.state, since=prev.since)
            return prev
        started = prev.recovering_since if prev.recovering_since is not None else now
        count = prev.recovering_count + 1
        if count >= cfg.recover_evaluations and now - started >= cfg.recover_s:
            return Held(state=raw, since=now)
        return Held(
            state=prev.state, since=prev.since, recovering_since=started, recovering_count=count
        )
    if prev.state == raw:
        return prev
    return Held(state=raw, since=now)
