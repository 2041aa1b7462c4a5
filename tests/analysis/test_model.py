from __future__ import annotations

import subprocess
import sys
from dataclasses import FrozenInstanceError

import pytest

from coordinator.analysis import AnalysisConfig, Snapshot
from tests.analysis.helpers import measurement


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"kind": "smoke"}, "Measurement.kind"),
        ({"failure": "dns_lie"}, "Measurement.failure"),
        ({"group": ""}, "Measurement.group"),
        ({"agent_id": ""}, "Measurement.agent_id"),
        ({"target": ""}, "Measurement.target"),
        ({"at": float("nan")}, "Measurement.at"),
        ({"duration_s": -1.0}, "Measurement.duration_s"),
        ({"throughput_bps": -5.0}, "Measurement.throughput_bps"),
        ({"control_bps": float("inf")}, "Measurement.control_bps"),
        ({"block_page": "yes"}, "Measurement.block_page"),
    ],
)
def test_measurement_rejects_bad_fields_by_name(over: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        measurement(**over)


def test_measurement_failure_semantics() -> None:
    assert not measurement().failed
    assert measurement(failure="connection_reset").failed
    assert measurement(failure="connection_reset").failure_class == "connection_reset"
    page = measurement(kind="http", block_page=True)
    assert page.failed and page.failure_class == "block_page"
    forbidden = measurement(failure="target_forbidden")
    assert not forbidden.failed and not forbidden.is_evidence
    with pytest.raises(FrozenInstanceError):
        measurement().at = 2.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"window_s": 0.0}, "AnalysisConfig.window_s"),
        ({"min_agents": 0}, "AnalysisConfig.min_agents"),
        ({"max_targets": 0}, "AnalysisConfig.max_targets"),
        ({"max_samples_per_agent": 1.5}, "AnalysisConfig.max_samples_per_agent"),
        ({"alpha": 0.0}, "AnalysisConfig.alpha"),
        ({"throttle_ratio": 1.5}, "AnalysisConfig.throttle_ratio"),
        ({"recover_s": -1.0}, "AnalysisConfig.recover_s"),
    ],
)
def test_config_rejects_bad_values_by_name(over: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        AnalysisConfig(**over)  # type: ignore[arg-type]


def test_config_defaults_are_the_documented_ones() -> None:
    cfg = AnalysisConfig()
    assert (cfg.window_s, cfg.max_samples_per_agent, cfg.min_samples, cfg.min_agents) == (
        60.0,
        3,
        4,
        2,
    )
    assert (cfg.alpha, cfg.throttle_ratio, cfg.agent_quorum, cfg.cross_throttle_ratio) == (
        0.05,
        0.4,
        0.5,
        0.1,
    )
    assert (cfg.recover_evaluations, cfg.recover_s, cfg.max_targets) == (2, 20.0, 500)
    assert Snapshot(evaluated_at=0.0).regions == ()


def test_analysis_core_imports_nothing_of_the_edges() -> None:
    """Pure core: importing it must not pull gRPC, aiohttp, prometheus_client, SQLite,
    the agent or the generated protos."""
    code = (
        "import sys, coordinator.analysis, coordinator.analysis.replay\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('grpc', 'aiohttp', 'prometheus_client', 'sqlite3', '_sqlite3', 'agent', 'protos', 'numpy', 'scipy')]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
