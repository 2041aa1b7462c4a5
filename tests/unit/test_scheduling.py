"""The sans-IO scheduling functions of the coordinator (the state machines are in
test_state_machines.py)."""

from __future__ import annotations

import random

from coordinator import scheduler
from coordinator.model import AgentInfo, Job, JobSpec, JobState, Selector

AGENTS = [
    AgentInfo(agent_id=f"{r}-{i}", region=r, country=c, asn=asn, labels={"tier": t}, kinds=("tcp", "http"))
    for r, c, asn in (("de", "DE", 3320), ("ru", "RU", 25159))
    for i, t in ((1, "vps"), (2, "vps"), (3, "home"))
]


def ids(agents: list[AgentInfo]) -> set[str]:
    return {a.agent_id for a in agents}


def test_selection_by_each_selector_field() -> None:
    sel = scheduler.select_agents
    assert ids(sel(AGENTS, Selector(), "tcp")) == ids(AGENTS)
    assert ids(sel(AGENTS, Selector(regions=("ru",)), "tcp")) == {"ru-1", "ru-2", "ru-3"}
    assert ids(sel(AGENTS, Selector(countries=("DE",)), "tcp")) == {"de-1", "de-2", "de-3"}
    assert ids(sel(AGENTS, Selector(asns=(25159,)), "tcp")) == {"ru-1", "ru-2", "ru-3"}
    assert ids(sel(AGENTS, Selector(labels={"tier": "home"}), "tcp")) == {"de-3", "ru-3"}
    assert ids(sel(AGENTS, Selector(agent_ids=("de-2",)), "tcp")) == {"de-2"}
    assert sel(AGENTS, Selector(), "dns") == []  # no agent runs dns here


def test_per_region_prefers_the_least_loaded_and_rotates() -> None:
    rng = random.Random(1)
    picked = scheduler.select_agents(AGENTS, Selector(per_region=1), "tcp", load={"de-1": 3, "de-2": 3}, rng=rng)
    assert len(picked) == 2 and "de-3" in ids(picked)
    seen = set()
    for _ in range(30):
        seen |= ids(scheduler.select_agents(AGENTS, Selector(per_region=1, regions=("ru",)), "tcp", rng=rng))
    assert seen == {"ru-1", "ru-2", "ru-3"}


def test_missed_rounds_are_skipped_not_burst() -> None:
    job = Job(job_id="j", spec=JobSpec(kind="tcp", targets=("x:1",), every_s=10, count=100),
              state=JobState.RUNNING, created_at=0, next_round_at=100)
    assert scheduler.next_round_at(job, now=101) == 110
    # The coordinator was down from 101 to 175: the next round is the first one after now.
    assert scheduler.next_round_at(job, now=175) == 180


def test_rounds_due_and_end() -> None:
    job = Job(job_id="j", spec=JobSpec(kind="tcp", targets=("x:1",), every_s=10, count=2),
              state=JobState.RUNNING, created_at=0, next_round_at=0)
    assert scheduler.round_is_due(job, 0)
    job.rounds_done = 2
    assert not scheduler.round_is_due(job, 100) and scheduler.all_rounds_created(job, 100)
    until = Job(job_id="u", spec=JobSpec(kind="tcp", targets=("x:1",), every_s=10, until=25),
                state=JobState.RUNNING, created_at=0, next_round_at=30)
    assert not scheduler.round_is_due(until, 30) and scheduler.all_rounds_created(until, 30)
    assert scheduler.expected_tasks(until.spec, 3, 1, 3) == 0  # open-ended


def test_spread_offsets_stay_in_the_window() -> None:
    offsets = scheduler.start_offsets(500, 7.0, random.Random(3))
    assert all(0 <= o <= 7.0 for o in offsets) and len(set(offsets)) > 400
    assert scheduler.start_offsets(3, 0, random.Random(3)) == [0.0, 0.0, 0.0]


def test_replacement_prefers_the_same_region() -> None:
    load = {"de-2": 5}
    assert scheduler.choose_replacement(AGENTS, "de", "de-1", load).agent_id == "de-3"  # type: ignore[union-attr]
    assert scheduler.choose_replacement(AGENTS[3:], "de", "de-1", {}).region == "ru"  # type: ignore[union-attr]
    assert scheduler.choose_replacement(AGENTS[:1], "de", "de-1", {}) is None
