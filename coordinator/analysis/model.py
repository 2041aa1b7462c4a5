"""Plain data of the analysis core: what goes in (Measurement), how it is judged
(AnalysisConfig) and what comes out (Snapshot of verdicts).

Everything is a frozen, keyword-only dataclass. Bad input raises ValueError naming the
field and the reason, at construction, so nothing malformed reaches the windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Literal

from common.failures import (
    AGENT_ERRORS,
    DNS_REFUSED,
    DNS_SERVFAIL,
    DNS_TEMPORARY_FAILURE,
    DNS_TIMEOUT,
    FAILURES,
    TARGET_FORBIDDEN,
)
from common.ids import is_country
from common.kinds import KINDS as _KINDS
from coordinator.analysis.blockpage import Body
from coordinator.analysis.dnslie import Answers
from coordinator.analysis.located import Located
from coordinator.analysis.snapshot import (
    AgentHealth,
    AgentState,
    RegionHealth,
    RegionVerdict,
    Snapshot,
    SuccessRatio,
    TargetVerdict,
    Verdict,
)
from coordinator.analysis.trigger import Checks

# The closed set of failure classes (docs/probes.md, "Failure classes") and its agent-error
# subset (the agent could not run the task: about the agent) are common.failures', one
# definition for the agent, the coordinator and the analysis; re-exported here for the
# analysis' callers (coordinator.core, coordinator.analysis).
__all__ = [
    "AGENT_ERRORS",
    "BLOCK_PAGE",
    "DIRECTIONS",
    "DNS_MANIPULATION",
    "FAILURES",
    "KINDS",
    "NOT_EVIDENCE",
    "NOT_EVIDENCE_FAILURE",
    "RESOLVER_FAILURES",
    "ROLES",
    "UPLOAD_SERIES",
    "VERDICTS",
    "AgentHealth",
    "AgentState",
    "AnalysisConfig",
    "Direction",
    "Measurement",
    "RegionHealth",
    "RegionVerdict",
    "Role",
    "Snapshot",
    "SuccessRatio",
    "TargetVerdict",
    "Verdict",
]

KINDS: frozenset[str] = frozenset(_KINDS)
# The kinds whose results may carry where the block sits (options.locate).
LOCATING_KINDS: frozenset[str] = frozenset({"tcp", "tls", "http"})

# The agent refused to probe the target by its own policy: no evidence about the network.
NOT_EVIDENCE_FAILURE = TARGET_FORBIDDEN
# Outcomes that say nothing about the target: never counted for or against it.
NOT_EVIDENCE: frozenset[str] = AGENT_ERRORS | {NOT_EVIDENCE_FAILURE}
# Failures of the agent's own resolver (not the lies a censor tells: NXDOMAIN, no answer).
RESOLVER_FAILURES: frozenset[str] = frozenset(
    {DNS_TEMPORARY_FAILURE, DNS_TIMEOUT, DNS_SERVFAIL, DNS_REFUSED}
)

# Which way a throughput measurement moved its bytes (agent/probes/upload.py).
Direction = Literal["download", "upload"]
DIRECTIONS: tuple[Direction, ...] = ("download", "upload")
# The kind key of upload measurements in the windows (Measurement.series).
UPLOAD_SERIES = "throughput upload"

# What a measurement is for: "test" (a target the verdicts are about) or "canary" (the
# coordinator's own light probe of an operator's canary target: evidence about the agent's
# reach of the outside world, never a target of verdicts).
Role = Literal["test", "canary"]
ROLES: tuple[Role, ...] = ("test", "canary")

# The failure class recorded for a block page served with an otherwise successful fetch.
BLOCK_PAGE = "block_page"
# ... and for a resolver's answers that are a lie (coordinator/analysis/dnslie.py).
DNS_MANIPULATION = "dns_manipulation"

# "degraded": the group's downloads of the target are slow, but so are every other
# group's, in more than one country: the target itself is slow, not throttled here.
# "unreachable": inconclusive about the target because the group itself is down: none
# of its agents reaches the canaries or the controls (coordinator/analysis/health.py).
VERDICTS: tuple[Verdict, ...] = (
    "ok",
    "throttled",
    "blocked",
    "inconclusive",
    "degraded",
    "unreachable",
)

def _finite(name: str, value: object, *, minimum: float | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name}: must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value!r}")


def _text(name: str, value: object) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: must be a non-empty string, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Measurement:
    """One probe result as the analysis sees it.

    ``group`` is the key verdicts are computed per: the agent's region by default, but the
    caller chooses (an ASN as a string judges networks, as NetBlocks reports per provider).
    Throughputs are bytes per second; ``control_bps`` is the control target measured by the
    same agent right after the test, which is the reference that decides throttling.
    ``country`` is the agent's two-letter country code ("" when it declared none): a
    target slow from groups in several countries is degraded, not throttled.
    ``control_failure`` is the failure class of that control when it failed (then
    ``control_bps`` is None); a control measured either way is evidence of the agent's
    own reach (coordinator/analysis/health.py). ``throughput_bps`` and ``control_bps``
    are the sustained rates (after any burst a policer let through at full speed);
    ``drop_at_s`` is when the test's rate dropped, seconds into its body, when it did
    (agent/probes/rates.py); ``direction`` "upload" marks a throughput upload, judged
    apart from the downloads (``series``). ``body`` is what an http fetch that worked
    returned (``blockpage.Body``); ``block_page`` is set when it matched a fingerprint,
    and by the analysis when it differs from the page most groups see. ``answers`` are a
    dns result's addresses (``dnslie.Answers``); ``dns_manipulation`` is set when they are
    a lie against the control resolver or the other groups' answers. ``trigger_checks``
    are a throughput or tls result's swapped exchanges (``trigger.Checks``). ``role``
    "canary" marks the coordinator's canary probes: they only feed agent health.
    """

    at: float
    group: str
    agent_id: str
    target: str
    kind: str
    failure: str | None
    duration_s: float
    throughput_bps: float | None = None
    control_bps: float | None = None
    block_page: bool = False
    body: Body | None = None
    answers: Answers | None = None
    dns_manipulation: bool = False
    trigger_checks: Checks | None = None
    drop_at_s: float | None = None
    direction: Direction = "download"
    country: str = ""
    control_failure: str | None = None
    role: Role = "test"
    # Where on the path the agent located the block (options.locate; located.Located).
    located: Located | None = None

    def __post_init__(self) -> None:
        _finite("Measurement.at", self.at)
        _text("Measurement.group", self.group)
        _text("Measurement.agent_id", self.agent_id)
        _text("Measurement.target", self.target)
        if self.kind not in KINDS:
            raise ValueError(f"Measurement.kind: must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.failure is not None and self.failure not in FAILURES:
            raise ValueError(
                f"Measurement.failure: must be None or one of the closed failure set, got {self.failure!r}"
            )
        _finite("Measurement.duration_s", self.duration_s, minimum=0.0)
        if self.throughput_bps is not None:
            _finite("Measurement.throughput_bps", self.throughput_bps, minimum=0.0)
        if self.control_bps is not None:
            _finite("Measurement.control_bps", self.control_bps, minimum=0.0)
        if self.drop_at_s is not None:
            _finite("Measurement.drop_at_s", self.drop_at_s, minimum=0.0)
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"Measurement.direction: must be one of {list(DIRECTIONS)}, got {self.direction!r}"
            )
        if self.direction == "upload" and self.kind != "throughput":
            raise ValueError(f"Measurement.direction: only throughput uploads, not {self.kind}")
        if self.body is not None and (not isinstance(self.body, Body) or self.kind != "http"):
            raise ValueError(f"Measurement.body: only an http measurement has a body, got {self.body!r}")
        if self.answers is not None and (not isinstance(self.answers, Answers) or self.kind != "dns"):
            raise ValueError(f"Measurement.answers: only a dns measurement has answers, got {self.answers!r}")
        if self.trigger_checks is not None and (
            not isinstance(self.trigger_checks, Checks) or self.kind not in ("throughput", "tls")
        ):
            raise ValueError(
                "Measurement.trigger_checks: only a throughput or tls measurement has them, "
                f"got {self.trigger_checks!r}"
            )
        if not isinstance(self.dns_manipulation, bool):
            raise ValueError(f"Measurement.dns_manipulation: must be a bool, got {self.dns_manipulation!r}")
        if not isinstance(self.block_page, bool):
            raise ValueError(f"Measurement.block_page: must be a bool, got {self.block_page!r}")
        if not isinstance(self.country, str) or (
            self.country and not is_country(self.country)
        ):
            raise ValueError(
                f"Measurement.country: must be empty or a two-letter upper-case code, got {self.country!r}"
            )
        if self.control_failure is not None:
            if self.control_failure not in FAILURES:
                raise ValueError(
                    "Measurement.control_failure: must be None or one of the closed failure "
                    f"set, got {self.control_failure!r}"
                )
            if self.control_bps is not None:
                raise ValueError("Measurement.control_failure: a failed control has no control_bps")
        if self.located is not None and (not isinstance(self.located, Located) or self.kind not in LOCATING_KINDS):
            raise ValueError(f"Measurement.located: only a tcp, tls or http measurement is located, got {self.kind}")
        if self.role not in ROLES:
            raise ValueError(f"Measurement.role: must be one of {list(ROLES)}, got {self.role!r}")

    @property
    def series(self) -> str:
        """The kind the windows and rules keep this measurement under: the kind, or
        "throughput upload" for uploads (judged apart from downloads of the same target)."""
        return self.kind if self.direction == "download" else f"{self.kind} upload"

    @property
    def failed(self) -> bool:
        """The target did not work: a network failure or a block page. ``target_forbidden``
        (the agent refused by policy) and the agent errors (it could not run the task)
        are not network failures and are never evidence."""
        if self.block_page or self.dns_manipulation:
            return True
        return self.failure is not None and self.failure not in NOT_EVIDENCE

    @property
    def is_evidence(self) -> bool:
        return self.failure not in NOT_EVIDENCE

    @property
    def failure_class(self) -> str:
        """The class a failed measurement counts under ("" when it did not fail)."""
        if self.failure is not None and self.failure not in NOT_EVIDENCE:
            return self.failure
        if self.dns_manipulation:
            return DNS_MANIPULATION
        return BLOCK_PAGE if self.block_page else ""


@dataclass(frozen=True, kw_only=True, slots=True)
class AnalysisConfig:
    """How windows are kept and verdicts decided. The defaults suit the live coordinator:
    probe rounds about every 10 s and 2 agents per region (see docs/detection.md)."""

    # Window: a measurement counts while now - window_s <= at; of those, only the most
    # recent max_samples_per_agent of each agent per (group, target, kind), so fresh
    # rounds dominate quickly and no single agent outweighs the others.
    window_s: float = 60.0
    max_samples_per_agent: int = 3
    # Evidence needed before any conclusive verdict (below it: "inconclusive", never "ok").
    min_samples: int = 4
    min_agents: int = 2
    # Significance level of the one-sided tests (Mann-Whitney U, Fisher exact).
    alpha: float = 0.05
    # throttled: median test / median same-agent control <= throttle_ratio ...
    throttle_ratio: float = 0.4
    # ... and at least this fraction of the agents (and >= min_agents) individually so.
    agent_quorum: float = 0.5
    # Fallback without a control: median test / median test of clean groups <= this.
    cross_throttle_ratio: float = 0.1
    # blocked / outage: a group "fails" a target at >= block_failure_ratio of its samples
    # and "works" at a success ratio >= works_success_ratio.
    block_failure_ratio: float = 0.75
    works_success_ratio: float = 0.75
    # outage(target): at least this many groups fail it and none works; degraded(target):
    # at least this many groups are slow against their control and none is fast.
    outage_min_groups: int = 2
    # Hysteresis: throttled/blocked/outage/degraded are entered on the first evaluation that
    # decides them; left only after the raw verdict has been "ok" (not outage) on
    # recover_evaluations consecutive evaluations spanning at least recover_s seconds.
    recover_evaluations: int = 2
    recover_s: float = 20.0
    # Agent health (coordinator/analysis/health.py): a failure counts only when the agent
    # reached a canary or control within this many seconds after it, and that reference
    # did not fail within this many seconds before it.
    health_horizon_s: float = 30.0
    # Cardinality caps: measurements of further targets (groups) are counted and ignored.
    max_targets: int = 500
    max_groups: int = 1000

    def __post_init__(self) -> None:
        for name in ("window_s", "recover_s", "health_horizon_s"):
            value = getattr(self, name)
            _finite(f"AnalysisConfig.{name}", value, minimum=0.0)
        for name in ("window_s", "health_horizon_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"AnalysisConfig.{name}: must be > 0, got {getattr(self, name)!r}")
        for name in (
            "max_samples_per_agent",
            "min_samples",
            "min_agents",
            "outage_min_groups",
            "recover_evaluations",
            "max_targets",
            "max_groups",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"AnalysisConfig.{name}: must be an integer >= 1, got {value!r}")
        for name in (
            "alpha",
            "throttle_ratio",
            "agent_quorum",
            "cross_throttle_ratio",
            "block_failure_ratio",
            "works_success_ratio",
        ):
            value = getattr(self, name)
            _finite(f"AnalysisConfig.{name}", value)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"AnalysisConfig.{name}: must be in (0, 1], got {value!r}")

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

