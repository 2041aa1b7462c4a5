"""The task and job life cycles: every transition in the tables, every one refused, and
what applying one changes besides the state."""

from __future__ import annotations

import pytest

from coordinator import jobs, tasks
from coordinator.jobs import JobEvent, JobTransitionError
from coordinator.model import Job, JobSpec, JobState, Task, TaskState
from coordinator.tasks import TaskEvent, TaskTransitionError

# ------------------------------------------------------------------ tasks

EXPECTED_TASK_TRANSITIONS = {
    (TaskState.PENDING, TaskEvent.DISPATCH): TaskState.ASSIGNED,
    (TaskState.PENDING, TaskEvent.DEADLINE): TaskState.FAILED,
    (TaskState.PENDING, TaskEvent.CANCEL): TaskState.CANCELLED,
    (TaskState.PENDING, TaskEvent.RESULT): TaskState.DONE,
    (TaskState.ASSIGNED, TaskEvent.RESULT): TaskState.DONE,
    (TaskState.ASSIGNED, TaskEvent.AGENT_LOST): TaskState.PENDING,
    (TaskState.ASSIGNED, TaskEvent.NOT_HELD): TaskState.PENDING,
    (TaskState.ASSIGNED, TaskEvent.DEADLINE): TaskState.FAILED,
    (TaskState.ASSIGNED, TaskEvent.CANCEL): TaskState.CANCELLED,
}


def task(state: TaskState = TaskState.PENDING, reason: str = "") -> Task:
    return Task(
        task_id="t-1", job_id="j", round=0, target="x:1", agent_id="a", region="r",
        state=state, due_at=0, deadline=10, reason=reason,
    )


def test_the_task_table_is_exactly_the_documented_life_cycle() -> None:
    assert tasks.TRANSITIONS == EXPECTED_TASK_TRANSITIONS


@pytest.mark.parametrize("state", list(TaskState))
@pytest.mark.parametrize("event", list(TaskEvent))
def test_each_task_event_moves_or_is_refused(state: TaskState, event: TaskEvent) -> None:
    t = task(state, reason="before")
    expected = EXPECTED_TASK_TRANSITIONS.get((state, event))
    if expected is None:
        with pytest.raises(TaskTransitionError) as err:
            tasks.apply(t, event, reason="after")
        assert str(err.value) == f"task t-1: no transition from {state} on {event}"
        assert err.value.task is t and err.value.event is event
        assert t.state is state and t.reason == "before", "a refused event changes nothing"
    else:
        assert tasks.apply(t, event) is expected
        assert t.state is expected
        assert t.reason == "before", "no reason given: the old one stays"


def test_a_task_transition_records_its_reason() -> None:
    t = task(TaskState.ASSIGNED, reason="old")
    assert tasks.apply(t, TaskEvent.AGENT_LOST, reason="agent a lost") is TaskState.PENDING
    assert t.reason == "agent a lost"


def test_finished_task_states_are_final() -> None:
    for state in TaskState:
        leaves = any(s is state for s, _ in tasks.TRANSITIONS)
        assert leaves is not state.finished, state
    assert {s for s in TaskState if s.finished} == {
        TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED,
    }


# ------------------------------------------------------------------ jobs

EXPECTED_JOB_TRANSITIONS = {
    (JobState.PENDING, JobEvent.ROUND): JobState.RUNNING,
    (JobState.RUNNING, JobEvent.ROUND): JobState.RUNNING,
    (JobState.PENDING, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.RUNNING, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.RUNNING, JobEvent.SUCCEEDED): JobState.DONE,
    (JobState.RUNNING, JobEvent.FAILED): JobState.FAILED,
    (JobState.PENDING, JobEvent.FAILED): JobState.FAILED,
}


def job(state: JobState = JobState.PENDING, *, done: int = 0, reason: str = "") -> Job:
    return Job(
        job_id="0123456789abcdef", spec=JobSpec(kind="tcp", targets=("h:1",)), state=state,
        created_at=100.0, next_round_at=100.0, tasks_done=done, reason=reason,
    )


def test_the_job_table_is_exactly_the_documented_life_cycle() -> None:
    assert jobs.TRANSITIONS == EXPECTED_JOB_TRANSITIONS


@pytest.mark.parametrize("state", list(JobState))
@pytest.mark.parametrize("event", list(JobEvent))
def test_each_job_event_moves_or_is_refused(state: JobState, event: JobEvent) -> None:
    j = job(state, reason="before")
    expected = EXPECTED_JOB_TRANSITIONS.get((state, event))
    if expected is None:
        with pytest.raises(JobTransitionError) as err:
            jobs.apply(j, event, now=200.0, reason="after")
        assert str(err.value) == f"job 0123456789abcdef: no transition from {state} on {event}"
        assert err.value.job is j and err.value.event is event
        assert (j.state, j.finished_at, j.reason) == (state, 0.0, "before")
    else:
        assert jobs.apply(j, event, now=200.0) is expected
        assert j.state is expected and j.reason == "before"
        assert j.finished_at == (200.0 if expected.finished else 0.0)


def test_finished_job_states_are_final() -> None:
    for state in JobState:
        leaves = any(s is state for s, _ in jobs.TRANSITIONS)
        assert leaves is not state.finished, state
    assert {s for s in JobState if s.finished} == {
        JobState.DONE, JobState.FAILED, JobState.CANCELLED,
    }


def test_a_job_finishes_done_with_any_result_and_failed_without() -> None:
    assert jobs.finished_event(job(JobState.RUNNING, done=0)) is JobEvent.FAILED
    assert jobs.finished_event(job(JobState.RUNNING, done=1)) is JobEvent.SUCCEEDED
    assert jobs.finished_event(job(JobState.RUNNING, done=7)) is JobEvent.SUCCEEDED


def test_a_job_transition_records_its_reason_and_when_it_ended() -> None:
    j = job(JobState.RUNNING, reason="round 2: no connected agent matched the selector")
    assert jobs.apply(j, JobEvent.CANCEL, now=250.5, reason="cancelled by request") is JobState.CANCELLED
    assert (j.reason, j.finished_at) == ("cancelled by request", 250.5)
    # A round keeps the job open: no end time.
    r = job(JobState.PENDING)
    jobs.apply(r, JobEvent.ROUND, now=120.0)
    assert (r.state, r.finished_at) == (JobState.RUNNING, 0.0)
