"""Dispatch (coordinator/dispatch.py): pure planning, and the coordinator honouring each
agent's declared concurrency, so tasks wait at the coordinator, not past their deadline
in an agent's queue."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from coordinator import dispatch
from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.model import (
    AgentInfo,
    Assignment,
    JobSpec,
    ProbeResultData,
    Selector,
    Task,
    TaskResultData,
    TaskState,
)
from coordinator.registry import Session
from coordinator.store import SQLiteStore

T0 = 1_000_000.0
SPECS = {"j": JobSpec(kind="tcp", targets=("h:1",))}


def agent(agent_id: str, region: str = "de", concurrency: int = 0) -> AgentInfo:
    return AgentInfo(agent_id=agent_id, region=region, kinds=("tcp",), concurrency=concurrency)


def task(n: int, agent_id: str = "a", *, due: float = T0, state: TaskState = TaskState.PENDING,
         attempts: int = 0, deadline: float = T0 + 30) -> Task:  # fmt: skip
    return Task(task_id=f"t{n}", job_id="j", round=0, target="h:1", agent_id=agent_id, region="de",
                state=state, due_at=due, deadline=deadline, attempts=attempts)  # fmt: skip


def plan(tasks: list[Task], agents: list[AgentInfo], now: float = T0, lost: dict[str, float] | None = None) -> dispatch.Plan:
    return dispatch.plan(
        tasks, now, connected={a.agent_id: a for a in agents}, specs=SPECS,
        lost_at=(lost or {}).get, reassign_after_s=10.0,
    )  # fmt: skip


def test_an_agent_gets_at_most_its_concurrency_earliest_due_first() -> None:
    tasks = [task(n, due=T0 - n) for n in range(5)]  # t4 is the most overdue
    p = plan(tasks, [agent("a", concurrency=2)])
    assert [t.task_id for t, _ in p.sends] == ["t4", "t3"]
    assert [t.task_id for t, _ in p.waiting] == ["t2", "t1", "t0"]
    assert all(why == "waiting for a free slot on agent a (concurrency 2)" for _, why in p.waiting)
    assert p.short_of_slots == {"a"}
    assert plan(tasks, [agent("a", concurrency=5)]).short_of_slots == set()


def test_a_task_that_waited_for_a_slot_fails_when_too_little_of_its_time_is_left() -> None:
    """Sent with less than half its time, a download would run into its deadline and read
    as the network's timeout; it fails at the coordinator instead, naming the slot."""
    waited = dataclasses.replace(task(1, due=T0, deadline=T0 + 11),
                                 reason="waiting for a free slot on agent a (concurrency 1)")  # fmt: skip
    fresh = task(2, due=T0 + 5, deadline=T0 + 16)
    p = plan([waited, fresh], [agent("a", concurrency=1)], now=T0 + 6)
    assert [t.task_id for t, _ in p.sends] == ["t2"]
    ((expired, why),) = p.expired
    assert expired.task_id == "t1"
    assert why == ("waiting for a free slot on agent a (concurrency 1); a slot freed with 5.0 s "
                   "of its 11 s left, too little to run in full")  # fmt: skip
    # with more than half left it goes; a task that never waited goes with any time left
    assert [t.task_id for t, _ in plan([waited], [agent("a", concurrency=1)], now=T0 + 5).sends] == ["t1"]
    late = task(3, due=T0, deadline=T0 + 11)
    assert [t.task_id for t, _ in plan([late], [agent("a", concurrency=1)], now=T0 + 10).sends] == ["t3"]


def test_assigned_tasks_hold_their_slots_and_zero_means_no_limit() -> None:
    running = [task(n, state=TaskState.ASSIGNED) for n in range(3)]
    due = [task(n) for n in range(3, 6)]
    assert [t.task_id for t, _ in plan(running + due, [agent("a", concurrency=4)]).sends] == ["t3"]
    assert len(plan(running + due, [agent("a", concurrency=0)]).sends) == 3


def test_deadlines_fail_pending_and_silent_assigned_tasks() -> None:
    late = task(1, deadline=T0 - 1)
    late.reason = "waiting for a free slot on agent a (concurrency 1)"
    silent = task(2, state=TaskState.ASSIGNED, deadline=T0 - 10)
    still_running = task(3, state=TaskState.ASSIGNED, deadline=T0 - 9)
    p = plan([late, silent, still_running], [agent("a")])
    assert p.expired == [(late, late.reason), (silent, "no result by the deadline")]
    assert p.sends == []


def test_a_lost_agents_task_waits_its_grace_then_goes_to_a_free_agent_same_region_first() -> None:
    t = task(1, agent_id="gone")
    agents = [agent("us-1", "us"), agent("de-busy", "de", concurrency=1), agent("de-2", "de")]
    busy = task(9, agent_id="de-busy", state=TaskState.ASSIGNED)
    assert plan([t, busy], agents, lost={"gone": T0 - 5}).sends == []  # in its grace
    [(sent, to)] = plan([t, busy], agents, lost={"gone": T0 - 10}).sends
    assert sent is t and to.agent_id == "de-2"  # same region, and de-busy has no slot
    [(_, to)] = plan([t, busy], agents[:2], lost={"gone": T0 - 10}).sends
    assert to.agent_id == "us-1"  # no free agent in de: another region
    p = plan([t, busy], agents[1:2], lost={"gone": T0 - 10})
    assert p.waiting == [(t, "no matching agent with a free slot")]
    p = plan([t], [], lost={"gone": T0 - 10})
    assert p.waiting == [(t, "no matching agent connected")]


def test_the_deadline_itself_is_too_late_and_a_task_without_a_reason_says_why() -> None:
    p = plan([task(1, deadline=T0)], [agent("a")])
    assert p.expired == [(p.expired[0][0], "no agent before the deadline")] and p.sends == []


def test_a_task_waiting_does_not_hold_up_the_tasks_after_it() -> None:
    in_grace = task(1, agent_id="gone", due=T0 - 3)
    orphan = task(2, agent_id="gone2", due=T0 - 2)  # nowhere to go: waits
    ready = task(3, agent_id="a", due=T0 - 1)
    p = plan([in_grace, orphan, ready], [agent("a", "us", concurrency=1)], lost={"gone": T0 - 5, "gone2": T0 - 60})
    # the task in its grace is passed over; the orphan, due first, takes a's one slot; the
    # task after it is still considered, and waits for the slot
    assert [t.task_id for t, _ in p.sends] == ["t2"]
    assert [t.task_id for t, _ in p.waiting] == ["t3"]
    # an orphan with nowhere to go does not hold up the next task either
    nowhere = dataclasses.replace(task(4, agent_id="gone2", due=T0 - 9), job_id="only-xx")
    specs = {**SPECS, "only-xx": JobSpec(kind="tcp", targets=("h:1",), selector=Selector(regions=("xx",)))}
    p = dispatch.plan([nowhere, task(5, due=T0)], T0, connected={"a": agent("a")}, specs=specs,
                      lost_at={"gone2": T0 - 60}.get, reassign_after_s=10.0)  # fmt: skip
    assert [t.task_id for t, _ in p.sends] == ["t5"] and [t.task_id for t, _ in p.waiting] == ["t4"]


def test_replacements_take_the_last_free_slot_and_spread_over_free_agents() -> None:
    lost = {"gone": T0 - 60}
    one_slot = agent("z-de", "de", concurrency=1)
    [(_, to)] = plan([task(1, agent_id="gone")], [one_slot], lost=lost).sends
    assert to is one_slot, "an agent with exactly one free slot takes the task"
    # same region first even when another region's agent sorts before it
    [(_, to)] = plan([task(1, agent_id="gone")], [agent("a-us", "us"), one_slot], lost=lost).sends
    assert to is one_slot
    # two orphans, two free agents of the region: one each (the plan counts what it sends)
    p = plan([task(1, agent_id="gone"), task(2, agent_id="gone")], [agent("d1"), agent("d2")], lost=lost)
    assert sorted(a.agent_id for _, a in p.sends) == ["d1", "d2"]
    p = plan([task(1, agent_id="gone"), task(2, agent_id="gone"), task(3, agent_id="gone")],
             [agent("d1", concurrency=1), agent("d2", concurrency=1)], lost=lost)  # fmt: skip
    assert sorted(a.agent_id for _, a in p.sends) == ["d1", "d2"] and len(p.waiting) == 1
    # the load counts what each agent already runs, one more per task sent
    orphans = [task(n, agent_id="gone") for n in range(1, 4)]
    busy = task(9, agent_id="d1", state=TaskState.ASSIGNED)
    p = plan([*orphans, busy], [agent("d1"), agent("d2")], lost=lost)
    assert [a.agent_id for _, a in p.sends] == ["d2", "d1", "d2"]
    p = plan(orphans, [agent("d1", concurrency=2), agent("d2", concurrency=2)], lost=lost)
    assert [a.agent_id for _, a in p.sends] == ["d1", "d2", "d1"] and p.waiting == []


def test_a_replacement_must_match_the_jobs_selector() -> None:
    specs = {"j": JobSpec(kind="tcp", targets=("h:1",), selector=Selector(regions=("de",)))}
    p = dispatch.plan([task(1, agent_id="gone")], T0, connected={"us-1": agent("us-1", "us")}, specs=specs,
                      lost_at=lambda _: None, reassign_after_s=10.0)  # fmt: skip
    assert p.sends == [] and p.waiting[0][1] == "no matching agent connected"


# ---------------------------------------------------------------- the coordinator applies it


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[Coordinator]:
    store = SQLiteStore(tmp_path / "v.db")
    c = Coordinator(store, Analyzer(AnalysisConfig()), CoordinatorConfig(), clock=Clock())
    yield c
    await c.flush()
    await store.close()


def assignments(session: Session) -> list[str]:
    out = []
    while not session.outgoing.empty():
        m = session.outgoing.get_nowait()
        if isinstance(m, Assignment):
            out.append(m.task_id)
    return out


def ok(task_id: str, job_id: str) -> TaskResultData:
    return TaskResultData(
        task_id=task_id, job_id=job_id, agent_id="a", started_at=T0, finished_at=T0 + 0.1,
        result=ProbeResultData(kind="tcp", target="h:1", failure="", failure_detail="", duration_s=0.1, data={}),
    )  # fmt: skip


async def test_a_result_frees_a_slot_and_the_next_task_goes_at_once(core: Coordinator) -> None:
    session = core.agent_connected(agent("a", concurrency=2), "ipv4:127.0.0.1:1", [])
    job = await core.submit_job(JobSpec(kind="tcp", targets=tuple(f"h{n}.example:1" for n in range(5))))
    first = assignments(session)
    assert len(first) == 2, "two slots, two tasks sent"
    waiting = [t for t in core.book.tasks.values() if t.state is TaskState.PENDING]
    assert len(waiting) == 3 and all("free slot" in t.reason for t in waiting)
    out = await core.ingest(session, [ok(first[0], job.job_id)])
    assert out.acked == (first[0],)
    # no tick in between: the freed slot was filled when the result was committed
    assert len(assignments(session)) == 1
    assert sum(t.state is TaskState.ASSIGNED for t in core.book.tasks.values()) == 2


async def test_each_busy_agent_gets_its_next_task_when_its_own_result_lands(core: Coordinator) -> None:
    a = core.agent_connected(agent("a", concurrency=1), "ipv4:127.0.0.1:1", [])
    b = core.agent_connected(agent("b", "us", concurrency=1), "ipv4:127.0.0.1:2", [])
    job = await core.submit_job(JobSpec(kind="tcp", targets=("h0.example:1", "h1.example:1", "h2.example:1")))
    [first_a], [first_b] = assignments(a), assignments(b)
    await core.ingest(a, [ok(first_a, job.job_id)])
    [second_a] = assignments(a)
    assert assignments(b) == [], "b's slot is still taken"
    await core.ingest(b, [dataclasses.replace(ok(first_b, job.job_id), agent_id="b")])
    assert len(assignments(b)) == 1, "b's freed slot is filled at once too, not at the next tick"
    assert second_a != first_a
