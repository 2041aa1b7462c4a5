"""The exact ValueError texts of bad measurements and configurations (they name the field
and the reason, and reach whoever sent the bad value), and the values at the edges of
what is accepted."""

from __future__ import annotations

import pytest

from coordinator.analysis import AnalysisConfig
from tests.analysis.helpers import measurement

INT_SETTINGS = (
    "max_samples_per_agent",
    "min_samples",
    "min_agents",
    "outage_min_groups",
    "recover_evaluations",
    "max_targets",
    "max_groups",
)
RATIO_SETTINGS = (
    "alpha",
    "throttle_ratio",
    "agent_quorum",
    "cross_throttle_ratio",
    "block_failure_ratio",
    "works_success_ratio",
)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"at": True}, "Measurement.at: must be a number, got bool"),
        ({"at": "1.0"}, "Measurement.at: must be a number, got str"),
        ({"at": float("inf")}, "Measurement.at: must be finite, got inf"),
        ({"group": ""}, "Measurement.group: must be a non-empty string, got ''"),
        ({"group": 7}, "Measurement.group: must be a non-empty string, got 7"),
        ({"agent_id": ""}, "Measurement.agent_id: must be a non-empty string, got ''"),
        ({"target": None}, "Measurement.target: must be a non-empty string, got None"),
        (
            {"kind": "smoke"},
            "Measurement.kind: must be one of ['dns', 'http', 'ping', 'tcp', 'throughput', "
            "'tls', 'traceroute'], got 'smoke'",
        ),
        (
            {"failure": "dns_lie"},
            "Measurement.failure: must be None or one of the closed failure set, got 'dns_lie'",
        ),
        ({"duration_s": -0.5}, "Measurement.duration_s: must be >= 0.0, got -0.5"),
        ({"duration_s": float("nan")}, "Measurement.duration_s: must be finite, got nan"),
        ({"throughput_bps": -5.0}, "Measurement.throughput_bps: must be >= 0.0, got -5.0"),
        ({"throughput_bps": "fast"}, "Measurement.throughput_bps: must be a number, got str"),
        ({"control_bps": -1}, "Measurement.control_bps: must be >= 0.0, got -1"),
        ({"control_bps": float("inf")}, "Measurement.control_bps: must be finite, got inf"),
        ({"block_page": "yes"}, "Measurement.block_page: must be a bool, got 'yes'"),
        ({"block_page": 1}, "Measurement.block_page: must be a bool, got 1"),
        (
            {"country": "ru"},
            "Measurement.country: must be empty or a two-letter upper-case code, got 'ru'",
        ),
        (
            {"country": "RUS"},
            "Measurement.country: must be empty or a two-letter upper-case code, got 'RUS'",
        ),
        (
            {"country": None},
            "Measurement.country: must be empty or a two-letter upper-case code, got None",
        ),
    ],
)
def test_bad_measurement_is_refused_with_the_field_and_the_reason(
    over: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        measurement(**over)
    assert str(caught.value) == message


def test_zero_duration_and_zero_speeds_are_valid_measurements() -> None:
    """The 2021 replay has no durations (0.0), and a stalled download measures 0 B/s."""
    m = measurement(kind="throughput", duration_s=0.0, throughput_bps=0.0, control_bps=0.0)
    assert (m.duration_s, m.throughput_bps, m.control_bps) == (0.0, 0.0, 0.0)
    assert measurement(at=0, duration_s=0).at == 0  # integers are numbers too
    assert measurement(failure="generic_timeout").failure == "generic_timeout"


def test_failure_class_of_each_kind_of_outcome() -> None:
    assert (measurement().failed, measurement().failure_class, measurement().is_evidence) == (False, "", True)
    forbidden = measurement(failure="target_forbidden")
    assert (forbidden.failed, forbidden.failure_class, forbidden.is_evidence) == (False, "", False)
    timeout = measurement(failure="generic_timeout", block_page=True)
    assert (timeout.failed, timeout.failure_class) == (True, "generic_timeout")
    # a block page is a failure even when the agent's policy is mentioned alongside
    page = measurement(kind="http", failure="target_forbidden", block_page=True)
    assert (page.failed, page.failure_class) == (True, "block_page")


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"window_s": 0.0}, "AnalysisConfig.window_s: must be > 0, got 0.0"),
        ({"window_s": -1.0}, "AnalysisConfig.window_s: must be >= 0.0, got -1.0"),
        ({"window_s": float("inf")}, "AnalysisConfig.window_s: must be finite, got inf"),
        ({"recover_s": -1.0}, "AnalysisConfig.recover_s: must be >= 0.0, got -1.0"),
        ({"recover_s": "20"}, "AnalysisConfig.recover_s: must be a number, got str"),
        ({"alpha": "high"}, "AnalysisConfig.alpha: must be a number, got str"),
        ({"alpha": float("nan")}, "AnalysisConfig.alpha: must be finite, got nan"),
        ({"alpha": 0.0}, "AnalysisConfig.alpha: must be in (0, 1], got 0.0"),
        ({"throttle_ratio": 1.01}, "AnalysisConfig.throttle_ratio: must be in (0, 1], got 1.01"),
        ({"agent_quorum": -0.5}, "AnalysisConfig.agent_quorum: must be in (0, 1], got -0.5"),
        ({"min_agents": 0}, "AnalysisConfig.min_agents: must be an integer >= 1, got 0"),
        ({"min_samples": True}, "AnalysisConfig.min_samples: must be an integer >= 1, got True"),
        ({"max_groups": 2.0}, "AnalysisConfig.max_groups: must be an integer >= 1, got 2.0"),
    ],
)
def test_bad_config_is_refused_with_the_setting_and_the_reason(
    over: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as caught:
        AnalysisConfig(**over)  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.parametrize("name", INT_SETTINGS)
def test_every_count_setting_accepts_one_and_refuses_zero_and_bools(name: str) -> None:
    assert getattr(AnalysisConfig(**{name: 1}), name) == 1  # type: ignore[arg-type]
    for bad in (0, -3, True, 1.5):
        with pytest.raises(ValueError) as caught:
            AnalysisConfig(**{name: bad})  # type: ignore[arg-type]
        assert str(caught.value) == f"AnalysisConfig.{name}: must be an integer >= 1, got {bad!r}"


@pytest.mark.parametrize("name", RATIO_SETTINGS)
def test_every_ratio_setting_accepts_exactly_one_and_refuses_zero(name: str) -> None:
    assert getattr(AnalysisConfig(**{name: 1.0}), name) == 1.0  # type: ignore[arg-type]
    assert getattr(AnalysisConfig(**{name: 1e-9}), name) == 1e-9  # type: ignore[arg-type]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError) as caught:
            AnalysisConfig(**{name: bad})  # type: ignore[arg-type]
        assert str(caught.value) == f"AnalysisConfig.{name}: must be in (0, 1], got {bad!r}"
    with pytest.raises(ValueError) as caught:
        AnalysisConfig(**{name: None})  # type: ignore[arg-type]
    assert str(caught.value) == f"AnalysisConfig.{name}: must be a number, got NoneType"


def test_short_windows_and_instant_recovery_are_valid() -> None:
    cfg = AnalysisConfig(window_s=0.5, recover_s=0.0)
    assert (cfg.window_s, cfg.recover_s) == (0.5, 0.0)


def test_field_names_list_every_setting_in_order_and_round_trip() -> None:
    names = AnalysisConfig.field_names()
    assert names == (
        "window_s",
        "max_samples_per_agent",
        "min_samples",
        "min_agents",
        "alpha",
        "throttle_ratio",
        "agent_quorum",
        "cross_throttle_ratio",
        "block_failure_ratio",
        "works_success_ratio",
        "outage_min_groups",
        "recover_evaluations",
        "recover_s",
        "health_horizon_s",
        "max_targets",
        "max_groups",
    )
    custom = AnalysisConfig(window_s=30.0, min_agents=3, alpha=0.01)
    assert AnalysisConfig(**{n: getattr(custom, n) for n in names}) == custom
