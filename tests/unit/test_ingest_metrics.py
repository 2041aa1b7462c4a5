"""From results to /metrics, without sockets: the coordinator's ingest side effects and
the collector's exposition (names, labels, histogram, series expiring with the window)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from coordinator.analysis import AnalysisConfig, Analyzer
from coordinator.core import Coordinator, CoordinatorConfig
from coordinator.metrics import build_registry
from coordinator.model import AgentInfo, ProbeResultData, TaskResultData
from coordinator.observe import measurement_from_result
from coordinator.store import SQLiteStore
from protos.vantage.v1 import vantage_pb2 as pb

NOW = 1_700_000_000.0


def result(task: str, kind: str, failure: str = "", bps: float | None = None, control: float | None = None,
           at: float = NOW) -> TaskResultData:
    data: dict[str, object] = {}
    if bps is not None:
        data = {"bytes_per_second": bps, "control": {"bytes_per_second": control, "failure": ""}}
    return TaskResultData(
        task_id=task, job_id="j", agent_id="a", started_at=at - 1, finished_at=at,
        result=ProbeResultData(kind=kind, target="ignored", failure=failure, failure_detail="",
                               duration_s=0.3, data=data),
    )


def agent(i: int, region: str, asn: int = 0, country: str = "") -> AgentInfo:
    return AgentInfo(agent_id=f"{region}-{i}", region=region, asn=asn, country=country)


def test_grouping_by_asn_and_target_as_the_job_named_it() -> None:
    m = measurement_from_result(result("t", "throughput", bps=1e3, control=1e5), agent(1, "ru", 25159),
                                "https://twitter.example/x", "asn")
    assert m.group == "25159" and m.target == "https://twitter.example/x"
    assert m.throughput_bps == 1e3 and m.control_bps == 1e5
    m = measurement_from_result(result("t", "tcp", failure="connection_closed"), agent(1, "ru"), "h:1", "region")
    assert m.group == "ru" and m.failure == "connection_closed" and m.throughput_bps is None
    assert m.country == ""
    m = measurement_from_result(result("t", "tcp"), agent(1, "ru", country="RU"), "h:1", "region")
    assert m.country == "RU"


def scrape(core: Coordinator) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(build_registry(core)).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


async def test_exposition_from_observed_results(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "v.db")
    analyzer = Analyzer(AnalysisConfig(window_s=60))
    core = Coordinator(store, analyzer, CoordinatorConfig(), clock=lambda: NOW)
    try:
        twitter = "http://twitter.example/blob"
        n = 0
        for rnd in range(3):
            t = NOW - 30 + rnd * 10
            for region, bps in (("ru", 16_000.0), ("de", 900_000.0), ("us", 950_000.0)):
                for i in (1, 2):
                    n += 1
                    core.ingest_results.observe(result(f"t{n}", "throughput", bps=bps * (1 + 0.01 * i), control=1e6, at=t),
                                  agent(i, region), twitter)
            core.ingest_results.observe(result(f"f{rnd}", "tcp", failure="connection_closed", at=t), agent(1, "ru"), "h:1")
        analyzer.evaluate(NOW)
        m = scrape(core)
        throttled = {(lb["region"], lb["target"]): v for lb, v in m["vantage_throttled"]}
        assert throttled == {("ru", twitter): 1.0, ("de", twitter): 0.0, ("us", twitter): 0.0, ("ru", "h:1"): 0.0}
        ratio = {lb["region"]: v for lb, v in m["vantage_throughput_ratio"]}
        assert ratio["ru"] < 0.1 and ratio["de"] > 0.8
        counts = {(lb["region"], lb["kind"], lb["outcome"]): v for lb, v in m["vantage_measurements_total"]}
        assert counts[("ru", "throughput", "ok")] == 6 and counts[("ru", "tcp", "connection_closed")] == 3
        buckets = [(lb["le"], v) for lb, v in m["vantage_probe_duration_seconds_bucket"]
                   if lb["region"] == "de"]
        assert ("0.25", 0.0) in buckets and ("0.5", 6.0) in buckets and ("+Inf", 6.0) in buckets
        assert m["vantage_results_not_analysed_total"] == [({}, 0.0)]
        # Nothing measured for longer than the window: the verdict series disappear.
        analyzer.evaluate(NOW + 200)
        m = scrape(core)
        assert "vantage_throttled" not in m and "vantage_throughput_ratio" not in m
        assert counts == {(lb["region"], lb["kind"], lb["outcome"]): v for lb, v in m["vantage_measurements_total"]}
    finally:
        await store.close()


async def test_a_target_slow_from_every_country_is_exported_as_degraded(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "v.db")
    analyzer = Analyzer(AnalysisConfig(window_s=60))
    core = Coordinator(store, analyzer, CoordinatorConfig(), clock=lambda: NOW)
    try:
        slow, fast = "http://cdn.example/blob", "http://twitter.example/blob"
        n = 0
        for rnd in range(3):
            t = NOW - 30 + rnd * 10
            for region, country in (("ru", "RU"), ("de", "DE"), ("us", "US")):
                for i in (1, 2):
                    for target, bps in ((slow, 40_000.0), (fast, 16_000.0 if region == "ru" else 9e5)):
                        n += 1
                        core.ingest_results.observe(
                            result(f"t{n}", "throughput", bps=bps * (1 + 0.01 * i), control=1e6, at=t),
                            agent(i, region, country=country), target,
                        )
        analyzer.evaluate(NOW)
        m = scrape(core)
        assert {lb["target"]: v for lb, v in m["vantage_degraded"]} == {slow: 1.0, fast: 0.0}
        info = {(lb["region"], lb["target"]): lb["verdict"] for lb, v in m["vantage_verdict_info"] if v == 1.0}
        assert info == {
            ("ru", slow): "degraded", ("de", slow): "degraded", ("us", slow): "degraded",
            ("ru", fast): "throttled", ("de", fast): "ok", ("us", fast): "ok",
        }
        throttled = {(lb["region"], lb["target"]): v for lb, v in m["vantage_throttled"] if v}
        assert throttled == {("ru", fast): 1.0}
    finally:
        await store.close()


async def test_uploads_are_exported_with_their_direction(tmp_path: Path) -> None:
    """A throttled upload next to fast downloads of the same URL: two throughput series
    per (region, target), and the verdict says which direction."""
    store = SQLiteStore(tmp_path / "v.db")
    analyzer = Analyzer(AnalysisConfig(window_s=60))
    core = Coordinator(store, analyzer, CoordinatorConfig(), clock=lambda: NOW)
    try:
        url = "http://twitter.example/upload"
        n = 0
        for rnd in range(3):
            t = NOW - 30 + rnd * 10
            for region in ("ru", "de", "us"):
                for i in (1, 2):
                    for direction in ("download", "upload"):
                        bps = 16_000.0 if (region, direction) == ("ru", "upload") else 9e5
                        n += 1
                        r = result(f"t{n}", "throughput", bps=bps * (1 + 0.01 * i), control=1e6, at=t)
                        r.result.data["direction"] = direction
                        core.ingest_results.observe(r, agent(i, region, country=region.upper()), url)
        analyzer.evaluate(NOW)
        m = scrape(core)
        bps = {(lb["region"], lb["direction"]): v for lb, v in m["vantage_throughput_bytes_per_second"]}
        assert bps[("ru", "upload")] < 20_000 and bps[("ru", "download")] > 8e5, bps
        assert len(bps) == 6
        info = {(lb["region"], lb["verdict"], lb["direction"]) for lb, v in m["vantage_verdict_info"] if v}
        assert info == {("ru", "throttled", "upload"), ("de", "ok", ""), ("us", "ok", "")}, info
    finally:
        await store.close()


def test_vantage_verdicts_prints_degraded_targets_as_it_prints_outages(capsys: object) -> None:
    from vantage.commands.client import print_verdicts

    resp = pb.GetVerdictsResponse(
        regions=[pb.RegionVerdict(region="ru", target="http://cdn/", verdict="degraded", reason="slow everywhere")],
        targets=[
            pb.TargetVerdict(target="http://cdn/", degraded=True, degraded_reason="slow from every group (de,ru)"),
            pb.TargetVerdict(target="http://down/", outage=True),
            pb.TargetVerdict(target="http://ok/"),
        ],
    )
    print_verdicts(resp)
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "ru      http://cdn/  degraded" in out
    assert out.endswith(
        "outage: http://down/\ndegraded: http://cdn/\n  http://cdn/: slow from every group (de,ru)\n"
    ), out


def test_vantage_verdicts_says_which_direction_is_throttled(capsys: pytest.CaptureFixture[str]) -> None:
    from vantage.commands.client import print_verdicts

    resp = pb.GetVerdictsResponse(
        regions=[pb.RegionVerdict(region="ru", target="http://t/up", verdict="throttled",
                                  throughput_bps=900_000, ratio=0.98, upload_bps=16_000,
                                  upload_ratio=0.02, direction="upload", reason="upload: ...")],
    )  # fmt: skip
    print_verdicts(resp)
    out = capsys.readouterr().out
    assert "throttled (upload)" in out and "900.0 kB/s up 16.0 kB/s" in out and "0.980 up 0.020" in out, out


def _wire_result(task: str, bps: float, checks: list[dict[str, object]], at: float) -> TaskResultData:
    """A throughput result with trigger checks, through the typed wire and back as the
    coordinator reads it (coordinator.convert)."""
    from coordinator.convert import probe_result_from_pb
    from protos.results import data_to_pb

    data = {"url": "https://video.example/big.bin", "bytes_per_second": bps, "sustained_bps": bps,
            "control": {"bytes_per_second": 1e6, "sustained_bps": 1e6, "failure": ""},
            "trigger_checks": checks}  # fmt: skip
    m = pb.ProbeResult(kind="throughput", target="ignored", duration_s=5.0)
    data_to_pb("throughput", data, m)
    return TaskResultData(task_id=task, job_id="j", agent_id="a", started_at=at - 5, finished_at=at,
                          result=probe_result_from_pb(m))  # fmt: skip


async def test_a_trigger_is_exported_and_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ru's throttle follows the name (its SNI swap escapes, its address swap does not),
    de's stays with the address; us is fine: the trigger label says so, and only on the
    throttled verdicts."""
    from coordinator.convert import verdicts_to_pb
    from vantage.commands.client import print_verdicts

    store = SQLiteStore(tmp_path / "v.db")
    analyzer = Analyzer(AnalysisConfig(window_s=60))
    core = Coordinator(store, analyzer, CoordinatorConfig(), clock=lambda: NOW)
    fast, slow = {"failure": "", "sustained_bps": 9e5}, {"failure": "", "sustained_bps": 16_000.0}
    checks = {"ru": [{"swap": "sni", **fast}, {"swap": "address", **slow}],
              "de": [{"swap": "sni", **slow}, {"swap": "address", **fast}],
              "us": [{"swap": "sni", **fast}, {"swap": "address", **fast}]}  # fmt: skip
    url = "https://video.example/big.bin"
    try:
        n = 0
        for rnd in range(3):
            for region in ("ru", "de", "us"):
                for i in (1, 2):
                    n += 1
                    bps = 9e5 if region == "us" else 16_000.0
                    r = _wire_result(f"t{n}", bps * (1 + 0.01 * i), checks[region], NOW - 30 + rnd * 10)
                    core.ingest_results.observe(r, agent(i, region, country=region.upper()), url)
        snap = analyzer.evaluate(NOW)
        m = scrape(core)
        info = {(lb["region"], lb["verdict"], lb["trigger"]) for lb, v in m["vantage_verdict_info"] if v}
        assert info == {("ru", "throttled", "sni"), ("de", "throttled", "address"), ("us", "ok", "")}, info
        print_verdicts(verdicts_to_pb(snap))
        out = capsys.readouterr().out
        lines = {line.split()[0]: line for line in out.splitlines() if line.split()[:1] in (["ru"], ["de"], ["us"])}
        assert "throttled (trigger: sni)" in lines["ru"], out
        assert "throttled (trigger: address)" in lines["de"], out
        assert "trigger" not in lines["us"], out
    finally:
        await store.close()


def _located_result(task: str, failure: str, locate: dict[str, object] | None, at: float) -> TaskResultData:
    """A tcp result, with a locate when given, through the typed wire and back."""
    from coordinator.convert import probe_result_from_pb
    from protos.results import data_to_pb, failure_number

    data: dict[str, object] = {"host": "203.0.113.9", "port": 443}
    if locate is not None:
        data["locate"] = locate
    m = pb.ProbeResult(kind="tcp", target="ignored", duration_s=1.0, failure=failure_number(failure))
    data_to_pb("tcp", data, m)
    return TaskResultData(task_id=task, job_id="j", agent_id="a", started_at=at - 1, finished_at=at,
                          result=probe_result_from_pb(m))  # fmt: skip


async def test_where_a_block_sits_is_exported_and_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ru's agents located the reset at hop 2; the verdict, its metric and `vantage
    verdicts` say where, and de's clean verdict says nothing of it."""
    from coordinator.convert import verdicts_to_pb
    from vantage.commands.client import print_verdicts

    store = SQLiteStore(tmp_path / "v.db")
    analyzer = Analyzer(AnalysisConfig(window_s=60))
    core = Coordinator(store, analyzer, CoordinatorConfig(), clock=lambda: NOW)
    hop = {"method": "syn", "at": "path", "censor_ttl": 2, "censor_hop": "198.18.0.6", "censor_asn": 64502,
           "response": "reset", "path": ["198.18.1.1", "198.18.0.6", "203.0.113.9"], "steps": []}  # fmt: skip
    try:
        n = 0
        for rnd in range(3):
            for region in ("ru", "de", "us"):
                for i in (1, 2):
                    n += 1
                    blocked = region == "ru"
                    r = _located_result(f"t{n}", "connection_reset" if blocked else "",
                                        hop if blocked else None, NOW - 30 + rnd * 10)  # fmt: skip
                    core.ingest_results.observe(r, agent(i, region), "203.0.113.9:443")
        snap = analyzer.evaluate(NOW)
        m = scrape(core)
        info = {(lb["region"], lb["verdict"], lb["censor_at"], lb["censor_hop"], lb["censor_asn"])
                for lb, v in m["vantage_verdict_info"] if v}  # fmt: skip
        assert info == {("ru", "blocked", "path", "198.18.0.6", "64502"), ("de", "ok", "", "", ""),
                        ("us", "ok", "", "", "")}, info  # fmt: skip
        print_verdicts(verdicts_to_pb(snap))
        out = capsys.readouterr().out
        ru = next(line for line in out.splitlines() if line.startswith("ru "))
        assert "blocked (connection_reset, at hop 2 198.18.0.6, AS64502)" in ru, out
    finally:
        await store.close()


def _trace_result(task: str, hops: list[str], reached: bool, at: float) -> TaskResultData:
    from coordinator.convert import probe_result_from_pb
    from protos.results import data_to_pb, failure_number

    data = {"host": "203.0.113.9", "reached": reached, "hop_count": len(hops), "stopped": "reached" if reached else "gap_limit",
            "hops": [{"ttl": i + 1, "address": a, "lost": 0 if a else 2} for i, a in enumerate(hops)]}  # fmt: skip
    m = pb.ProbeResult(kind="traceroute", target="ignored", duration_s=1.0,
                       failure=failure_number("" if reached else "generic_timeout"))  # fmt: skip
    data_to_pb("traceroute", data, m)
    return TaskResultData(task_id=task, job_id="j", agent_id="a", started_at=at - 1, finished_at=at,
                          result=probe_result_from_pb(m))  # fmt: skip


async def test_a_region_whose_paths_die_at_the_first_hop_is_unreachable_not_blocking(tmp_path: Path) -> None:
    """ru's connects fail, and its traceroutes get no answer past its own first hop: its
    network is down, so no blocked verdict; de's traces go through, de stays ok."""
    store = SQLiteStore(tmp_path / "v.db")
    analyzer = Analyzer(AnalysisConfig(window_s=60))
    core = Coordinator(store, analyzer, CoordinatorConfig(), clock=lambda: NOW)
    try:
        n = 0
        for rnd in range(3):
            at = NOW - 30 + rnd * 10
            for region in ("ru", "de", "us"):
                down = region == "ru"
                for i in (1, 2):
                    n += 1
                    tcp = _located_result(f"t{n}", "generic_timeout" if down else "", None, at)
                    core.ingest_results.observe(tcp, agent(i, region), "203.0.113.9:443")
                    hops = ["10.0.0.1", "", ""] if down else ["10.0.0.1", "10.0.1.1", "203.0.113.9"]
                    trace = _trace_result(f"r{n}", hops, not down, at + 1)
                    core.ingest_results.observe(trace, agent(i, region), "203.0.113.9")
        snap = analyzer.evaluate(NOW)
        verdicts = {(v.group, v.target): v.verdict for v in snap.regions}
        assert verdicts[("ru", "203.0.113.9:443")] == "unreachable", snap.regions
        assert verdicts[("de", "203.0.113.9:443")] == "ok"
        health = {r.group: r.reachable for r in snap.region_health}
        assert health["ru"] is False and health["de"] is True, snap.region_health
    finally:
        await store.close()


async def test_a_trace_that_never_probed_says_nothing_of_the_agents_network(tmp_path: Path) -> None:
    """ru's traceroutes fail before sending a probe (the name does not resolve: DNS
    censorship, say); ru's blocked verdict stands, it is not called unreachable."""
    from coordinator.convert import probe_result_from_pb
    from protos.results import data_to_pb, failure_number

    store = SQLiteStore(tmp_path / "v.db")
    analyzer = Analyzer(AnalysisConfig(window_s=60))
    core = Coordinator(store, analyzer, CoordinatorConfig(), clock=lambda: NOW)
    try:
        n = 0
        for rnd in range(3):
            at = NOW - 30 + rnd * 10
            for region in ("ru", "de", "us"):
                for i in (1, 2):
                    n += 1
                    tcp = _located_result(f"t{n}", "connection_reset" if region == "ru" else "", None, at)
                    core.ingest_results.observe(tcp, agent(i, region), "203.0.113.9:443")
                    if region == "ru":
                        m = pb.ProbeResult(kind="traceroute", target="x", duration_s=0.1,
                                           failure=failure_number("dns_nxdomain"))  # fmt: skip
                        data_to_pb("traceroute", {"host": "blocked.example", "hops": [], "reached": False}, m)
                        trace = TaskResultData(task_id=f"r{n}", job_id="j", agent_id="a", started_at=at,
                                               finished_at=at + 1, result=probe_result_from_pb(m))  # fmt: skip
                        core.ingest_results.observe(trace, agent(i, region), "blocked.example")
        snap = analyzer.evaluate(NOW)
        verdicts = {(v.group, v.target): v.verdict for v in snap.regions}
        assert verdicts[("ru", "203.0.113.9:443")] == "blocked", snap.regions
        assert {r.group: r.reachable for r in snap.region_health}["ru"] is True
    finally:
        await store.close()
