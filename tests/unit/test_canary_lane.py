"""Canaries never starve: a lane of their own at the coordinator's dispatch (no slot held
or waited for, never reassigned) and at the agent's runner (outside its concurrency)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from agent.outbox import Outbox
from agent.probes.base import Limits, ProbeOutcome
from agent.runner import Assignment, Runner
from coordinator import dispatch
from coordinator.model import CANARY_PURPOSE, JobSpec, TaskState
from protos.vantage.v1 import vantage_pb2 as pb
from tests.fakes import REAL_WAIT_S, FakeClock
from tests.unit.test_dispatch import T0, agent, task

SPECS = {"j": JobSpec(kind="tcp", targets=("h:1",)),
         "c": JobSpec(kind="http", targets=("http://canary.example/",), purpose=CANARY_PURPOSE)}  # fmt: skip


def canary(n: int, agent_id: str = "a", **kw: Any) -> Any:
    return dataclasses.replace(task(n, agent_id, **kw), job_id="c", target="http://canary.example/")


def _plan(tasks: list[Any], agents: list[Any], lost: dict[str, float] | None = None) -> dispatch.Plan:
    return dispatch.plan(tasks, T0, connected={a.agent_id: a for a in agents}, specs=SPECS,
                         lost_at=(lost or {}).get, reassign_after_s=10.0)  # fmt: skip


def test_a_canary_goes_to_an_agent_whose_every_slot_is_taken_and_takes_none() -> None:
    busy = [task(n, state=TaskState.ASSIGNED) for n in range(2)]
    due = [task(5), canary(6)]
    p = _plan([*busy, *due], [agent("a", concurrency=2)])
    assert [t.task_id for t, _ in p.sends] == ["t6"]  # the canary, though no slot is free
    assert [t.task_id for t, _ in p.waiting] == ["t5"]
    # an assigned canary holds no slot
    load = dispatch.assigned_load([canary(7, state=TaskState.ASSIGNED), *busy[:1]], {"c"})
    assert load == {"a": 1}


def test_a_canary_is_never_reassigned_to_another_agent() -> None:
    p = _plan([canary(1, "gone")], [agent("b", concurrency=4)], lost={"gone": T0 - 60})
    assert p.sends == [] and p.expired == []  # it fails at its deadline, not elsewhere


class Blocking:
    """A probe that runs until released; canaries (their target) return at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.canaries = 0

    async def __call__(self, spec: Any, limits: Limits) -> ProbeOutcome:
        if "canary" in spec.target:
            self.canaries += 1
        else:
            await self.release.wait()
        return ProbeOutcome(kind=spec.kind, target=spec.target, failure=None)


async def test_the_agent_runs_a_canary_while_every_job_slot_waits(tmp_path: Path) -> None:
    clock, probe = FakeClock(), Blocking()
    done: list[str] = []
    got = asyncio.Event()

    def reported(task_id: str) -> None:
        done.append(task_id)
        got.set()

    outbox = Outbox(tmp_path / "outbox")
    outbox.load()
    runner = Runner(agent_id="a", limits=Limits(allow_private_targets=True), outbox=outbox,
                    concurrency=1, on_result=reported, clock=clock, probe=probe)  # fmt: skip
    stop = asyncio.Event()
    run = asyncio.create_task(runner.run(stop))
    await runner.ready.wait()
    now = clock.time()
    job = Assignment(task_id="j1-0-0-aaaa", job_id="j1", kind="tcp", target="192.0.2.1:80", options={},
                     not_before=now, deadline=now + 60)  # fmt: skip
    assert runner.submit(job)
    msg = pb.TaskAssignment(task_id="c1-0-0-bbbb", job_id="c1", kind="http", target="http://canary.example/",
                            not_before=now, deadline=now + 5, canary=True)  # fmt: skip
    assert runner.submit(Assignment.from_pb(msg))
    async with asyncio.timeout(REAL_WAIT_S):
        await got.wait()
    assert done == ["c1-0-0-bbbb"] and probe.canaries == 1  # the job still holds the one slot
    probe.release.set()
    stop.set()
    await asyncio.wait_for(run, REAL_WAIT_S)
