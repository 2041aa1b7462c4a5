"""What each stored result adds to the counters the metrics read, and the measurement
the analysis sees of it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from common.failures import AGENT_ERRORS, FAILURES
from coordinator.analysis import Measurement, blockpage, dnslie, trigger
from coordinator.analysis.located import Located
from coordinator.analysis.model import LOCATING_KINDS
from coordinator.model import AgentInfo, TaskResultData
from coordinator.vouch import INVALID

# Upper bounds (seconds) of the probe duration histogram.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class Counters:
    """Since this process started; the Prometheus collector reads them at scrape time."""

    measurements: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    duration_buckets: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    duration_sums: dict[tuple[str, str], float] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    duplicate: int = 0
    not_analysed: int = 0
    # Tasks the agents could not run (failure class agent_*), per (region, reason).
    agent_errors: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, result: TaskResultData, agent: AgentInfo) -> str | None:
        """Count one stored result; returns its agent-error reason, if it is one."""
        r = result.result
        outcome = INVALID if result.invalid_failure else (r.failure or "ok")
        self.measurements[(agent.region, r.kind, outcome)] += 1
        key = (agent.region, r.kind)
        buckets = self.duration_buckets.get(key)
        if buckets is None:
            buckets = self.duration_buckets[key] = [0] * (len(DURATION_BUCKETS) + 1)
        for i, bound in enumerate(DURATION_BUCKETS):
            if r.duration_s <= bound:
                buckets[i] += 1
                break
        else:
            buckets[-1] += 1
        self.duration_sums[key] = self.duration_sums.get(key, 0.0) + r.duration_s
        if r.failure in AGENT_ERRORS:
            reason = r.failure.removeprefix("agent_")
            self.agent_errors[(agent.region, reason)] += 1
            return reason
        return None


def _judged_rate(data: Mapping[str, object]) -> object:
    """The rate the analysis judges: the sustained one (after a policer's burst, see
    agent/probes/rates.py), else the mean of results that carry none (a download shorter
    than two windows, or a result from before the split existed)."""
    sustained = data.get("sustained_bps")
    return sustained if sustained is not None else data.get("bytes_per_second")


#: A control slower than this moved nothing worth comparing with: it is no control (and a
#: ratio over a control of 1e-10 B/s overflows the analysis' arithmetic).
MIN_CONTROL_BPS = 1.0


def measurement_from_result(
    result: TaskResultData, agent: AgentInfo, target: str, group_by: str, *, canary: bool = False,
    fingerprints: Sequence[blockpage.Fingerprint] = (),
) -> Measurement:  # fmt: skip
    """The analysis sees the target as the job named it, so metric labels match the job.
    A throughput result is judged by its sustained rate and its control's (``_judged_rate``).
    A throughput job's control is read whether or not the target failed: it is what
    shows the agent reaching the outside world (coordinator/analysis/health.py). An
    http fetch that worked carries its page (``blockpage.Body``), a block page when it
    matches one of ``fingerprints``; a dns result its answers (``dnslie.Answers``), a
    manipulation when they lie against the task's own control resolver; a throughput or
    tls result its trigger checks (``trigger.Checks``)."""
    r = result.result
    data = r.data
    body = blockpage.Body.of(data) if r.kind == "http" and not r.failure else None
    fingerprint = blockpage.match(fingerprints, body) if body is not None else None
    answers = dnslie.Answers.of(data) if r.kind == "dns" and not r.failure else None
    throughput = None
    control = None
    control_failure = None
    drop_at = None
    if r.kind == "throughput":
        bps = _judged_rate(data)
        if not r.failure and isinstance(bps, int | float) and bps >= 0:
            throughput = float(bps)
            drop = data.get("drop_at_s")
            drop_at = float(drop) if isinstance(drop, int | float) and drop >= 0 else None
        ctl = data.get("control")
        if isinstance(ctl, dict):
            failure = ctl.get("failure")
            cbps = _judged_rate(ctl)
            if failure:
                known = isinstance(failure, str) and failure in FAILURES
                control_failure = failure if known else "unknown_failure"
            elif isinstance(cbps, int | float) and cbps >= MIN_CONTROL_BPS:
                control = float(cbps)
    group = str(agent.asn) if group_by == "asn" else agent.region
    return Measurement(
        at=result.finished_at or time.time(),
        group=group,
        agent_id=agent.agent_id,
        target=target,
        kind=r.kind,
        failure=r.failure or None,
        duration_s=r.duration_s,
        throughput_bps=throughput,
        control_bps=control,
        body=body,
        block_page=fingerprint is not None,
        answers=answers,
        dns_manipulation=bool(dnslie.judge(answers)),
        trigger_checks=trigger.Checks.of(data) if r.kind in ("throughput", "tls") else None,
        drop_at_s=drop_at,
        direction="upload" if r.kind == "throughput" and data.get("direction") == "upload" else "download",
        country=agent.country,
        control_failure=control_failure,
        role="canary" if canary else "test",
        located=Located.of(data) if r.kind in LOCATING_KINDS else None,
    )
