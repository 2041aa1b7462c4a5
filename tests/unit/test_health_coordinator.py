"""Issue 15 in the coordinator, without sockets: the canary job's life across restarts,
controls and canaries reaching the analysis, agent errors counted, and the exposition of
region health (vantage_region_reachable, verdict="unreachable")."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.canary import CanaryError, canary_spec
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.model import (
    CANARY_PURPOSE,
    AgentInfo,
    JobSpec,
    JobState,
    ProbeResultData,
    TaskResultData,
)
from coordinator.observe import measurement_from_result
from coordinator.store import SQLiteStore
from coordinator.validation import InvalidJob, JobLimits, validate_job
from tests.unit.test_ingest_metrics import scrape

NOW = 1_700_000_000.0
CANARIES = ("http://canary-1.example/", "http://canary-2.example/")


def res(task: str, kind: str = "http", failure: str = "", at: float = NOW, data: dict[str, object] | None = None) -> TaskResultData:
    return TaskResultData(
        task_id=task, job_id="j", agent_id="a", started_at=at - 1, finished_at=at,
        result=ProbeResultData(kind=kind, target="ignored", failure=failure, failure_detail="",
                               duration_s=0.3, data=data or {}),
    )  # fmt: skip


def agent(i: int, region: str) -> AgentInfo:
    return AgentInfo(agent_id=f"{region}-{i}", region=region, kinds=("http", "throughput"))


def core_over(path: Path, clock: float = NOW) -> Coordinator:
    return Coordinator(
        SQLiteStore(path), Analyzer(AnalysisConfig(window_s=60)), CoordinatorConfig(),
        clock=lambda: clock,
    )  # fmt: skip


# ---------------------------------------------------------------- reading results


def test_a_failed_targets_control_is_still_read_it_shows_the_agents_reach() -> None:
    failed_both = res("t", "throughput", "generic_timeout",
                      data={"control": {"failure": "generic_timeout", "bytes_per_second": None}})  # fmt: skip
    m = measurement_from_result(failed_both, agent(1, "ru"), "http://x/", "region")
    assert m.control_failure == "generic_timeout" and m.control_bps is None and m.throughput_bps is None
    control_ok = res("t", "throughput", "connection_reset",
                     data={"bytes_per_second": 5.0, "control": {"failure": "", "bytes_per_second": 9e5}})  # fmt: skip
    m = measurement_from_result(control_ok, agent(1, "ru"), "http://x/", "region")
    assert m.control_bps == 9e5 and m.control_failure is None and m.throughput_bps is None
    # an agent's odd control failure string is not taken as a label or a class
    odd = res("t", "throughput", "", data={"bytes_per_second": 1.0, "control": {"failure": ["x"]}})
    assert measurement_from_result(odd, agent(1, "ru"), "u", "region").control_failure == "unknown_failure"
    canary = measurement_from_result(res("c"), agent(1, "ru"), CANARIES[0], "region", canary=True)
    assert canary.role == "canary"


async def test_agent_errors_are_counted_per_region_and_agent_and_exported(tmp_path: Path) -> None:
    core = core_over(tmp_path / "v.db")
    try:
        core.agent_connected(agent(1, "de"), "ipv4:127.0.0.1:1", [])
        core.agent_connected(agent(2, "us"), "ipv4:127.0.0.1:1", [])
        for n, failure in enumerate(["agent_deadline_missed"] * 3 + ["agent_spec_error", "generic_timeout"]):
            core.ingest_results.observe(res(f"t{n}", failure=failure), agent(1, "de"), "http://site/")
        core.ingest_results.observe(res("u", failure="agent_resource_error"), agent(2, "us"), "http://site/")
        assert {v.info.agent_id: v.errors for v in core.agents()} == {
            "de-1": {"deadline_missed": 3, "spec_error": 1}, "us-2": {"resource_error": 1},
        }  # fmt: skip
        m = scrape(core)
        errors = {(lb["region"], lb["reason"]): v for lb, v in m["vantage_agent_errors_total"]}
        assert errors == {("de", "deadline_missed"): 3.0, ("de", "spec_error"): 1.0, ("us", "resource_error"): 1.0}
    finally:
        await core.store.close()


async def test_region_health_and_unreachable_verdicts_are_exported(tmp_path: Path) -> None:
    core = core_over(tmp_path / "v.db")
    try:
        n = 0
        for rnd in range(4):
            t = NOW - 40 + rnd * 10
            for region in ("ru", "de", "us"):
                for i in (1, 2):
                    down = region == "ru"
                    n += 1
                    core.ingest_results.observe(res(f"c{n}", failure="generic_timeout" if down else "", at=t),
                                  agent(i, region), CANARIES[0], canary=True)  # fmt: skip
                    core.ingest_results.observe(res(f"s{n}", failure="generic_timeout" if down else "", at=t + 1),
                                  agent(i, region), "http://site/")  # fmt: skip
        core.analyzer.evaluate(NOW)
        m = scrape(core)
        assert {lb["region"]: v for lb, v in m["vantage_region_reachable"]} == {"ru": 0.0, "de": 1.0, "us": 1.0}
        assert {lb["region"]: v for lb, v in m["vantage_region_agents_healthy"]} == {"ru": 0.0, "de": 2.0, "us": 2.0}
        info = {(lb["region"], lb["target"]): lb["verdict"] for lb, v in m["vantage_verdict_info"]}
        assert info == {("ru", "http://site/"): "unreachable", ("de", "http://site/"): "ok",
                        ("us", "http://site/"): "ok"}  # fmt: skip
        assert all(v == 0.0 for _, v in m["vantage_blocked"])
        # canaries are not targets of verdicts
        assert not any(lb["target"] == CANARIES[0] for lb, _ in m["vantage_verdict_info"])
    finally:
        await core.store.close()


# ---------------------------------------------------------------- the canary job


async def test_the_canary_job_is_kept_across_restarts_and_replaced_when_the_flags_change(tmp_path: Path) -> None:
    db = tmp_path / "v.db"
    spec = canary_spec(CANARIES, 10.0)
    assert spec is not None and spec.purpose == CANARY_PURPOSE and spec.kind == "http"
    core = core_over(db)
    first = await core.start_canaries(spec)
    assert first is not None and first.spec == spec
    await core.flush()
    await core.store.close()

    core = core_over(db, NOW + 60)
    await core.load()
    again = await core.start_canaries(spec)
    assert again is not None and again.job_id == first.job_id, "same flags: the same job goes on"
    changed = canary_spec(CANARIES[:1], 15.0)
    third = await core.start_canaries(changed)
    assert third is not None and third.job_id != first.job_id and third.spec == changed
    assert core.book.jobs[first.job_id].state is JobState.CANCELLED
    assert await core.start_canaries(None) is None
    assert core.book.jobs[third.job_id].state is JobState.CANCELLED
    assert not [j for j in core.book.open_jobs.values() if j.spec.purpose == CANARY_PURPOSE]
    await core.flush()
    await core.store.close()


def test_no_caller_may_submit_a_canary_job() -> None:
    spec = JobSpec(kind="http", targets=("http://x.example/",), purpose=CANARY_PURPOSE)
    with pytest.raises(InvalidJob) as e:
        validate_job(spec, [agent(1, "ru")], JobLimits(), now=NOW)
    assert e.value.field == "spec.purpose" and "set by the coordinator only" in e.value.reason


@pytest.mark.parametrize(
    ("urls", "every", "message"),
    [
        (["ftp://x/"], 10.0, "--canary: 'ftp://x/':"),
        (["http://a/", "http://a/"], 10.0, "--canary: a URL is given twice"),
        ([f"http://c{i}/" for i in range(9)], 10.0, "--canary: at most 8 canaries"),
        (["http://a/"], 2.0, "--canary-every: must be between 5s and 1h"),
    ],
)
def test_bad_canary_settings_name_the_flag(urls: list[str], every: float, message: str) -> None:
    with pytest.raises(CanaryError) as e:
        canary_spec(urls, every)
    assert str(e.value).startswith(message), str(e.value)


def test_no_canary_no_job() -> None:
    assert canary_spec([], 10.0) is None
