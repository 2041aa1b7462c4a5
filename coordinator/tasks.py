"""The task life cycle as one explicit transition table (sans-IO, after h11's ``_state``).

    pending --dispatch--> assigned --result--> done
       |                     |  \\--agent_lost / not_held--> pending   (reassigned later)
       |                     \\--deadline--> failed
       \\--deadline--> failed
    pending|assigned --cancel--> cancelled

Any event not in the table for the task's state is refused with ``TaskTransitionError``;
the caller decides whether that is a protocol error (an agent reporting a task that is not
its own) or a harmless duplicate (a result re-sent after a reconnect).
"""

from __future__ import annotations

import enum

from coordinator.model import Task, TaskState


class TaskEvent(enum.StrEnum):
    DISPATCH = "dispatch"
    RESULT = "result"
    AGENT_LOST = "agent_lost"
    NOT_HELD = "not_held"
    DEADLINE = "deadline"
    CANCEL = "cancel"


TRANSITIONS: dict[tuple[TaskState, TaskEvent], TaskState] = {
    (TaskState.PENDING, TaskEvent.DISPATCH): TaskState.ASSIGNED,
    (TaskState.PENDING, TaskEvent.DEADLINE): TaskState.FAILED,
    (TaskState.PENDING, TaskEvent.CANCEL): TaskState.CANCELLED,
    # A result for a task that went back to pending (its agent was lost or restarted) is
    # still good when it comes from the agent it was last assigned to: the caller checks.
    (TaskState.PENDING, TaskEvent.RESULT): TaskState.DONE,
    (TaskState.ASSIGNED, TaskEvent.RESULT): TaskState.DONE,
    (TaskState.ASSIGNED, TaskEvent.AGENT_LOST): TaskState.PENDING,
    (TaskState.ASSIGNED, TaskEvent.NOT_HELD): TaskState.PENDING,
    (TaskState.ASSIGNED, TaskEvent.DEADLINE): TaskState.FAILED,
    (TaskState.ASSIGNED, TaskEvent.CANCEL): TaskState.CANCELLED,
}


class TaskTransitionError(Exception):
    def __init__(self, task: Task, event: TaskEvent) -> None:
        super().__init__(f"task {task.task_id}: no transition from {task.state} on {event}")
        self.task = task
        self.event = event


def apply(task: Task, event: TaskEvent, *, reason: str = "") -> TaskState:
    """Move ``task`` to its next state for ``event``; returns the new state."""
    try:
        new_state = TRANSITIONS[(task.state, event)]
    except KeyError:
        raise TaskTransitionError(task, event) from None
    task.state = new_state
    if reason:
        task.reason = reason
    return new_state
