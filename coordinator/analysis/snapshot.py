"""What comes out of an evaluation: the verdicts on (group, target) pairs and on
targets, agent and region health, success ratios, all in one immutable Snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from coordinator.analysis.located import Located

Verdict = Literal["ok", "throttled", "blocked", "inconclusive", "degraded", "unreachable"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RegionVerdict:
    """The verdict on one (group, target) at one evaluation.

    ``throughput_bps`` is the window median of the group's throughput to the target
    (bytes/s; downloads, sustained rates); ``ratio`` the group's median over the reference
    median (the same agents' control, or the clean groups when no control was measured);
    ``since`` the evaluation
    time at which the current verdict began; ``reason`` says why, for people.
    """

    group: str
    target: str
    verdict: Verdict
    failure: str
    throughput_bps: float | None
    ratio: float | None
    samples: int
    agents: int
    since: float
    reason: str
    # The same figures for throughput uploads (``direction=upload``), judged apart.
    upload_bps: float | None = None
    upload_ratio: float | None = None
    # The 95% interval of each median (stats.median_interval): the spread of the rate.
    throughput_low_bps: float | None = None
    throughput_high_bps: float | None = None
    upload_low_bps: float | None = None
    upload_high_bps: float | None = None
    # Which transfers a throttled or degraded verdict is about: "download", "upload" or
    # "download,upload"; "" for the other verdicts.
    direction: str = ""
    # What a throttled or blocked verdict keys on (coordinator/analysis/trigger.py): "sni",
    # "address", "dns" or "unknown"; "" for the other verdicts.
    trigger: str = ""
    # Where a blocked verdict's block sits, from the agents that located it
    # (coordinator/analysis/located.py); None for the other verdicts and when none did.
    located: Located | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TargetVerdict:
    """Target-level verdicts: ``outage`` (it fails from every group) and ``degraded`` (it is
    slow against the same-agent control from every group, in more than one country).
    ``since`` / ``degraded_since`` are when the current state of each began; the reasons
    say why, or (``degraded_reason`` with ``degraded`` false) why slowness seen from
    every group could not be called either way."""

    target: str
    outage: bool
    since: float
    reason: str = ""
    degraded: bool = False
    degraded_since: float = 0.0
    degraded_reason: str = ""


AgentState = Literal["healthy", "unhealthy", "unknown"]


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentHealth:
    """One agent's reach of the outside world over the last health horizon
    (coordinator/analysis/health.py)."""

    agent_id: str
    group: str
    state: AgentState
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class RegionHealth:
    """Whether a group's agents reach the outside world. ``since`` is when the current
    state began (set by the analyzer's hysteresis)."""

    group: str
    reachable: bool
    since: float
    reason: str
    agents: int
    healthy: int
    unhealthy: int


@dataclass(frozen=True, kw_only=True, slots=True)
class SuccessRatio:
    group: str
    target: str
    kind: str
    ratio: float
    samples: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Snapshot:
    """Everything one evaluation decided. Immutable, so the Prometheus collector can read
    ``Analyzer.snapshot`` from any thread at scrape time."""

    evaluated_at: float
    regions: tuple[RegionVerdict, ...] = ()
    agents: tuple[AgentHealth, ...] = ()
    region_health: tuple[RegionHealth, ...] = ()
    targets: tuple[TargetVerdict, ...] = ()
    success: tuple[SuccessRatio, ...] = ()
    dropped_targets: int = 0
    dropped_groups: int = 0
    measurements: int = field(default=0)
