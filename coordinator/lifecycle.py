"""Jobs and their open tasks in memory, and the job life cycle on them.

``Book`` holds every job (finished ones stay for queries until ``--retain`` drops them),
the unfinished ones each tick looks at, and the open tasks. Its methods change that state
by the transition tables (``coordinator/jobs.py``, ``coordinator/tasks.py``) and return
the store changes that record it; they never touch a socket or the store themselves.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence

import structlog

from coordinator import jobs as job_states
from coordinator import scheduler
from coordinator.jobs import JobEvent
from coordinator.model import AgentInfo, Job, JobSpec, JobState, Task, TaskState
from coordinator.store import Change, JobProgress, PutTask, TaskProgress
from coordinator.tasks import TaskEvent, apply

log = structlog.get_logger("vantage.coordinator")


class Book:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.open_jobs: dict[str, Job] = {}
        self.tasks: dict[str, Task] = {}

    def restore(self, jobs: Sequence[Job], tasks: Sequence[Task]) -> None:
        for job in jobs:
            self.add(job)
        for task in tasks:
            if task.job_id in self.jobs:
                self.tasks[task.task_id] = task

    def add(self, job: Job) -> None:
        self.jobs[job.job_id] = job
        if not job.state.finished:
            self.open_jobs[job.job_id] = job

    @staticmethod
    def new_job(spec: JobSpec, now: float, *, per_round: int = 0) -> Job:
        job = Job(
            job_id=uuid.uuid4().hex[:16], spec=spec, state=JobState.PENDING, created_at=now,
            next_round_at=now,
        )  # fmt: skip
        job.tasks_expected = scheduler.expected_tasks(spec, per_round, 0, 0)
        return job

    def tasks_of(self, job_id: str) -> list[Task]:
        return [t for t in self.tasks.values() if t.job_id == job_id]

    def cancel(self, job_id: str, now: float) -> tuple[list[Task], list[Change]]:
        """Cancel the job and its open tasks; returns the tasks that were assigned (their
        agents are told) and the changes. A task whose result is being committed right
        now is left to land."""
        job = self.jobs[job_id]
        assigned: list[Task] = []
        changes: list[Change] = []
        for task in self.tasks_of(job_id):
            if task.state is TaskState.DONE:
                continue
            if task.state is TaskState.ASSIGNED:
                assigned.append(task)
            apply(task, TaskEvent.CANCEL, reason="job cancelled")
            changes.append(TaskProgress.of(task))
            del self.tasks[task.task_id]
        job_states.apply(job, JobEvent.CANCEL, now=now, reason="cancelled by request")
        self.open_jobs.pop(job_id, None)
        changes.append(JobProgress.of(job))
        return assigned, changes

    def create_round(
        self, job: Job, agents: Sequence[AgentInfo], now: float, rng: random.Random
    ) -> list[Change]:
        spec = job.spec
        round_at = job.next_round_at
        round_no = job.rounds_done
        offsets = scheduler.start_offsets(len(agents) * len(spec.targets), spec.spread_s, rng)
        timeout = scheduler.task_timeout(spec)
        changes: list[Change] = []
        i = 0
        for agent in agents:
            for target in spec.targets:
                due = max(round_at, now) + offsets[i]
                task = Task(
                    # job, round, index, and a random tag in case a round is created
                    # again after a crash that lost it; a reassigned task keeps its id
                    task_id=f"{job.job_id}-{round_no}-{i}-{rng.getrandbits(32):08x}",
                    job_id=job.job_id, round=round_no, target=target, agent_id=agent.agent_id,
                    region=agent.region, state=TaskState.PENDING, due_at=due,
                    deadline=due + timeout,
                )  # fmt: skip
                i += 1
                self.tasks[task.task_id] = task
                changes.append(PutTask.of(task))
        job.rounds_done += 1
        job.tasks_created += len(agents) * len(spec.targets)
        job_states.apply(job, JobEvent.ROUND, now=now)
        if not agents:
            job.reason = f"round {round_no + 1}: no connected agent matched the selector"
            log.warning("round_without_agents", job_id=job.job_id, round=round_no + 1)
        if spec.periodic:
            job.next_round_at = scheduler.next_round_at(job, now)
        job.tasks_expected = scheduler.expected_tasks(
            spec, len(agents) * len(spec.targets), job.rounds_done, job.tasks_created
        )
        changes.append(JobProgress.of(job))
        return changes

    def fail_task(self, task: Task, reason: str) -> list[Change]:
        apply(task, TaskEvent.DEADLINE, reason=reason)
        job = self.jobs[task.job_id]
        job.tasks_failed += 1
        self.tasks.pop(task.task_id, None)
        log.warning(
            "task_failed", task_id=task.task_id, job_id=task.job_id, agent_id=task.agent_id,
            reason=task.reason,
        )  # fmt: skip
        return [TaskProgress.of(task), JobProgress.of(job)]

    def finish_jobs(self, now: float) -> tuple[list[Job], list[Change]]:
        """End the jobs whose rounds are all created and whose tasks all ended."""
        busy = {t.job_id for t in self.tasks.values()}
        ended: list[Job] = []
        changes: list[Change] = []
        for job in list(self.open_jobs.values()):
            if job.job_id in busy or not scheduler.all_rounds_created(job, now):
                continue
            event = job_states.finished_event(job)
            why = (job.reason or "no task produced a result") if event is JobEvent.FAILED else ""
            job_states.apply(job, event, now=now, reason=why)
            job.tasks_expected = job.tasks_created
            del self.open_jobs[job.job_id]
            changes.append(JobProgress.of(job))
            ended.append(job)
            log.info(
                "job_finished", job_id=job.job_id, state=job.state.value,
                done=job.tasks_done, failed=job.tasks_failed,
            )  # fmt: skip
        return ended, changes

    def forget_finished(self, before: float) -> int:
        """Drop finished jobs that ended before ``before`` (``--retain``)."""
        old = [j.job_id for j in self.jobs.values() if j.state.finished and 0 < j.finished_at < before]
        for job_id in old:
            del self.jobs[job_id]
        return len(old)
