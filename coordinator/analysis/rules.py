"""The verdict rules as plain functions over plain data (no windows, no state).

Samples arrive here already windowed and grouped by agent: ``{agent_id: [Measurement]}``.
See docs/detection.md for the method, its defaults and its false-positive controls.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from coordinator.analysis.model import AnalysisConfig, Measurement
from coordinator.analysis.stats import fisher_greater, mann_whitney_less, median, paired_t_less

ByAgent = Mapping[str, Sequence[Measurement]]

# A zero test throughput is taken as this ratio for the log (bytes/s are never that exact).
_MIN_RATIO = 1e-6

ThroughputStatus = Literal["throttled", "ok", "inconclusive", "degraded"]
ReachClass = Literal["fails", "works", "mixed", "insufficient"]


def _fmt_bps(value: float) -> str:
    for unit, scale in (("MB/s", 1e6), ("kB/s", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.3g} B/s"


# ---------------------------------------------------------------- throughput


@dataclass(frozen=True, kw_only=True, slots=True)
class ThroughputJudgement:
    status: ThroughputStatus
    reason: str
    ratio: float | None = None
    p_value: float | None = None
    # True when the control could not decide for lack of paired samples (the only case
    # where the cross-group fallback may decide).
    too_little_control: bool = False


def throughput_samples(by_agent: ByAgent) -> dict[str, list[Measurement]]:
    """Successful throughput measurements with a value, per agent."""
    out: dict[str, list[Measurement]] = {}
    for agent, samples in by_agent.items():
        kept = [
            m
            for m in samples
            if m.kind == "throughput" and not m.failed and m.throughput_bps is not None
        ]
        if kept:
            out[agent] = kept
    return out


def paired_samples(by_agent: Mapping[str, Sequence[Measurement]]) -> dict[str, list[Measurement]]:
    """Throughput measurements that carry a usable same-agent control, per agent."""
    out: dict[str, list[Measurement]] = {}
    for agent, samples in by_agent.items():
        kept = [
            m
            for m in samples
            if m.throughput_bps is not None and m.control_bps is not None and m.control_bps > 0
        ]
        if kept:
            out[agent] = kept
    return out


def sample_ratio(m: Measurement) -> float:
    """test / control of one paired sample (see ``paired_samples``)."""
    assert m.throughput_bps is not None and m.control_bps is not None
    return m.throughput_bps / m.control_bps


def judge_against_control(
    paired: Mapping[str, Sequence[Measurement]], cfg: AnalysisConfig
) -> ThroughputJudgement:
    """Throttling decided by the control the same agents measured right after the test.

    Each paired sample gives r = test / control; the link noise both measurements share
    cancels in r. Each agent's own median r is its vote. throttled when all hold:
      * effect: the median over the agents of their median r <= throttle_ratio (each
        agent counts once, however many samples it sent);
      * significance: one-sided paired t-test on log r (H1: the target is slower than
        the control), p <= alpha;
      * agreement: at least min_agents agents, and at least agent_quorum of them, have
        their own median r <= throttle_ratio (one odd agent, or one agent's transient
        dips, cannot make a verdict).
    ok when there is enough evidence, the effect is absent and fewer than agent_quorum
    of the agents look throttled; inconclusive otherwise.
    """
    samples = [m for ms in paired.values() for m in ms]
    n, agents = len(samples), len(paired)
    if n < cfg.min_samples or agents < cfg.min_agents:
        return ThroughputJudgement(
            status="inconclusive",
            reason=(
                f"too little evidence: {n} paired samples from {agents} agents "
                f"(need {cfg.min_samples} from {cfg.min_agents})"
            ),
            too_little_control=True,
        )
    ratios = [sample_ratio(m) for m in samples]
    agent_ratios = [median([sample_ratio(m) for m in ms]) for ms in paired.values()]
    ratio = median(agent_ratios)
    test_median = median([m.throughput_bps for m in samples if m.throughput_bps is not None])
    control_median = median([m.control_bps for m in samples if m.control_bps is not None])
    slow_agents = sum(1 for r in agent_ratios if r <= cfg.throttle_ratio)
    p = paired_t_less([math.log(max(r, _MIN_RATIO)) for r in ratios])
    quorum = cfg.agent_quorum * agents
    detail = (
        f"median {_fmt_bps(test_median)} vs same-agent control {_fmt_bps(control_median)}, "
        f"ratio {ratio:.3g}, p={p:.2g}, {slow_agents}/{agents} agents slow, {n} samples"
    )
    if (
        ratio <= cfg.throttle_ratio
        and p <= cfg.alpha
        and slow_agents >= cfg.min_agents
        and slow_agents >= quorum
    ):
        return ThroughputJudgement(status="throttled", reason=detail, ratio=ratio, p_value=p)
    if ratio > cfg.throttle_ratio and slow_agents < quorum:
        return ThroughputJudgement(status="ok", reason=detail, ratio=ratio, p_value=p)
    why = []
    if ratio <= cfg.throttle_ratio and p > cfg.alpha:
        why.append(f"not significant (alpha {cfg.alpha})")
    if slow_agents < cfg.min_agents or slow_agents < quorum or ratio > cfg.throttle_ratio:
        why.append("agents disagree")
    return ThroughputJudgement(
        status="inconclusive",
        reason=f"{', '.join(why) or 'mixed evidence'}: {detail}",
        ratio=ratio,
        p_value=p,
    )


def names(groups: Sequence[str], limit: int = 5) -> str:
    shown = ",".join(groups[:limit])
    return shown if len(groups) <= limit else f"{shown} and {len(groups) - limit} more"


@dataclass(frozen=True, kw_only=True, slots=True)
class Reference:
    """The same target measured from the clean groups (those whose own control says
    ok): pooled throughputs, their median and the groups' names."""

    values: tuple[float, ...]
    median: float | None
    groups: tuple[str, ...]

    @classmethod
    def of(cls, values: Sequence[float], groups: Sequence[str]) -> Reference:
        return cls(
            values=tuple(values),
            median=median(values) if values else None,
            groups=tuple(groups),
        )

    def usable(self, cfg: AnalysisConfig) -> bool:
        return len(self.values) >= cfg.min_samples and self.median is not None and self.median > 0


def judge_against_groups(
    tests_by_agent: Mapping[str, Sequence[Measurement]],
    reference: Reference,
    cfg: AnalysisConfig,
) -> ThroughputJudgement:
    """Fallback when the group measured no control: compare with the same target measured
    from clean groups. Stricter effect threshold (cross_throttle_ratio), because regions
    differ in bandwidth; otherwise the same rules (median of agent medians, one-sided
    Mann-Whitney U, agent agreement)."""
    samples = [m for ms in tests_by_agent.values() for m in ms]
    n, agents = len(samples), len(tests_by_agent)
    if n < cfg.min_samples or agents < cfg.min_agents:
        return ThroughputJudgement(
            status="inconclusive",
            reason=f"too little evidence: {n} samples from {agents} agents, no control",
        )
    if not reference.usable(cfg) or reference.median is None:
        return ThroughputJudgement(
            status="inconclusive",
            reason="no control measured and no clean group to compare with",
        )
    ref_median = reference.median
    tests = [m.throughput_bps for m in samples if m.throughput_bps is not None]
    agent_ratios = [
        median([m.throughput_bps for m in ms if m.throughput_bps is not None]) / ref_median
        for ms in tests_by_agent.values()
    ]
    ratio = median(agent_ratios)
    slow_agents = sum(1 for r in agent_ratios if r <= cfg.cross_throttle_ratio)
    p = mann_whitney_less(tests, reference.values)
    quorum = cfg.agent_quorum * agents
    detail = (
        f"no control; median {_fmt_bps(median(tests))} vs clean groups "
        f"{names(reference.groups)} {_fmt_bps(ref_median)} (ratio {ratio:.3g}), p={p:.2g}, "
        f"{slow_agents}/{agents} agents slow"
    )
    if (
        ratio <= cfg.cross_throttle_ratio
        and p <= cfg.alpha
        and slow_agents >= cfg.min_agents
        and slow_agents >= quorum
    ):
        return ThroughputJudgement(status="throttled", reason=detail, ratio=ratio, p_value=p)
    if ratio > cfg.throttle_ratio and slow_agents < quorum:
        return ThroughputJudgement(status="ok", reason=detail, ratio=ratio, p_value=p)
    return ThroughputJudgement(
        status="inconclusive", reason=f"mixed evidence: {detail}", ratio=ratio, p_value=p
    )


def corroboration(test_median: float, reference: Reference, cfg: AnalysisConfig) -> str:
    """How the cross-group reference (clean groups only) relates to a control-based
    throttled verdict; it is reported in the reason. (Whether a clean group exists at all
    does change the verdict: see coordinator/analysis/throughput.py.)"""
    if not reference.usable(cfg) or reference.median is None:
        return "no clean group to corroborate"
    cross = test_median / reference.median
    shown = names(reference.groups)
    if cross <= cfg.throttle_ratio:
        return f"corroborated by clean groups {shown} (ratio {cross:.3g})"
    return f"not corroborated by clean groups {shown} (ratio {cross:.3g})"


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
