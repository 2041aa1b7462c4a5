"""A policer's burst (issue 10): the analysis judges the sustained rate, so a download that
ran fast through the burst and slow after it is throttled, while its mean would not be."""

from __future__ import annotations

from dataclasses import replace

from coordinator import convert
from coordinator.analysis import Analyzer
from coordinator.model import AgentInfo, TaskResultData
from coordinator.observe import measurement_from_result
from protos.results import probe_result_to_pb

CONTROL_BPS = 2_500_000.0


def _wire(mean: float, sustained: float | None, drop_at: float | None) -> TaskResultData:
    """A throughput result as an agent sends it, read back as the coordinator reads it."""
    data: dict[str, object] = {
        "url": "http://video.example/big.bin", "bytes": 3_000_000, "bytes_per_second": mean,
        "sustained_bps": sustained, "first_part_bps": CONTROL_BPS if drop_at else sustained,
        "drop_at_s": drop_at, "stall_s": 0.0, "interval_s": 0.25, "stopped_by": "max_seconds",
        "control": {"url": "http://control.example/big.bin", "bytes_per_second": CONTROL_BPS,
                    "sustained_bps": CONTROL_BPS, "failure": ""},
    }  # fmt: skip
    pb_result = probe_result_to_pb(
        kind="throughput", target="http://video.example/big.bin", failure=None,
        failure_detail="", duration_s=4.0, data=data,
    )  # fmt: skip
    return TaskResultData(
        task_id="t", job_id="j", agent_id="a", started_at=0.0, finished_at=0.0,
        result=convert.probe_result_from_pb(pb_result),
    )  # fmt: skip


def _verdicts(policed: tuple[float, float | None, float | None]) -> dict[str, tuple[str, str]]:
    a = Analyzer()
    for r in range(3):
        for region, (mean, sustained, drop) in (
            ("ru", policed),
            ("de", (CONTROL_BPS, CONTROL_BPS, None)),
            ("us", (CONTROL_BPS * 0.98, CONTROL_BPS * 0.97, None)),
        ):
            for i in (1, 2):
                agent = AgentInfo(agent_id=f"{region}-{i}", region=region, country=region.upper())
                m = measurement_from_result(
                    _wire(mean * (1 + 0.02 * i), None if sustained is None else sustained * (1 + 0.02 * i), drop),
                    agent, "http://video.example/big.bin", "region",
                )
                a.add(replace(m, at=r * 10.0 + i))
    snap = a.evaluate(30.0)
    return {v.group: (v.verdict, v.reason) for v in snap.regions}


def test_the_sustained_rate_after_a_burst_is_judged() -> None:
    # 1 MB in at 2.5 MB/s, then 125 kB/s for 1.6 s: a mean of 1.44 MB/s (ratio 0.58, not
    # throttled by the mean) but a sustained 125 kB/s (ratio 0.05)
    verdicts = _verdicts((1_440_000.0, 125_000.0, 0.4))
    assert verdicts["ru"][0] == "throttled", verdicts
    assert "6/6 dropped after a fast start (median at 0.4 s)" in verdicts["ru"][1], verdicts
    assert verdicts["de"][0] == "ok" and verdicts["us"][0] == "ok", verdicts


def test_results_without_a_sustained_rate_are_judged_by_their_mean() -> None:
    # a download shorter than two windows (or an older agent) carries only the mean
    verdicts = _verdicts((1_440_000.0, None, None))
    assert verdicts["ru"][0] == "ok", verdicts
