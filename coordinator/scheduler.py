"""Scheduling as plain functions over plain data: which agents a job selects, which
rounds are due, and when each task of a round starts.

Nothing here touches sockets, the store or the clock: the caller passes ``now``.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence

from coordinator.model import AgentInfo, Job, JobSpec, Selector

DEFAULT_TASK_TIMEOUT_S = 60.0
MIN_INTERVAL_S = 5.0


def agent_matches(agent: AgentInfo, selector: Selector, kind: str) -> bool:
    if agent.kinds and kind not in agent.kinds:
        return False
    if selector.agent_ids and agent.agent_id not in selector.agent_ids:
        return False
    if selector.regions and agent.region not in selector.regions:
        return False
    if selector.countries and agent.country.upper() not in selector.countries:
        return False
    if selector.asns and agent.asn not in selector.asns:
        return False
    return all(agent.labels.get(k) == v for k, v in selector.labels.items())


def select_agents(
    agents: Iterable[AgentInfo],
    selector: Selector,
    kind: str,
    *,
    load: dict[str, int] | None = None,
    rng: random.Random | None = None,
) -> list[AgentInfo]:
    """The agents one round of a job goes to.

    With ``per_region`` set, each region gives at most that many agents, the least loaded
    first (ties broken at random so rounds rotate over a region's agents).
    """
    matching = [a for a in agents if agent_matches(a, selector, kind)]
    if selector.per_region <= 0:
        return sorted(matching, key=lambda a: a.agent_id)
    rng = rng or random.Random()
    load = load or {}
    by_region: dict[str, list[AgentInfo]] = defaultdict(list)
    for agent in matching:
        by_region[agent.region].append(agent)
    chosen: list[AgentInfo] = []
    for region in sorted(by_region):
        members = by_region[region]
        rng.shuffle(members)
        members.sort(key=lambda a: load.get(a.agent_id, 0))
        chosen.extend(members[: selector.per_region])
    return chosen


def task_timeout(spec: JobSpec) -> float:
    if spec.timeout_s > 0:
        return spec.timeout_s
    return DEFAULT_TASK_TIMEOUT_S


def round_is_due(job: Job, now: float) -> bool:
    if job.state.finished:
        return False
    rounds = job.spec.rounds
    if rounds is not None and job.rounds_done >= rounds:
        return False
    if job.spec.until and job.next_round_at > job.spec.until:
        return False
    return now >= job.next_round_at


def all_rounds_created(job: Job, now: float) -> bool:
    rounds = job.spec.rounds
    if rounds is not None and job.rounds_done >= rounds:
        return True
    return bool(job.spec.until) and (now > job.spec.until or job.next_round_at > job.spec.until)


def next_round_at(job: Job, now: float) -> float:
    """When the round after the current one is due. Rounds missed while the coordinator
    was down are skipped, not fired in a burst."""
    nxt = job.next_round_at + job.spec.every_s
    if nxt < now:
        missed = int((now - nxt) // job.spec.every_s) + 1
        nxt += missed * job.spec.every_s
    return nxt


def start_offsets(n: int, spread_s: float, rng: random.Random) -> list[float]:
    """Start offsets within a round, so agents do not fire in lockstep."""
    if spread_s <= 0:
        return [0.0] * n
    return [rng.uniform(0.0, spread_s) for _ in range(n)]


def expected_tasks(spec: JobSpec, per_round: int, rounds_done: int, created: int) -> int:
    """Tasks a job is expected to produce in all: what it created so far plus the rest
    of its rounds at the current size; 0 when open-ended (periodic with ``until`` only)."""
    rounds = spec.rounds
    if rounds is None:
        return 0
    return created + max(0, rounds - rounds_done) * per_round


def choose_replacement(
    candidates: Sequence[AgentInfo], preferred_region: str, exclude: str, load: dict[str, int]
) -> AgentInfo | None:
    """Another agent for a task whose agent vanished: same region first, least loaded."""
    pool = [a for a in candidates if a.agent_id != exclude]
    if not pool:
        return None
    same = [a for a in pool if a.region == preferred_region]
    pool = same or pool
    return min(pool, key=lambda a: (load.get(a.agent_id, 0), a.agent_id))
