"""Runs assigned tasks: at most ``concurrency`` at once, each started no earlier than its
``not_before``, stopped at its deadline, cancellable; every finished task's result goes
to the outbox first (durable), then to whoever sends it.

Tasks outlive the stream that brought them: a reconnect does not stop running probes.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from agent.budget import HourlyBytes, moved, reservation
from agent.clock import Clock, SystemClock, wait_event
from agent.outbox import Outbox
from agent.probes import failures as f
from agent.probes import parse_spec, run_probe
from agent.probes.base import TASK_BUDGET_S, Limits, ProbeOutcome, SpecError
from common.ids import is_assigned_job_id, is_assigned_task_id
from protos.results import probe_result_to_pb
from protos.vantage.v1 import vantage_pb2 as pb

log = structlog.get_logger("vantage.agent")

# How a parsed spec is run: agent.probes.run_probe, or a fake in the runner's tests.
ProbeFn = Callable[[Any, Limits], Awaitable[ProbeOutcome]]

# A task that began this many seconds after it could have (its not_before, or its
# arrival when that was later) waited for a free slot on this agent; if its deadline then
# passes during the probe, the agent's queue ate the time (agent_deadline_missed, not
# evidence), not the network (generic_timeout).
LATE_START_S = 1.0
# Canary tasks run at once in a lane of this many, outside the job concurrency: one per
# canary URL the coordinator may have (coordinator/canary.py MAX_CANARIES), each a small
# page with a timeout of at most 5 s every 10 s. A smaller lane made a cut-off region's
# canaries wait behind each other's timeouts and miss their deadlines.
CANARY_LANE = 8


@dataclass(frozen=True, kw_only=True)
class Assignment:
    task_id: str
    job_id: str
    kind: str
    target: str
    options: dict[str, str]
    not_before: float
    deadline: float
    canary: bool = False  # the coordinator's canary: runs in its own lane (CANARY_LANE)

    @classmethod
    def from_pb(cls, m: pb.TaskAssignment) -> Assignment:
        return cls(
            task_id=m.task_id,
            job_id=m.job_id,
            kind=m.kind,
            target=m.target,
            options=dict(m.options),
            not_before=m.not_before,
            deadline=m.deadline,
            canary=m.canary,
        )


class Runner:
    def __init__(
        self,
        *,
        agent_id: str,
        limits: Limits,
        outbox: Outbox,
        concurrency: int,
        on_result: Callable[[str], None],
        clock: Clock | None = None,
        probe: ProbeFn = run_probe,
        byte_budget: HourlyBytes | None = None,
    ) -> None:
        self.agent_id = agent_id
        self.byte_budget = byte_budget  # --max-bytes-per-hour (agent/budget.py)
        self.limits = limits
        self.outbox = outbox
        self.on_result = on_result
        self.clock: Clock = clock or SystemClock()
        self._probe_fn = probe
        self._slots = asyncio.Semaphore(concurrency)
        # Canaries run beside the job concurrency, never waiting for its slots: when the
        # agent's network dies its tasks wait out their timeouts in every slot, and the
        # canaries are what must still say so (docs/detection.md, "Canaries never starve").
        self._lane = asyncio.Semaphore(CANARY_LANE)
        self._running: dict[str, asyncio.Task[None]] = {}
        self._group: asyncio.TaskGroup | None = None
        self.completed = 0
        self.accepting = True
        self._idle = asyncio.Event()
        self._idle.set()
        self.ready = asyncio.Event()  # run() has started: submit() takes tasks from now on

    def held_task_ids(self) -> list[str]:
        return [*self._running, *self.outbox.task_ids()]

    @property
    def running(self) -> int:
        return len(self._running)

    async def run(self, stop: asyncio.Event) -> None:
        """Own the tasks' lifetimes until ``stop``; then wait for the running ones."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            self.ready.set()
            await stop.wait()
            self._group = None
            self.ready.clear()
            for task in list(self._running.values()):
                task.cancel()

    async def wait_idle(self, limit_s: float) -> bool:
        """Wait (at most ``limit_s``) until no task runs; True when idle."""
        return await wait_event(self.clock, self._idle, limit_s)

    def submit(self, assignment: Assignment) -> bool:
        if self._group is None or not self.accepting:
            return False
        # Task ids name the outbox files and job ids go into results and log lines:
        # anything unsafe is refused before it touches the disk (common.ids).
        if not is_assigned_task_id(assignment.task_id):
            log.warning("assignment_refused", reason="malformed task id")
            return False
        if not is_assigned_job_id(assignment.job_id):
            log.warning("assignment_refused", reason="malformed job id", task_id=assignment.task_id)
            return False
        if not (math.isfinite(assignment.not_before) and math.isfinite(assignment.deadline)):
            log.warning(
                "assignment_refused",
                reason="not_before or deadline is not a time",
                task_id=assignment.task_id,
            )
            return False
        if assignment.task_id in self._running or assignment.task_id in self.outbox:
            return False  # a re-sent assignment: already running or done
        task = self._group.create_task(self._run_task(assignment))
        self._running[assignment.task_id] = task
        self._idle.clear()
        return True

    def cancel(self, task_id: str) -> bool:
        task = self._running.get(task_id)
        if task is None:
            return False
        task.cancel()
        return True

    async def _run_task(self, a: Assignment) -> None:
        bind = structlog.contextvars.bound_contextvars
        with bind(task_id=a.task_id, job_id=a.job_id):
            try:
                queued = self.clock.time()
                async with self._lane if a.canary else self._slots:
                    delay = a.not_before - self.clock.time()
                    if delay > 0:
                        await self.clock.sleep(delay)
                    started = self.clock.time()
                    # time lost waiting for a slot on this agent (not the coordinator's
                    # late dispatch: counted from when the task got here)
                    late = started - max(queued, a.not_before) > LATE_START_S
                    outcome = await self._probe(a, late=late)
                    finished = self.clock.time()
                result = pb.TaskResult(
                    task_id=a.task_id,
                    job_id=a.job_id,
                    agent_id=self.agent_id,
                    started_at=started,
                    finished_at=finished,
                    result=wire_result(outcome),
                )
                await self.outbox.put(a.task_id, result.SerializeToString())
                self.completed += 1
                if outcome.failure in f.AGENT_ERRORS:
                    log.warning(
                        "task_not_run",
                        failure=outcome.failure,
                        kind=a.kind,
                        detail=outcome.failure_detail,
                    )
                elif outcome.failure:
                    log.info("task_measured_failure", failure=outcome.failure, kind=a.kind)
                self.on_result(a.task_id)
            except asyncio.CancelledError:
                log.info("task_cancelled")
            except Exception as exc:
                # Whatever else goes wrong with one task (its result cannot be encoded or
                # stored) is logged; the runner and the other tasks go on.
                log.error("task_crashed", error=repr(exc)[:300], kind=a.kind)
            finally:
                self._running.pop(a.task_id, None)
                if not self._running:
                    self._idle.set()

    async def _probe(self, a: Assignment, *, late: bool = False) -> ProbeOutcome:
        """Run one task's probe within its deadline. Outcomes where the agent could not
        run the task carry an ``agent_*`` class (``failures.AGENT_ERRORS``): the deadline
        passed before it started (or, for a task that had to wait for a slot, during
        it), the spec is one this agent cannot run, or the probe crashed."""
        remaining = a.deadline - self.clock.time()
        if remaining <= 0:
            return ProbeOutcome(
                kind=a.kind,
                target=a.target,
                failure=f.AGENT_DEADLINE_MISSED,
                failure_detail="the task's deadline passed before it could start "
                "(the agent was busy)",
            )
        try:
            spec = parse_spec(a.kind, a.target, a.options, self.limits)
        except SpecError as exc:
            return ProbeOutcome(
                kind=a.kind,
                target=a.target,
                failure=f.AGENT_SPEC_ERROR,
                failure_detail=f"the agent could not run this task: {exc}",
            )
        except Exception as exc:  # a parser bug must not end the runner (and every task)
            log.error("spec_parser_crashed", error=repr(exc)[:300], kind=a.kind)
            return ProbeOutcome(
                kind=a.kind,
                target=a.target,
                failure=f.AGENT_INTERNAL_ERROR,
                failure_detail=f"the agent could not parse this task: {type(exc).__name__}",
            )
        held = reservation(spec) if self.byte_budget is not None else 0
        if held and self.byte_budget is not None:
            now = self.clock.monotonic()
            if not self.byte_budget.reserve(held, now):
                left = max(0, self.byte_budget.per_hour - self.byte_budget.used(now))
                return ProbeOutcome(
                    kind=a.kind,
                    target=a.target,
                    failure=f.AGENT_RESOURCE_ERROR,
                    failure_detail=f"the agent's hourly byte budget ({self.byte_budget.per_hour} bytes, "
                    f"--max-bytes-per-hour) has {left} left; this task may move {held}",
                )
        outcome: ProbeOutcome | None = None
        try:
            outcome = await self._run_spec(a, spec, remaining, late=late)
            return outcome
        finally:
            if held and self.byte_budget is not None:
                said = moved(outcome.data) if outcome is not None else None
                self.byte_budget.settle(held, held if said is None else said, self.clock.monotonic())

    async def _run_spec(self, a: Assignment, spec: Any, remaining: float, *, late: bool) -> ProbeOutcome:
        t0 = self.clock.monotonic()
        try:
            budget = TASK_BUDGET_S.set(remaining)
            try:
                async with self.clock.timeout(remaining):
                    return await self._probe_fn(spec, self.limits)
            finally:
                TASK_BUDGET_S.reset(budget)
        except TimeoutError:
            if late:
                return ProbeOutcome(
                    kind=a.kind,
                    target=a.target,
                    failure=f.AGENT_DEADLINE_MISSED,
                    failure_detail=f"the task waited for a free slot and then had only "
                    f"{remaining:.1f} s before its deadline",
                    duration_s=self.clock.monotonic() - t0,
                )
            return ProbeOutcome(
                kind=a.kind,
                target=a.target,
                failure=f.GENERIC_TIMEOUT,
                failure_detail="the task's deadline passed",
                duration_s=self.clock.monotonic() - t0,
            )
        except SpecError as exc:  # found only when the probe ran (e.g. a ca_file refused)
            return ProbeOutcome(
                kind=a.kind,
                target=a.target,
                failure=f.AGENT_SPEC_ERROR,
                failure_detail=f"the agent could not run this task: {exc}",
                duration_s=self.clock.monotonic() - t0,
            )
        except Exception as exc:
            # A probe that could not run at all (e.g. a crashed parser of a response) is this task's
            # result, never the agent's end: the other tasks keep running.
            log.warning("probe_could_not_run", error=str(exc), kind=a.kind)
            failure = f.classify(exc)
            return ProbeOutcome(
                kind=a.kind,
                target=a.target,
                failure=failure if failure in f.AGENT_ERRORS else f.AGENT_INTERNAL_ERROR,
                failure_detail=f"the probe could not run: {exc}",
                duration_s=self.clock.monotonic() - t0,
            )


def wire_result(outcome: ProbeOutcome) -> pb.ProbeResult:
    """The outcome as the wire's typed ProbeResult. A probe whose data does not fit the
    contract is the agent's bug: the task is reported as ``agent_internal_error`` saying
    which field (and logged), never lost and never read as evidence about the target."""
    try:
        return probe_result_to_pb(
            kind=outcome.kind, target=outcome.target, failure=outcome.failure,
            failure_detail=outcome.failure_detail, duration_s=outcome.duration_s,
            data=outcome.data,
        )  # fmt: skip
    except ValueError as exc:
        log.error("probe_result_off_contract", kind=outcome.kind, error=str(exc)[:300])
        return probe_result_to_pb(
            kind=outcome.kind, target=outcome.target, failure=f.AGENT_INTERNAL_ERROR,
            failure_detail=f"the probe's result does not fit the wire contract: {exc}"[:1024],
            duration_s=outcome.duration_s, data={},
        )  # fmt: skip
