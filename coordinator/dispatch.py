"""Dispatch as a pure function: which open tasks go to which agent now, which have run
out of time, and why the others wait. ``coordinator/core.py`` applies the plan.

Rules, in order, for each open task:

- pending past its deadline: failed (its reason says what it waited for);
- assigned, with no result ``reassign_after_s`` past its deadline: failed (the agent
  times a task out itself at the deadline; this is the backstop when no result comes);
- pending and due: sent to its agent when that agent is connected and has a free slot;
  an agent that declared ``concurrency`` N in its hello holds at most N assigned tasks,
  so no task queues on an agent past its deadline (N = 0, an agent that declared
  nothing, has no limit); a task that waited for a slot fails instead when less than
  ``MIN_TIME_LEFT`` (half) of its time is left by then;
- its agent gone: the task waits ``reassign_after_s`` for it (first attempt only), then
  goes to another connected agent that matches the job, same region first, least loaded,
  with a free slot.

Due tasks are taken earliest first, so when slots are short the oldest go first.

Canary tasks (a job of purpose "canary", coordinator/canary.py) have a lane of their own:
they hold no slot and wait for none (the agent runs them beside its job concurrency), so
an agent whose slots are all waiting on timeouts (a region cut off) still measures its
canaries. A canary is never reassigned: it is evidence about its own agent only.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field

from coordinator import scheduler
from coordinator.model import CANARY_PURPOSE, AgentInfo, JobSpec, Task, TaskState


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    expired: list[tuple[Task, str]] = field(default_factory=list)
    sends: list[tuple[Task, AgentInfo]] = field(default_factory=list)
    waiting: list[tuple[Task, str]] = field(default_factory=list)
    # agents with due tasks of their own held for a free slot
    short_of_slots: set[str] = field(default_factory=set)


_SLOT_WAIT = "waiting for a free slot"
# A task that waited at the coordinator for a free slot on its agent is sent when one
# frees only while at least this share of its time (due to deadline) is left; otherwise
# it fails here. Sent with less, a probe that needs its time (a download's max_seconds)
# would run into the deadline and read as generic_timeout: the agent's backlog taken for
# the network's slowness. A reassigned task (its agent gone) is sent with whatever is left.
MIN_TIME_LEFT = 0.5


def free_slots(agent: AgentInfo, load: Mapping[str, int]) -> float:
    if agent.concurrency <= 0:
        return float("inf")
    return agent.concurrency - load.get(agent.agent_id, 0)


def assigned_load(tasks: Iterable[Task], lane: Container[str] = ()) -> dict[str, int]:
    """Every agent's count of assigned tasks, but those of the jobs in ``lane`` (the
    canaries, which hold no slot)."""
    load: dict[str, int] = {}
    for task in tasks:
        if task.state is TaskState.ASSIGNED and task.job_id not in lane:
            load[task.agent_id] = load.get(task.agent_id, 0) + 1
    return load


def plan(
    tasks: Iterable[Task],
    now: float,
    *,
    connected: Mapping[str, AgentInfo],
    specs: Mapping[str, JobSpec],
    lost_at: Callable[[str], float | None],
    reassign_after_s: float,
    load: dict[str, int] | None = None,
) -> Plan:
    """What to do with ``tasks``. ``load`` (changed in place) is every agent's count of
    assigned tasks; by default it is counted from ``tasks``, which must then hold all the
    open tasks of the agents concerned."""
    out = Plan()
    due: list[Task] = []
    open_tasks = list(tasks)
    for task in open_tasks:
        if task.state is TaskState.PENDING and now >= task.deadline:
            out.expired.append((task, task.reason or "no agent before the deadline"))
        elif task.state is TaskState.ASSIGNED and now >= task.deadline + reassign_after_s:
            out.expired.append((task, "no result by the deadline"))
        elif task.state is TaskState.PENDING and now >= task.due_at:
            due.append(task)
    if not due:
        return out
    if load is None:
        load = assigned_load(open_tasks, {j for j, s in specs.items() if s.purpose == CANARY_PURPOSE})
    due.sort(key=lambda t: t.due_at)
    for task in due:
        agent = connected.get(task.agent_id)
        spec = specs.get(task.job_id)
        if spec is not None and spec.purpose == CANARY_PURPOSE:
            if agent is not None:
                out.sends.append((task, agent))  # its own lane: no slot taken or waited for
            continue  # never to another agent; it fails at its deadline if its agent is gone
        if agent is not None:
            window = task.deadline - task.due_at
            if task.reason.startswith(_SLOT_WAIT) and task.deadline - now < MIN_TIME_LEFT * window:
                out.expired.append(
                    (task, f"{task.reason}; a slot freed with {task.deadline - now:.1f} s of its "
                           f"{window:.0f} s left, too little to run in full")
                )  # fmt: skip
                continue
            if free_slots(agent, load) >= 1:
                out.sends.append((task, agent))
                load[agent.agent_id] = load.get(agent.agent_id, 0) + 1
            else:
                out.short_of_slots.add(agent.agent_id)
                out.waiting.append(
                    (task, f"{_SLOT_WAIT} on agent {agent.agent_id} "
                           f"(concurrency {agent.concurrency})")
                )  # fmt: skip
            continue
        lost = lost_at(task.agent_id)
        if task.attempts == 0 and lost is not None and now - lost < reassign_after_s:
            continue  # give its agent the grace period to come back
        spec = specs[task.job_id]
        matching = [a for a in connected.values() if scheduler.agent_matches(a, spec.selector, spec.kind)]
        free = [a for a in matching if free_slots(a, load) >= 1]
        replacement = scheduler.choose_replacement(free, task.region, task.agent_id, load)
        if replacement is None:
            others = any(a.agent_id != task.agent_id for a in matching)
            why = "no matching agent with a free slot" if others else "no matching agent connected"
            out.waiting.append((task, why))
            continue
        out.sends.append((task, replacement))
        load[replacement.agent_id] = load.get(replacement.agent_id, 0) + 1
    return out
