"""Prometheus exposition: one custom collector that reads coordinator and analysis state
at scrape time (no module-level metrics; the coordinator owns its registry).

Series of regions or targets that stop being measured disappear once they leave the
analysis window, because the analysis snapshot no longer lists them.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from coordinator.core import Coordinator
from coordinator.fleet import Fleet
from coordinator.observe import DURATION_BUCKETS

#: The longest target label: a job's target may be 2,000 characters, and 480 such targets
#: in 3 regions once made /metrics 14 MB. A longer target is cut and suffixed with a hash
#: of the whole, so two long targets never share a series.
MAX_TARGET_LABEL = 120


def target_label(target: str) -> str:
    """``target`` as a label value: itself when short, else its first characters, an
    ellipsis and the first 12 hex digits of its SHA-256."""
    if len(target) <= MAX_TARGET_LABEL:
        return target
    digest = hashlib.sha256(target.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{target[: MAX_TARGET_LABEL - 16]}…#{digest}"


class CoordinatorCollector(Collector):
    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    def collect(self) -> Iterator[Metric]:
        c = self.c
        views = c.agents()
        stats = c.stats()
        connected: Counter[str] = Counter(v.info.region for v in views if v.connected)
        agents = GaugeMetricFamily(
            "vantage_agents_connected",
            "Agents with an open session, per region (0 for regions seen before).",
            labels=["region"],
        )
        regions = {v.info.region for v in views}
        for region in sorted(regions):
            agents.add_metric([region], connected.get(region, 0))
        yield agents

        measurements = CounterMetricFamily(
            "vantage_measurements",
            "Probe results stored, by region, probe kind and outcome (ok or the failure class).",
            labels=["region", "kind", "outcome"],
        )
        for (region, kind, outcome), n in sorted(stats.measurements.items()):
            measurements.add_metric([region, kind, outcome], n)
        yield measurements

        duration = HistogramMetricFamily(
            "vantage_probe_duration_seconds",
            "How long probes took, by region and probe kind.",
            labels=["region", "kind"],
        )
        for (region, kind), counts in sorted(stats.duration_buckets.items()):
            cumulative = 0
            buckets = []
            for bound, n in zip(DURATION_BUCKETS, counts, strict=False):
                cumulative += n
                buckets.append((_fmt(bound), cumulative))
            cumulative += counts[-1]
            buckets.append(("+Inf", cumulative))
            duration.add_metric([region, kind], buckets, stats.duration_sums[(region, kind)])
        yield duration

        dropped = CounterMetricFamily(
            "vantage_results_dropped",
            "Results refused, by a fixed reason: not the reporting agent's task, unknown or "
            "already finished, a bad number, another kind than the task, too large, past a "
            "batch's limit, a malformed task id (coordinator/vouch.py).",
            labels=["reason"],
        )
        for reason, n in sorted(stats.dropped.items()):
            dropped.add_metric([reason], n)
        yield dropped
        duplicates = CounterMetricFamily(
            "vantage_results_duplicate", "Results received again after a reconnect (acked, not stored twice)."
        )
        duplicates.add_metric([], stats.duplicate)
        yield duplicates
        not_analysed = CounterMetricFamily(
            "vantage_results_not_analysed",
            "Results stored but not readable by the analysis (logged as result_not_analysable).",
        )
        not_analysed.add_metric([], stats.not_analysed)
        yield not_analysed
        analyzer = c.analyzer
        failed = CounterMetricFamily(
            "vantage_analysis_errors",
            "Target evaluations that raised (logged as evaluation_failed): the target keeps its "
            "last verdicts, every other target is judged as usual.",
        )
        failed.add_metric([], analyzer.evaluation_errors)
        yield failed
        evicted = CounterMetricFamily(
            "vantage_analysis_targets_evicted",
            "Targets the analysis dropped to make room for a target of a submitter below its fair "
            "share of --max-targets.",
        )
        evicted.add_metric([], analyzer.evicted_targets)
        yield evicted

        agent_errors = CounterMetricFamily(
            "vantage_agent_errors",
            "Tasks the agents could not run, by the agents' region and the reason "
            "(deadline_missed, spec_error, resource_error, internal_error): never evidence "
            "about a target. Per agent in `vantage agents`.",
            labels=["region", "reason"],
        )
        for (region, reason), n in sorted(stats.agent_errors.items()):
            agent_errors.add_metric([region, reason], n)
        yield agent_errors

        jobs = GaugeMetricFamily("vantage_jobs", "Jobs known, by state.", labels=["state"])
        states = c.job_states()
        for state in ("pending", "running", "done", "cancelled", "failed"):
            jobs.add_metric([state], states.get(state, 0))
        yield jobs
        open_tasks = GaugeMetricFamily("vantage_tasks_open", "Tasks pending or assigned.")
        open_tasks.add_metric([], c.open_task_count())
        yield open_tasks
        lag = GaugeMetricFamily(
            "vantage_event_loop_lag_seconds",
            "How late the coordinator's event loop last ran a timer: how long a message "
            "from an agent waits to be read (sustained values over 1 s: it is overloaded).",
        )
        lag.add_metric([], c.lag)
        yield lag
        stalled = CounterMetricFamily(
            "vantage_coordinator_stalled_seconds",
            "Time the scheduling tick came late, so no stream was read: not counted as "
            "any agent's silence when deciding that it is lost.",
        )
        stalled.add_metric([], c.stalled)
        yield stalled

        yield from self._verdicts()
        yield from self._paths()

    def _paths(self) -> Iterator[Metric]:
        """ping and traceroute figures per region and target (coordinator/analysis/paths.py)."""
        paths = self.c.analyzer.paths
        now = time.time()
        loss = GaugeMetricFamily(
            "vantage_ping_loss_ratio",
            "Share of ping requests without a reply in the analysis window.",
            labels=["region", "target"],
        )
        rtt = GaugeMetricFamily(
            "vantage_ping_rtt_seconds",
            "Ping round-trip time in the analysis window: the lowest (stat=min), the mean of "
            "the replies (avg) and the highest (max).",
            labels=["region", "target", "stat"],
        )
        jitter = GaugeMetricFamily(
            "vantage_ping_jitter_seconds",
            "Mean difference between consecutive ping replies' RTTs in the analysis window.",
            labels=["region", "target"],
        )
        for f in paths.pings(now):
            loss.add_metric([f.group, target_label(f.target)], f.loss)
            for stat, value in (("min", f.rtt_min_s), ("avg", f.rtt_avg_s), ("max", f.rtt_max_s)):
                if value is not None:
                    rtt.add_metric([f.group, target_label(f.target), stat], value)
            if f.jitter_s is not None:
                jitter.add_metric([f.group, target_label(f.target)], f.jitter_s)
        hops = GaugeMetricFamily(
            "vantage_traceroute_hops",
            "Hops of the region's latest traceroute to the target in the analysis window.",
            labels=["region", "target"],
        )
        reached = GaugeMetricFamily(
            "vantage_traceroute_reached",
            "1 when the region's latest traceroute reached the target, 0 when it stopped on the way.",
            labels=["region", "target"],
        )
        for group, target, trace in paths.traces(now):
            hops.add_metric([group, target_label(target)], trace.hop_count)
            reached.add_metric([group, target_label(target)], 1 if trace.reached else 0)
        yield from (loss, rtt, jitter, hops, reached)

    def _verdicts(self) -> Iterator[Metric]:
        snap = self.c.snapshot
        success = GaugeMetricFamily(
            "vantage_success_ratio",
            "Share of probes that succeeded in the analysis window.",
            labels=["region", "target", "kind"],
        )
        for s in snap.success:
            success.add_metric([s.group, target_label(s.target), s.kind], s.ratio)
        yield success

        throughput = GaugeMetricFamily(
            "vantage_throughput_bytes_per_second",
            "Median sustained throughput (after any burst a policer let through) in the "
            "analysis window, bytes/s, by direction (download, upload).",
            labels=["region", "target", "direction"],
        )
        low = GaugeMetricFamily(
            "vantage_throughput_low_bytes_per_second",
            "The low end of the 95% interval of vantage_throughput_bytes_per_second (the "
            "median's order-statistic interval over the window's measurements).",
            labels=["region", "target", "direction"],
        )
        high = GaugeMetricFamily(
            "vantage_throughput_high_bytes_per_second",
            "The high end of the 95% interval of vantage_throughput_bytes_per_second.",
            labels=["region", "target", "direction"],
        )
        ratio = GaugeMetricFamily(
            "vantage_throughput_ratio",
            "Region median throughput over its reference median (control or other regions), "
            "by direction.",
            labels=["region", "target", "direction"],
        )
        throttled = GaugeMetricFamily(
            "vantage_throttled", "1 when the region throttles the target.", labels=["region", "target"]
        )
        blocked = GaugeMetricFamily(
            "vantage_blocked", "1 when the region blocks the target.", labels=["region", "target"]
        )
        blocked_info = GaugeMetricFamily(
            "vantage_blocked_info",
            "The dominant failure class of a blocked (region, target).",
            labels=["region", "target", "failure"],
        )
        verdict_info = GaugeMetricFamily(
            "vantage_verdict_info",
            "The current verdict of each (region, target): ok, throttled, blocked, inconclusive, "
            "degraded (slow there because the target is slow everywhere) or unreachable (the "
            "region itself reaches nothing: no verdict on the target); direction says which "
            "transfers a throttled or degraded verdict is about (download, upload, "
            "download,upload; empty otherwise); trigger what a throttled or blocked verdict "
            "keys on (sni, address, dns or unknown, from the jobs' trigger checks; empty "
            "otherwise); censor_at, censor_hop and censor_asn where a blocked verdict's block "
            "sits, from agents that located it (options.locate): path (at the router "
            "censor_hop), destination or unknown; empty otherwise.",
            labels=["region", "target", "verdict", "direction", "trigger", "censor_at", "censor_hop", "censor_asn"],
        )
        for v in snap.regions:
            labels = [v.group, target_label(v.target)]
            for direction, bps, share, lo, hi in (
                ("download", v.throughput_bps, v.ratio, v.throughput_low_bps, v.throughput_high_bps),
                ("upload", v.upload_bps, v.upload_ratio, v.upload_low_bps, v.upload_high_bps),
            ):
                if bps is not None:
                    throughput.add_metric([*labels, direction], bps)
                if lo is not None and hi is not None:
                    low.add_metric([*labels, direction], lo)
                    high.add_metric([*labels, direction], hi)
                if share is not None:
                    ratio.add_metric([*labels, direction], share)
            throttled.add_metric(labels, 1.0 if v.verdict == "throttled" else 0.0)
            blocked.add_metric(labels, 1.0 if v.verdict == "blocked" else 0.0)
            if v.verdict == "blocked":
                blocked_info.add_metric([*labels, v.failure], 1.0)
            loc = v.located
            verdict_info.add_metric([*labels, v.verdict, v.direction, v.trigger, loc.at if loc else "",
                                     loc.hop if loc else "", str(loc.asn) if loc and loc.asn else ""], 1.0)
        yield from (throughput, low, high, ratio, throttled, blocked, blocked_info, verdict_info)

        outage = GaugeMetricFamily(
            "vantage_outage", "1 when the target fails from every region.", labels=["target"]
        )
        degraded = GaugeMetricFamily(
            "vantage_degraded",
            "1 when the target is slow from every region, in more than one country (the "
            "target itself is slow: no region is called throttled).",
            labels=["target"],
        )
        for t in snap.targets:
            outage.add_metric([target_label(t.target)], 1.0 if t.outage else 0.0)
            degraded.add_metric([target_label(t.target)], 1.0 if t.degraded else 0.0)
        yield outage
        yield degraded

        reachable = GaugeMetricFamily(
            "vantage_region_reachable",
            "1 when some agent of the region reaches the canaries or controls (or none has "
            "any); 0 when every agent there is unhealthy: the region is down, not censoring.",
            labels=["region"],
        )
        healthy = GaugeMetricFamily(
            "vantage_region_agents_healthy",
            "Agents of the region seen reaching a canary or control in the health horizon.",
            labels=["region"],
        )
        for r in snap.region_health:
            reachable.add_metric([r.group], 1.0 if r.reachable else 0.0)
            healthy.add_metric([r.group], float(r.healthy))
        yield reachable
        yield healthy


def _fmt(bound: float) -> str:
    return repr(float(bound))


class Relaying(Protocol):
    relayed: int


class FleetCollector(Collector):
    """In a fleet only the coordinator that holds the lease exports the network's series
    (agents, measurements, verdicts): a Prometheus that scrapes every coordinator sees
    each of them once. Every member exports its place in the fleet."""

    def __init__(self, inner: CoordinatorCollector, fleet: Fleet, relay: Relaying) -> None:
        self.inner = inner
        self.fleet = fleet
        self.relay = relay

    def collect(self) -> Iterator[Metric]:
        f = self.fleet
        leader = GaugeMetricFamily(
            "vantage_fleet_leader",
            "1 on the coordinator of a fleet that holds the lease and schedules (it alone "
            "exports the agent, measurement and verdict series), 0 on the others.",
        )
        leader.add_metric([], 1.0 if f.leading else 0.0)
        yield leader
        relayed = GaugeMetricFamily(
            "vantage_fleet_relayed_sessions",
            "Agent sessions this coordinator carries to the one that schedules.",
        )
        relayed.add_metric([], float(self.relay.relayed))
        yield relayed
        takeovers = CounterMetricFamily(
            "vantage_fleet_takeovers", "Times this coordinator took the fleet's lease and began to schedule."
        )
        takeovers.add_metric([], float(f.takeovers))
        yield takeovers
        if f.leading:
            yield from self.inner.collect()


def build_registry(
    coordinator: Coordinator, fleet: Fleet | None = None, relay: Relaying | None = None
) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    inner = CoordinatorCollector(coordinator)
    if fleet is None or relay is None:
        registry.register(inner)
    else:
        registry.register(FleetCollector(inner, fleet, relay))
    return registry
