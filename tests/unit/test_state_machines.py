"""The task and job life cycles: every transition in the tables, every one refused, and
what applying one changes besides the state."""

from __future__ import annotations

import pytest

from coordinator import jobs, tasks
from coordinator.jobs import JobEvent, JobTransitionError
from coordinator.model import Job, JobSpec, JobState, Task, TaskState
from coordinator.tasks import TaskEvent, TaskTransitionError

# ------------------------------------------------------------------ tasks

# The documented life cycle (the module docstring's diagram), as the moves each event
# makes from each state: the tests below drive ``tasks.apply`` with every (state, event)
# pair and check what it does, never the module's table itself.
TASK_MOVES = {
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


def test_a_task_lives_its_documented_life_cycle() -> None:
    """dispatched, lost with its agent, dispatched again, and done; then nothing moves it."""
    t = task()
    for event, state in (
        (TaskEvent.DISPATCH, TaskState.ASSIGNED), (TaskEvent.AGENT_LOST, TaskState.PENDING),
        (TaskEvent.DISPATCH, TaskState.ASSIGNED), (TaskEvent.NOT_HELD, TaskState.PENDING),
        (TaskEvent.DISPATCH, TaskState.ASSIGNED), (TaskEvent.RESULT, TaskState.DONE),
    ):  # fmt: skip
        assert tasks.apply(t, event) is state and t.state is state, (event, state)
    for event in TaskEvent:
        with pytest.raises(TaskTransitionError):
            tasks.apply(t, event)
        assert t.state is TaskState.DONE


@pytest.mark.parametrize("state", list(TaskState))
@pytest.mark.parametrize("event", list(TaskEvent))
def test_each_task_event_moves_or_is_refused(state: TaskState, event: TaskEvent) -> None:
    t = task(state, reason="before")
    expected = TASK_MOVES.get((state, event))
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


@pytest.mark.parametrize("state", list(TaskState))
def test_a_finished_task_has_no_way_out_and_an_open_one_has(state: TaskState) -> None:
    """Driven through ``apply``: every event from a final state is refused and leaves the
    task as it was; from an open state some event moves it."""
    moved = []
    for event in TaskEvent:
        t = task(state, reason="before")
        try:
            moved.append(tasks.apply(t, event, reason="after"))
        except TaskTransitionError:
            assert (t.state, t.reason) == (state, "before")
    assert (moved == []) is state.finished, (state, moved)
    assert {s for s in TaskState if s.finished} == {
        TaskState.DONE, TaskState.FAILED, TaskState.CANCELLED,
    }


# ------------------------------------------------------------------ jobs

# As for tasks: the documented moves, checked only by driving ``jobs.apply``.
JOB_MOVES = {
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


def test_a_job_lives_its_documented_life_cycle() -> None:
    """created, round after round, done; then nothing moves it, a cancel included."""
    j = job()
    for event, state in ((JobEvent.ROUND, JobState.RUNNING), (JobEvent.ROUND, JobState.RUNNING),
                         (JobEvent.SUCCEEDED, JobState.DONE)):  # fmt: skip
        assert jobs.apply(j, event, now=300.0) is state and j.state is state, (event, state)
    assert j.finished_at == 300.0
    for event in JobEvent:
        with pytest.raises(JobTransitionError):
            jobs.apply(j, event, now=400.0)
        assert (j.state, j.finished_at) == (JobState.DONE, 300.0)


@pytest.mark.parametrize("state", list(JobState))
@pytest.mark.parametrize("event", list(JobEvent))
def test_each_job_event_moves_or_is_refused(state: JobState, event: JobEvent) -> None:
    j = job(state, reason="before")
    expected = JOB_MOVES.get((state, event))
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


@pytest.mark.parametrize("state", list(JobState))
def test_a_finished_job_has_no_way_out_and_an_open_one_has(state: JobState) -> None:
    """Driven through ``apply``: a cancelled, done or failed job is never revived."""
    moved = []
    for event in JobEvent:
        j = job(state, reason="before")
        try:
            moved.append(jobs.apply(j, event, now=200.0, reason="after"))
        except JobTransitionError:
            assert (j.state, j.finished_at, j.reason) == (state, 0.0, "before")
    assert (moved == []) is state.finished, (state, moved)
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
