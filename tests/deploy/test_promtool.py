"""`promtool check config`, `check rules` and `test rules` on the shipped Prometheus files."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.deploy.support import DEPLOY

PROM = DEPLOY / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip(
            "promtool is not installed (Debian package: prometheus; scripts/test installs it)"
        )
    return subprocess.run(
        [exe, *args], cwd=PROM, capture_output=True, text=True, timeout=90, check=False
    )


@pytest.mark.prometheus
def test_promtool_check_config() -> None:
    proc = promtool("check", "config", "prometheus.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The rules glob must find the rule files, or Prometheus would load none silently.
    rule_files = sorted(p.name for p in (PROM / "rules").glob("*.yml"))
    assert len(rule_files) >= 2
    assert f"SUCCESS: {len(rule_files)} rule files found" in proc.stdout


@pytest.mark.prometheus
def test_promtool_check_rules() -> None:
    files = sorted(str(p.relative_to(PROM)) for p in (PROM / "rules").glob("*.yml"))
    proc = promtool("check", "rules", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(files)


@pytest.mark.prometheus
def test_promtool_test_rules() -> None:
    tests = sorted(str(p.relative_to(PROM)) for p in (PROM / "tests").glob("*.yml"))
    assert tests, "no rule unit tests under deploy/prometheus/tests"
    proc = promtool("test", "rules", *tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout and "FAILED" not in proc.stdout


@pytest.mark.prometheus
def test_every_alert_has_a_unit_test_firing_and_not_firing() -> None:
    alerts = {
        rule["alert"]
        for path in (PROM / "rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in (PROM / "tests").glob("*.yml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert {
        "VantageRegionThrottled",
        "VantageRegionBlocked",
        "VantageTargetOutage",
        "VantageTargetDegraded",
        "VantageRegionAgentsMissing",
    } <= alerts
    assert alerts <= firing, f"never shown firing: {sorted(alerts - firing)}"
    assert alerts <= quiet, f"never shown quiet: {sorted(alerts - quiet)}"
    for path in (PROM / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule.get("for"), f"{rule['alert']} has no for:"
                    assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
