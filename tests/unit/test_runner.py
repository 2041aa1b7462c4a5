"""The agent's Runner on a fake clock with a fake probe: concurrency, not_before, deadlines
before and during a probe, cancel, malformed ids, probes that cannot run, and the order
"outbox first, then tell the sender"."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from agent.outbox import Outbox
from agent.probes.base import TASK_BUDGET_S, Limits, ProbeOutcome
from agent.runner import Assignment, Runner
from protos.results import failure_name
from protos.vantage.v1 import vantage_pb2 as pb
from tests.fakes import REAL_WAIT_S, FakeClock

TARGET = "203.0.113.7:443"  # TEST-NET-3: the fake probe never connects anywhere


@dataclass
class FakeProbe:
    """A probe that starts, tells the test, and ends when the test releases it. Each task
    gets a target of its own (``names`` maps it back to the task id)."""

    names: dict[str, str] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    release: dict[str, asyncio.Event] = field(default_factory=dict)
    fail_with: BaseException | None = None
    budgets: list[float | None] = field(default_factory=list)  # TASK_BUDGET_S each one saw
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, spec: Any, limits: Limits) -> ProbeOutcome:
        task_id = self.names[spec.target]
        self.started.append(task_id)
        self.budgets.append(TASK_BUDGET_S.get())
        self._changed.set()
        if self.fail_with is not None:
            raise self.fail_with
        await self.release.setdefault(task_id, asyncio.Event()).wait()
        return ProbeOutcome(kind=spec.kind, target=spec.target, failure=None, duration_s=0.25,
                            data={"address": "203.0.113.7"})

    def finish(self, task_id: str) -> None:
        self.release.setdefault(task_id, asyncio.Event()).set()

    async def wait_started(self, n: int) -> None:
        async with asyncio.timeout(REAL_WAIT_S):
            while len(self.started) < n:
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Rig:
    runner: Runner
    clock: FakeClock
    probe: FakeProbe
    outbox: Outbox
    reported: list[str]
    _reported: asyncio.Event

    def assignment(self, task_id: str, *, not_before: float = 0.0, deadline_in: float = 60.0,
                   kind: str = "tcp", job_id: str = "0123456789abcdef") -> Assignment:
        """An assignment for ``task_id`` with a target of its own (TEST-NET-2 addresses:
        the fake probe never connects anywhere)."""
        target = f"198.51.100.{len(self.probe.names) + 1}:443"
        self.probe.names[target] = task_id
        now = self.clock.time()
        return Assignment(task_id=task_id, job_id=job_id, kind=kind, target=target,
                          options={}, not_before=not_before or now, deadline=now + deadline_in)

    async def reported_n(self, n: int) -> None:
        async with asyncio.timeout(REAL_WAIT_S):
            while len(self.reported) < n:
                self._reported.clear()
                await self._reported.wait()

    def result(self, task_id: str) -> pb.TaskResult:
        blob = self.outbox.get(task_id)
        assert blob is not None, f"{task_id} is not in the outbox"
        return pb.TaskResult.FromString(blob)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    clock = FakeClock()
    probe = FakeProbe()
    outbox = Outbox(tmp_path / "outbox", max_items=100)
    outbox.load()
    reported: list[str] = []
    event = asyncio.Event()

    def on_result(task_id: str) -> None:
        # The result must be durable before anyone is told of it.
        assert task_id in outbox, "on_result before the outbox had the result"
        reported.append(task_id)
        event.set()

    runner = Runner(agent_id="ru-1", limits=Limits(), outbox=outbox, concurrency=2,
                    on_result=on_result, clock=clock, probe=probe)
    stop = asyncio.Event()
    run = asyncio.create_task(runner.run(stop))
    async with asyncio.timeout(REAL_WAIT_S):
        await runner.ready.wait()
    try:
        yield Rig(runner, clock, probe, outbox, reported, event)
    finally:
        stop.set()
        for ev in probe.release.values():
            ev.set()
        async with asyncio.timeout(REAL_WAIT_S):
            await run


async def test_at_most_concurrency_tasks_run_and_the_next_starts_when_one_ends(rig: Rig) -> None:
    for i in range(4):
        assert rig.runner.submit(rig.assignment(f"t{i}"))
    await rig.probe.wait_started(2)
    assert rig.probe.started == ["t0", "t1"] and rig.runner.running == 4
    rig.probe.finish("t1")
    await rig.reported_n(1)
    await rig.probe.wait_started(3)
    assert rig.probe.started == ["t0", "t1", "t2"], "t3 must wait for a free slot"
    for t in ("t0", "t2", "t3"):
        rig.probe.finish(t)
    await rig.reported_n(4)
    assert sorted(rig.reported) == ["t0", "t1", "t2", "t3"]
    assert rig.runner.completed == 4 and rig.runner.running == 0
    assert await rig.runner.wait_idle(1.0)


async def test_a_task_starts_no_earlier_than_not_before(rig: Rig) -> None:
    start_at = rig.clock.time() + 10.0
    assert rig.runner.submit(rig.assignment("later", not_before=start_at))
    await rig.clock.armed(10.0)  # the runner waits for its start time
    rig.clock.advance(9.9)
    assert rig.probe.started == []  # no timer fired: nothing could start
    rig.clock.advance(0.1)
    await rig.probe.wait_started(1)
    rig.probe.finish("later")
    await rig.reported_n(1)
    result = rig.result("later")
    assert result.started_at == pytest.approx(start_at)
    assert (result.task_id, result.job_id, result.agent_id) == ("later", "0123456789abcdef", "ru-1")
    assert result.result.kind == "tcp" and failure_name(result.result.failure) == ""
    assert result.result.duration_s == 0.25


async def test_a_deadline_passed_before_the_start_is_reported_without_probing(rig: Rig) -> None:
    a = rig.assignment("late", deadline_in=-1.0)
    assert rig.runner.submit(a)
    await rig.reported_n(1)
    assert rig.probe.started == []
    r = rig.result("late").result
    # about the agent (it was busy), never evidence about the target
    assert failure_name(r.failure) == "agent_deadline_missed"
    assert r.failure_detail.startswith("the task's deadline passed before it could start")


async def test_a_task_that_waited_for_a_slot_and_ran_out_of_time_is_the_agents_miss(
    rig: Rig,
) -> None:
    # two slots: b1 and b2 hold them; w waits for one, starts 20 s late with 10 s left
    assert rig.runner.submit(rig.assignment("b1", deadline_in=100.0))
    assert rig.runner.submit(rig.assignment("b2", deadline_in=100.0))
    assert rig.runner.submit(rig.assignment("w", deadline_in=30.0))
    await rig.probe.wait_started(2)
    rig.clock.advance(20.0)
    rig.probe.finish("b1")
    await rig.probe.wait_started(3)
    await rig.clock.armed(10.0)
    rig.clock.advance(10.0)
    await rig.reported_n(2)
    r = rig.result("w").result
    assert failure_name(r.failure) == "agent_deadline_missed"
    assert "waited for a free slot" in r.failure_detail and "10.0 s" in r.failure_detail


async def test_a_task_dispatched_late_but_started_at_once_is_a_timeout_when_it_runs_out(
    rig: Rig,
) -> None:
    # not_before 20 s in the past (a reassigned task, say): no wait on this agent, so a
    # deadline passing during the probe is the network's slowness, as before
    a = rig.assignment("re", deadline_in=5.0)
    a = Assignment(**{**a.__dict__, "not_before": rig.clock.time() - 20.0})
    assert rig.runner.submit(a)
    await rig.probe.wait_started(1)
    await rig.clock.armed(5.0)
    rig.clock.advance(5.0)
    await rig.reported_n(1)
    assert failure_name(rig.result("re").result.failure) == "generic_timeout"


async def test_a_task_that_started_on_time_and_ran_out_of_time_is_a_timeout(rig: Rig) -> None:
    # the control case of the one above: no wait for a slot, so the network was slow
    assert rig.runner.submit(rig.assignment("ontime", deadline_in=10.0))
    await rig.probe.wait_started(1)
    await rig.clock.armed(10.0)
    rig.clock.advance(10.0)
    await rig.reported_n(1)
    assert failure_name(rig.result("ontime").result.failure) == "generic_timeout"


async def test_a_probe_knows_the_time_its_task_has_left(rig: Rig) -> None:
    """The runner tells the probe its budget (TASK_BUDGET_S), so optional exchanges (the
    trigger checks) can be fitted in; outside a probe there is none."""
    assert rig.runner.submit(rig.assignment("budget", deadline_in=42.0))
    await rig.probe.wait_started(1)
    assert rig.probe.budgets == [pytest.approx(42.0)]
    assert TASK_BUDGET_S.get() is None
    rig.probe.finish("budget")
    await rig.reported_n(1)


async def test_a_probe_still_running_at_the_deadline_is_stopped(rig: Rig) -> None:
    assert rig.runner.submit(rig.assignment("slow", deadline_in=30.0))
    await rig.probe.wait_started(1)
    await rig.clock.armed(30.0)
    rig.clock.advance(30.0)
    await rig.reported_n(1)
    r = rig.result("slow").result
    assert failure_name(r.failure) == "generic_timeout" and r.failure_detail == "the task's deadline passed"
    assert r.duration_s == pytest.approx(30.0)


async def test_cancel_stops_a_running_task_and_reports_nothing(rig: Rig) -> None:
    assert rig.runner.submit(rig.assignment("c1"))
    await rig.probe.wait_started(1)
    with capture_logs() as logs:
        assert rig.runner.cancel("c1")
        assert await rig.runner.wait_idle(REAL_WAIT_S)
    assert rig.runner.running == 0 and rig.reported == [] and "c1" not in rig.outbox
    assert any(e["event"] == "task_cancelled" for e in logs)
    assert not rig.runner.cancel("c1"), "nothing left to cancel"
    assert not rig.runner.cancel("never-assigned")


@pytest.mark.parametrize(
    "task_id", ["", "../../etc/passwd", "a/b", "a b", "x" * 129, "tab\there", "ü"]
)
async def test_malformed_task_ids_are_refused_before_touching_the_disk(rig: Rig, task_id: str) -> None:
    with capture_logs() as logs:
        assert not rig.runner.submit(rig.assignment(task_id))
    assert rig.runner.running == 0
    assert [e["reason"] for e in logs if e["event"] == "assignment_refused"] == ["malformed task id"]
    assert list(rig.outbox.directory.iterdir()) == []


@pytest.mark.parametrize("job_id", ["", "job/1", "x" * 65])
async def test_malformed_job_ids_are_refused(rig: Rig, job_id: str) -> None:
    with capture_logs() as logs:
        assert not rig.runner.submit(rig.assignment("ok-1", job_id=job_id))
    assert [e["reason"] for e in logs if e["event"] == "assignment_refused"] == ["malformed job id"]


async def test_the_longest_ids_are_accepted(rig: Rig) -> None:
    assert rig.runner.submit(rig.assignment("t" * 128, job_id="j" * 64))
    await rig.probe.wait_started(1)


async def test_a_resent_assignment_runs_once(rig: Rig) -> None:
    a = rig.assignment("once")
    assert rig.runner.submit(a)
    assert not rig.runner.submit(a), "already running"
    await rig.probe.wait_started(1)
    rig.probe.finish("once")
    await rig.reported_n(1)
    assert not rig.runner.submit(a), "already done: its result waits in the outbox"
    assert rig.probe.started == ["once"]
    assert "once" in rig.runner.held_task_ids()


async def test_nothing_is_taken_once_the_runner_stops_accepting(rig: Rig) -> None:
    rig.runner.accepting = False
    assert not rig.runner.submit(rig.assignment("after-drain"))
    assert rig.runner.running == 0


async def test_a_spec_the_agent_cannot_run_is_a_result(rig: Rig) -> None:
    assert rig.runner.submit(rig.assignment("bad", kind="carrier-pigeon"))
    await rig.reported_n(1)
    r = rig.result("bad").result
    assert failure_name(r.failure) == "agent_spec_error"
    assert r.failure_detail.startswith("the agent could not run this task: kind: unknown probe kind")
    assert rig.probe.started == []


async def test_a_probe_that_raises_is_a_result_and_the_runner_goes_on(rig: Rig) -> None:
    rig.probe.fail_with = PermissionError("ca_file: /etc/ca.pem is not readable")
    with capture_logs() as logs:
        assert rig.runner.submit(rig.assignment("boom"))
        await rig.reported_n(1)
    r = rig.result("boom").result
    assert failure_name(r.failure) == "agent_internal_error"
    assert r.failure_detail == "the probe could not run: ca_file: /etc/ca.pem is not readable"
    assert any(e["event"] == "probe_could_not_run" for e in logs)
    rig.probe.fail_with = None
    assert rig.runner.submit(rig.assignment("after"))
    await rig.probe.wait_started(2)


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (OSError(errno.EMFILE, "Too many open files"), "agent_resource_error"),
        (OSError(errno.ENOBUFS, "No buffer space available"), "agent_resource_error"),
        (MemoryError(), "agent_resource_error"),
        (KeyError("boom"), "agent_internal_error"),
        (ConnectionResetError(errno.ECONNRESET, "escaped the probe"), "agent_internal_error"),
    ],
)
async def test_what_escapes_a_probe_is_an_agent_error(
    rig: Rig, exc: BaseException, failure: str
) -> None:
    rig.probe.fail_with = exc
    assert rig.runner.submit(rig.assignment("x"))
    await rig.reported_n(1)
    assert failure_name(rig.result("x").result.failure) == failure


async def test_stopping_the_runner_cancels_what_runs(tmp_path: Path) -> None:
    clock = FakeClock()
    outbox = Outbox(tmp_path / "o")
    outbox.load()
    never = asyncio.Event()

    async def hang(spec: Any, limits: Limits) -> ProbeOutcome:
        await never.wait()
        raise AssertionError("unreachable")

    runner = Runner(agent_id="a", limits=Limits(), outbox=outbox, concurrency=1,
                    on_result=lambda _: None, clock=clock, probe=hang)
    assert not runner.submit(Assignment(task_id="t", job_id="j", kind="tcp", target=TARGET,
                                        options={}, not_before=0, deadline=clock.time() + 60)), \
        "no task group yet: the runner is not running"
    stop = asyncio.Event()
    run = asyncio.create_task(runner.run(stop))
    async with asyncio.timeout(REAL_WAIT_S):
        await runner.ready.wait()
    assert runner.submit(Assignment(task_id="t", job_id="j", kind="tcp", target=TARGET,
                                    options={}, not_before=0, deadline=clock.time() + 60))
    assert runner.running == 1
    stop.set()
    async with asyncio.timeout(REAL_WAIT_S):
        await run
    assert runner.running == 0 and len(outbox) == 0


@pytest.mark.parametrize("field", ["not_before", "deadline"])
async def test_an_assignment_whose_times_are_not_times_is_refused(rig: Rig, field: str) -> None:
    a = rig.assignment("nan-1")
    bad = Assignment(**{**a.__dict__, field: math.nan})
    with capture_logs() as logs:
        assert not rig.runner.submit(bad)
    assert [e["reason"] for e in logs if e["event"] == "assignment_refused"] == [
        "not_before or deadline is not a time"
    ]
    assert rig.runner.running == 0


async def test_the_fake_timeout_behaves_like_asyncio_timeout() -> None:
    """The fakes are only worth as much as their likeness: zero expires at once, a
    swallowed expiry leaves no cancel request behind, and an outside cancel wins."""
    import contextlib

    clock = FakeClock()
    for make in (asyncio.timeout, clock.timeout):
        with pytest.raises(TimeoutError):
            async with make(0):
                await asyncio.Event().wait()
        async with make(0):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()  # the expiry is swallowed here
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0, make
    with pytest.raises(ValueError, match="finite"):
        await clock.sleep(math.nan)


async def test_an_idna_invalid_host_from_a_coordinator_is_a_spec_error_not_the_runners_end(rig: Rig) -> None:
    """A coordinator (buggy or hostile) that sends http://xn--/: parsing it once raised
    UnicodeError, which ended the runner and every task with it."""
    for kind in ("http", "throughput"):
        bad = dataclasses.replace(rig.assignment(f"idna-{kind}", kind=kind), target="http://xn--/")
        assert rig.runner.submit(bad)
    await rig.reported_n(2)
    for kind in ("http", "throughput"):
        r = rig.result(f"idna-{kind}").result
        assert failure_name(r.failure) == "agent_spec_error" and "IDNA" in r.failure_detail, r
    assert rig.runner.submit(rig.assignment("after"))
    await rig.probe.wait_started(1)
