"""coordinator/vouch.py: the fields a result may not choose, the time clamps, the refusals."""

from __future__ import annotations

import math

import pytest

from coordinator.model import ProbeResultData, Task, TaskResultData, TaskState
from coordinator.vouch import MAX_DETAIL, MAX_DURATION_S, SKEW_S, Refused, vouched

NOW = 1_800_000_000.0
TASK = Task(
    task_id="t1", job_id="job-a", round=0, target="127.0.0.1:9", agent_id="a-1", region="de",
    state=TaskState.ASSIGNED, due_at=NOW - 30, deadline=NOW + 60,
)  # fmt: skip


def claim(**kw: object) -> TaskResultData:
    probe = {"kind": "tcp", "target": "evil:1", "failure": "", "failure_detail": "", "duration_s": 0.5, "data": {}}
    probe.update(kw.pop("result", {}))  # type: ignore[call-overload]
    fields = {"task_id": "t1", "job_id": "job-b", "agent_id": "someone-else", "started_at": NOW - 2, "finished_at": NOW - 1}
    fields.update(kw)
    return TaskResultData(result=ProbeResultData(**probe), **fields)  # type: ignore[arg-type]


def test_job_agent_target_and_kind_come_from_the_task_and_the_session() -> None:
    r = vouched(claim(), TASK, kind="tcp", agent_id="a-1", received_at=NOW)
    invalid = r.invalid_failure
    assert (r.job_id, r.agent_id, r.result.target, r.result.kind) == ("job-a", "a-1", "127.0.0.1:9", "tcp")
    assert (r.started_at, r.finished_at, r.result.duration_s) == (NOW - 2, NOW - 1, 0.5)
    assert not invalid


@pytest.mark.parametrize(
    ("started", "finished", "expect"),
    [
        (NOW + 100, NOW + 200, (NOW, NOW)),  # the future is now
        (NOW - 5, NOW + 1e9, (NOW - 5, NOW)),
        (0.0, 1.0, (NOW - 30 - SKEW_S, NOW - 30 - SKEW_S)),  # the past is the due time less the skew
        (NOW - 30 - SKEW_S + 1, NOW - 1, (NOW - 30 - SKEW_S + 1, NOW - 1)),  # just inside: kept
        (NOW - 1, NOW - 2, (NOW - 2, NOW - 2)),  # started after finished
    ],
)
def test_times_are_clamped(started: float, finished: float, expect: tuple[float, float]) -> None:
    r = vouched(claim(started_at=started, finished_at=finished), TASK, kind="tcp", agent_id="a-1", received_at=NOW)
    assert (r.started_at, r.finished_at) == expect


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"started_at": math.nan}, "started_at is not a finite number"),
        ({"finished_at": math.inf}, "finished_at is not a finite number"),
        ({"finished_at": -1.0}, "finished_at is negative"),
        ({"result": {"duration_s": -0.1}}, "duration_s is negative"),
        ({"result": {"duration_s": math.nan}}, "duration_s is not a finite number"),
        ({"result": {"kind": "http"}}, "the task is tcp"),
    ],
)
def test_bad_numbers_and_a_wrong_kind_are_refused(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(Refused) as info:
        vouched(claim(**fields), TASK, kind="tcp", agent_id="a-1", received_at=NOW)
    assert reason in info.value.detail


def test_an_unknown_failure_class_is_stored_as_unknown_failure_and_flagged() -> None:
    r = vouched(
        claim(result={"failure": "pwned" * 100, "failure_detail": "d" * 10_000, "duration_s": 1e9}),
        TASK, kind="tcp", agent_id="a-1", received_at=NOW,
    )  # fmt: skip
    assert r.invalid_failure and r.result.failure == "unknown_failure"
    assert len(r.result.failure_detail) == MAX_DETAIL and "pwnedpwned" in r.result.failure_detail
    assert r.result.duration_s == MAX_DURATION_S
    known = vouched(claim(result={"failure": "connection_reset"}), TASK, kind="tcp", agent_id="a-1", received_at=NOW)
    assert not known.invalid_failure and known.result.failure == "connection_reset"


def test_with_a_seal_the_stored_bytes_are_made_from_the_vouched_fields() -> None:
    seen: list[TaskResultData] = []

    def seal(r: TaskResultData) -> bytes:
        seen.append(r)
        return f"{r.job_id}|{r.agent_id}|{r.finished_at}".encode()

    r = vouched(claim(finished_at=NOW + 50), TASK, kind="tcp", agent_id="a-1", received_at=NOW, seal=seal)
    assert r.raw == f"job-a|a-1|{NOW}".encode() and seen[0].job_id == "job-a"
