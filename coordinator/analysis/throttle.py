"""The throttling rules as plain functions over plain data: a group's throughput against
its agents' own controls, or against the other groups' (docs/detection.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from coordinator.analysis.model import AnalysisConfig, Measurement
from coordinator.analysis.stats import mann_whitney_less, median, paired_t_less

ByAgent = Mapping[str, Sequence[Measurement]]

# A zero test throughput is taken as this ratio for the log (bytes/s are never that exact).
_MIN_RATIO = 1e-6

ThroughputStatus = Literal["throttled", "ok", "inconclusive", "degraded"]


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
        f"{burst_note(samples)}"
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


def burst_note(samples: Sequence[Measurement]) -> str:
    """", 3/4 dropped after a fast start (median at 0.42 s)" when some test downloads ran
    fast and then slowed (a policer's burst: their sustained rate is what was judged)."""
    drops = [m.drop_at_s for m in samples if m.drop_at_s is not None]
    if not drops:
        return ""
    return f", {len(drops)}/{len(samples)} dropped after a fast start (median at {median(drops):.2g} s)"


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
