"""A seeded generator of synthetic probe rounds for the analysis tests: heavy noise,
congestion episodes, transient dips, a slow agent and regions of very different
bandwidth. Nothing here is throttled unless a slowdown is asked for."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from coordinator.analysis import Measurement

TARGET = "twitter"
ROUND_S = 10.0


@dataclass(frozen=True, kw_only=True)
class SyntheticAgent:
    agent_id: str
    region: str
    bandwidth_bps: float


@dataclass(kw_only=True)
class SyntheticWorld:
    """Regions whose access bandwidth differs by up to 300x; per region the target's
    server is 0.8-1.25x as fast as the control's; each measurement's link speed varies
    +-50% (shared by the test and the control measured right after it) plus an
    independent +-15% jitter on each; whole regions go through congestion episodes
    (test and control drop 2-20x for 1-3 rounds); single measurement pairs dip 2-10x
    (5%), and single measurements dip 2-10x on the test alone or on the control alone
    (``dip_p`` each, 1% by default); one agent is 10x slower than the others of its
    region."""

    rng: random.Random
    noise: float = 0.5
    jitter: float = 0.15
    congestion_start_p: float = 0.03
    pair_dip_p: float = 0.05
    dip_p: float = 0.01
    agents: list[SyntheticAgent] = field(default_factory=list)
    target_factor: dict[str, float] = field(default_factory=dict)
    congested_until: dict[str, int] = field(default_factory=dict)
    congestion_factor: dict[str, float] = field(default_factory=dict)
    slowdown: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(cls, rng: random.Random, **kwargs: float) -> SyntheticWorld:
        world = cls(rng=rng, **kwargs)  # type: ignore[arg-type]
        bandwidths = {"ru": 200e3, "de": 20e6, "us": 2e6, "br": 60e3}
        for region, bandwidth in bandwidths.items():
            for i in range(2):
                world.agents.append(
                    SyntheticAgent(agent_id=f"{region}-{i}", region=region, bandwidth_bps=bandwidth)
                )
            world.target_factor[region] = rng.uniform(0.8, 1.25)
        # one slow agent (a tenth of its region's bandwidth), a third agent in "us"
        world.agents.append(SyntheticAgent(agent_id="us-slow", region="us", bandwidth_bps=2e5))
        return world

    @property
    def regions(self) -> list[str]:
        return sorted(self.target_factor)

    def _jitter(self) -> float:
        return self.rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)

    def round(self, index: int) -> Iterator[Measurement]:
        rng = self.rng
        for region in self.regions:
            if (
                self.congested_until.get(region, -1) < index
                and rng.random() < self.congestion_start_p
            ):
                self.congested_until[region] = index + rng.randint(0, 2)
                self.congestion_factor[region] = rng.uniform(1 / 20, 1 / 2)
        for agent in self.agents:
            region = agent.region
            base = agent.bandwidth_bps
            if self.congested_until.get(region, -1) >= index:
                base *= self.congestion_factor[region]
            base *= rng.uniform(1.0 - self.noise, 1.0 + self.noise)
            if rng.random() < self.pair_dip_p:
                base /= rng.uniform(2, 10)
            test = (
                base * self.target_factor[region] * self._jitter() / self.slowdown.get(region, 1.0)
            )
            control = base * self._jitter()
            if rng.random() < self.dip_p:
                test /= rng.uniform(2, 10)
            if rng.random() < self.dip_p:
                control /= rng.uniform(2, 10)
            yield Measurement(
                at=index * ROUND_S + rng.uniform(0.0, 3.0),
                group=region,
                agent_id=agent.agent_id,
                target=TARGET,
                kind="throughput",
                failure=None,
                duration_s=rng.uniform(1.0, 5.0),
                throughput_bps=test,
                control_bps=control,
            )
