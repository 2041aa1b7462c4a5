"""The job life cycle as one explicit transition table (sans-IO, like ``tasks.py``).

    pending --round--> running --round--> running
       |                  |--finished (some task gave a result)--> done
       |                  \\--finished (no task gave a result)----> failed
       |--finished (no round could be created, e.g. ``until`` passed)--> failed
    pending|running --cancel--> cancelled

``done``, ``failed`` and ``cancelled`` are final. Any event not in the table for the
job's state is refused with ``JobTransitionError``, so a bug that would, say, revive a
cancelled job fails loudly instead of quietly running it again.
"""

from __future__ import annotations

import enum

from coordinator.model import Job, JobState


class JobEvent(enum.StrEnum):
    ROUND = "round"  # a round of tasks was created
    CANCEL = "cancel"  # cancelled by request
    SUCCEEDED = "succeeded"  # every round created and ended, at least one result stored
    FAILED = "failed"  # every round created and ended, no result at all


TRANSITIONS: dict[tuple[JobState, JobEvent], JobState] = {
    (JobState.PENDING, JobEvent.ROUND): JobState.RUNNING,
    (JobState.RUNNING, JobEvent.ROUND): JobState.RUNNING,
    (JobState.PENDING, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.RUNNING, JobEvent.CANCEL): JobState.CANCELLED,
    (JobState.RUNNING, JobEvent.SUCCEEDED): JobState.DONE,
    (JobState.RUNNING, JobEvent.FAILED): JobState.FAILED,
    (JobState.PENDING, JobEvent.FAILED): JobState.FAILED,
}


class JobTransitionError(Exception):
    def __init__(self, job: Job, event: JobEvent) -> None:
        super().__init__(f"job {job.job_id}: no transition from {job.state} on {event}")
        self.job = job
        self.event = event


def finished_event(job: Job) -> JobEvent:
    """How a job whose rounds are all created and ended finishes: it succeeded when any
    of its tasks gave a result (a measured failure is a result too)."""
    return JobEvent.SUCCEEDED if job.tasks_done > 0 else JobEvent.FAILED


def apply(job: Job, event: JobEvent, *, now: float, reason: str = "") -> JobState:
    """Move ``job`` to its next state for ``event``; returns the new state. Entering a
    final state sets ``finished_at`` to ``now``; ``reason``, when given, becomes the
    job's reason."""
    try:
        new_state = TRANSITIONS[(job.state, event)]
    except KeyError:
        raise JobTransitionError(job, event) from None
    job.state = new_state
    if new_state.finished:
        job.finished_at = now
    if reason:
        job.reason = reason
    return new_state
