"""The agent's own byte ceilings (agent/budget.py): a task over --max-bytes-per-task is
not run, and the hour's --max-bytes-per-hour stops an upload job however many tasks its
token may create."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.budget import HourlyBytes, moved, reservation
from agent.outbox import Outbox
from agent.probes.base import Limits, ProbeOutcome
from agent.runner import Assignment, Runner
from common.failures import AGENT_RESOURCE_ERROR, AGENT_SPEC_ERROR
from tests.fakes import FakeClock

MB = 1024 * 1024


class MovingProbe:
    """Moves what its spec allows, at once (no network)."""

    def __init__(self) -> None:
        self.ran = 0

    async def __call__(self, spec: Any, limits: Limits) -> ProbeOutcome:
        self.ran += 1
        return ProbeOutcome(kind=spec.kind, target=spec.target, failure=None, data={"bytes": spec.max_bytes})


def _runner(tmp_path: Path, clock: FakeClock, probe: MovingProbe, *, per_task: int, per_hour: int) -> Runner:
    return Runner(
        agent_id="a-1", limits=Limits(allow_private_targets=True, max_bytes_cap=per_task),
        outbox=Outbox(tmp_path / "outbox"), concurrency=4, on_result=lambda _: None, clock=clock,
        probe=probe, byte_budget=HourlyBytes(per_hour),
    )  # fmt: skip


def _upload(clock: FakeClock, n: int, max_bytes: int) -> Assignment:
    return Assignment(
        task_id=f"t-{n}", job_id="j-1", kind="throughput", target="https://up.example/sink",
        options={"direction": "upload", "max_bytes": str(max_bytes)},
        not_before=clock.time(), deadline=clock.time() + 60,
    )  # fmt: skip


async def test_an_upload_job_stops_at_the_agents_hourly_budget(tmp_path: Path) -> None:
    clock, probe = FakeClock(), MovingProbe()
    runner = _runner(tmp_path, clock, probe, per_task=100 * MB, per_hour=250 * MB)
    outcomes = [await runner._probe(_upload(clock, i, 100 * MB)) for i in range(4)]
    assert [o.failure for o in outcomes] == [None, None, AGENT_RESOURCE_ERROR, AGENT_RESOURCE_ERROR]
    assert probe.ran == 2
    assert "has 52428800 left; this task may move 104857600" in outcomes[2].failure_detail
    # a smaller task still fits what is left of the hour
    assert (await runner._probe(_upload(clock, 9, 50 * MB))).failure is None
    # an hour later the budget is whole again
    clock.advance(3601)
    assert (await runner._probe(_upload(clock, 10, 100 * MB))).failure is None
    assert probe.ran == 4


async def test_a_task_over_the_agents_per_task_cap_is_not_run(tmp_path: Path) -> None:
    clock, probe = FakeClock(), MovingProbe()
    runner = _runner(tmp_path, clock, probe, per_task=20 * MB, per_hour=1024 * MB)
    outcome = await runner._probe(_upload(clock, 1, 100 * MB))
    assert outcome.failure == AGENT_SPEC_ERROR and "max_bytes" in outcome.failure_detail
    assert probe.ran == 0


def test_the_budget_counts_what_was_moved_and_frees_reservations() -> None:
    budget = HourlyBytes(100)
    assert budget.reserve(60, 0.0) and not budget.reserve(60, 0.0)
    budget.settle(60, 10, 1.0)  # moved only 10 of the 60 it held
    assert budget.used(1.0) == 10 and budget.reserve(90, 1.0)
    budget.settle(90, 0, 2.0)
    assert budget.used(3601.5) == 0
    assert moved({"bytes": 5, "control": {"bytes": 7}}) == 12 and moved({"bytes": -3}) is None

    class Spec:
        max_bytes = 10
        control = "https://c.example/"
        trigger_check = None

    assert reservation(Spec()) == 20 and reservation(object()) == 0
    with pytest.raises(ValueError, match="per_hour"):
        HourlyBytes(0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-bytes-per-task", "lots"], "--max-bytes-per-task: 'lots' is not a size"),
        (["--max-bytes-per-task", "0"], "--max-bytes-per-task: must be between 1 byte and 1T"),
        (["--max-bytes-per-hour", "10M"], "--max-bytes-per-hour: 10485760 bytes is less than one task's"),
        (["--max-bytes-per-hour", "9" * 5000], "--max-bytes-per-hour: '99999"),
    ],
)
def test_the_byte_flags_are_checked_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    from tests.unit.test_cli_errors import one_line_error, run_cli

    proc = run_cli(["agent", "--coordinator", "127.0.0.1:1", "--region", "de", "--state-dir", str(tmp_path), *args], {}, tmp_path)
    one_line_error(proc, "agent", message)


def test_an_http_fetch_a_trigger_check_and_a_probe_cut_off_are_charged() -> None:
    assert moved({"body_length": 7}) == 7  # an http fetch says body_length, not bytes
    assert moved({"bytes": 5, "trigger_checks": [{"bytes": 3}, {"bytes": 4}]}) == 12
    assert moved({}) is None  # a probe cut off by its deadline says nothing: charge the reservation

    class Spec:
        max_bytes = 10
        control = None
        trigger_check = "https://t.example/"

    assert reservation(Spec()) == 30  # the transfer and the check's two
