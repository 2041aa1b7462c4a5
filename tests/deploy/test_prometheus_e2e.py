"""The shipped Prometheus config, rules and Grafana dashboard against a real coordinator.

`vantage demo` runs a coordinator, agents in de-fra, us-nyc and ru-msk, local targets, and
throttles ru-msk's path to one target. A real `prometheus` server scrapes it with
deploy/prometheus/prometheus.yml and loads deploy/prometheus/rules/*.yml. The config is the
shipped file with three textual changes only: the scrape target address, and
scrape_interval/evaluation_interval 15s -> 1s so the test needs seconds, not minutes, of
samples (the rules' `for:` durations are kept as shipped). Storage goes to tmp_path.

Then every PromQL expression of the dashboard (panel queries and the selectors inside the
template variables' label_values(), with $region/$target set to the throttled pair and
$__rate_interval to 1m) and of the recording rules is evaluated through /api/v1/query and
must return data. An alert expression is a condition that is false in the demo unless its
situation is staged (nothing is blocked, down or missing there), so for those the test
checks the expression evaluates and every series it reads exists; the throttled alert's
expression must return the throttled pair, and the alert must reach "firing".
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from coordinator.client import VantageClient
from tests.deploy.support import (
    DEPLOY,
    free_port,
    http_get,
    prom_query,
    running,
    tail,
    vantage_command,
    wait_for,
)
from tests.polling import poll

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

PROM_DIR = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "vantage.json"
BUDGET_S = 380.0


def demo_problem() -> str | None:
    """Why `vantage demo` cannot serve this test, or None (a problem fails the test)."""
    proc = subprocess.run(
        [*vantage_command(), "demo", "--help"], capture_output=True, text=True, timeout=60
    )
    if proc.returncode != 0:
        return f"`vantage demo --help` failed: {proc.stderr.strip()}"
    for flag in ("--keep-running", "--metrics-listen", "--state-dir", "--duration"):
        if flag not in proc.stdout:
            return f"`vantage demo` has no {flag}"
    return None


def write_prometheus_config(directory: Path, *metrics_addresses: str) -> Path:
    """The shipped config with only the targets and the two intervals changed."""
    text = (PROM_DIR / "prometheus.yml").read_text()
    targets = ", ".join(f'"{a}"' for a in metrics_addresses)
    for old, new in (
        ('targets: ["coordinator-1:9477", "coordinator-2:9477"]', f"targets: [{targets}]"),
        ("scrape_interval: 15s", "scrape_interval: 1s"),
        ("evaluation_interval: 15s", "evaluation_interval: 1s"),
    ):
        assert text.count(old) == 1, f"the shipped prometheus.yml no longer has {old!r} once"
        text = text.replace(old, new)
    directory.mkdir(parents=True)
    shutil.copytree(PROM_DIR / "rules", directory / "rules")
    config = directory / "prometheus.yml"
    config.write_text(text)
    return config


def grafana_regex_escape(value: str) -> str:
    """What Grafana's Prometheus datasource does to a variable value used in =~ "..."."""
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"[$^*{}\[\]'+?.()|]", lambda m: "\\\\" + m.group(0), value)


def dashboard_queries(region: str, target: str) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel query and template variable, variables substituted."""
    dashboard = json.loads(DASHBOARD.read_text())
    values = {"region": grafana_regex_escape(region), "target": grafana_regex_escape(target)}

    def substitute(expr: str) -> str:
        expr = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m")
        expr = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], expr)
        assert "$" not in expr, expr
        return expr

    out: list[tuple[str, str]] = []
    for panel in dashboard["panels"]:
        for query in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {query['refId']}", substitute(query["expr"])))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        definition = variable["definition"]
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", definition)
        assert match, f"variable {variable['name']}: {definition!r} is not label_values(sel, label)"
        out.append((f"variable ${variable['name']}", substitute(match.group(1))))
    return out


def shipped_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in sorted((PROM_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def series_read_by(expr: str) -> set[str]:
    """Metric names an expression selects (not functions, keywords or label names)."""
    names = set(re.findall(r"\b((?:[a-z_]+:)?vantage_[a-z_]+(?::[a-z0-9_]+)?|up)\b(?!\s*\()", expr))
    return {n for n in names if not n.endswith("_")}


def result_of(base: str, expr: str) -> list[dict[str, Any]]:
    answer = prom_query(base, expr)
    assert answer.get("status") == "success", f"{expr!r}: {answer}"
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


@pytest.mark.timeout(400)
def test_dashboard_and_rules_return_data_and_throttled_alert_fires(tmp_path: Path) -> None:
    started = time.monotonic()
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("the prometheus server is not installed (Debian package: prometheus)")
    problem = demo_problem()
    assert problem is None, problem

    metrics_address = f"127.0.0.1:{free_port()}"
    demo_log = tmp_path / "demo.log"
    demo_argv = [
        *vantage_command(), "demo", "--keep-running", "--duration", "600",
        "--listen", "127.0.0.1:0", "--metrics-listen", metrics_address,
        "--state-dir", str(tmp_path / "demo"),
    ]  # fmt: skip
    with running(demo_argv, log=demo_log) as demo:

        def metrics_up() -> bool | None:
            assert demo.poll() is None, f"vantage demo exited:\n{tail(demo_log)}"
            status, body = http_get(f"http://{metrics_address}/metrics")
            return True if status == 200 and b"vantage_agents_connected" in body else None

        wait_for("the demo's /metrics to show agents", metrics_up, timeout=90)

        config = write_prometheus_config(tmp_path / "prometheus", metrics_address)
        prom_address = f"127.0.0.1:{free_port()}"
        base = f"http://{prom_address}"
        prom_log = tmp_path / "prometheus.log"
        prom_argv = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address={prom_address}",
            "--log.level=warn",
        ]
        with running(prom_argv, log=prom_log) as prom:

            def ready() -> bool | None:
                assert prom.poll() is None, f"prometheus exited:\n{tail(prom_log)}"
                return True if http_get(f"{base}/-/ready")[0] == 200 else None

            wait_for("prometheus to be ready", ready, timeout=60)
            rules_api = json.loads(http_get(f"{base}/api/v1/rules")[1])
            loaded = sum(len(g["rules"]) for g in rules_api["data"]["groups"])
            assert loaded == len(shipped_rules()), "Prometheus did not load every shipped rule"

            def scraped() -> bool | None:
                up = result_of(base, 'up{job="vantage-coordinator"}')
                return True if up and up[0]["value"][1] == "1" else None

            wait_for("a successful scrape of the coordinator", scraped, timeout=30)

            def throttled_pair() -> tuple[str, str] | None:
                assert demo.poll() is None, f"vantage demo exited:\n{tail(demo_log)}"
                rows = result_of(base, "vantage_throttled == 1")
                if not rows:
                    return None
                return rows[0]["metric"]["region"], rows[0]["metric"]["target"]

            region, target = wait_for(
                "the demo's throttled region to show in vantage_throttled",
                throttled_pair,
                timeout=200,
                interval=2,
            )
            alerts = {r["alert"]: r["expr"] for r in shipped_rules() if "alert" in r}

            def empty_queries() -> list[str]:
                """Every dashboard, recording-rule and alert-input query that has no data
                yet (rate() windows need a few scrapes, so this is polled)."""
                empty: list[str] = []
                for where, expr in dashboard_queries(region, target):
                    if not result_of(base, expr):
                        empty.append(f"{where}: {expr}")
                for rule in shipped_rules():
                    expr = rule["expr"]
                    if "record" in rule:
                        if not result_of(base, expr):
                            empty.append(f"recording rule {rule['record']}: {expr}")
                        continue
                    result_of(base, expr)  # evaluates without error
                    for name in sorted(series_read_by(expr)):
                        if not result_of(base, name):
                            empty.append(f"alert {rule['alert']} reads {name}, which has no data")
                return empty

            empty, took = poll(empty_queries, lambda e: not e, timeout=60, interval=2)
            assert took is not None, "queries that returned no data for 60 s:\n" + "\n".join(empty)
            variable_values = {
                row["metric"]["region"] for row in result_of(base, "vantage_agents_connected")
            }
            assert region in variable_values

            throttled = result_of(base, alerts["VantageRegionThrottled"])
            assert {(r["metric"]["region"], r["metric"]["target"]) for r in throttled} >= {
                (region, target)
            }
            recorded = result_of(base, "region:vantage_throttled_targets:sum")
            assert {r["metric"]["region"] for r in recorded} >= {region}

            def firing() -> dict[str, Any] | None:
                answer = json.loads(http_get(f"{base}/api/v1/alerts")[1])
                for alert in answer["data"]["alerts"]:
                    labels = alert["labels"]
                    if (
                        labels["alertname"] == "VantageRegionThrottled"
                        and labels.get("region") == region
                        # the demo throttles two targets in its region (downloads of one,
                        # uploads to another): the alert of the one picked above
                        and labels.get("target") == target
                        and alert["state"] == "firing"
                    ):
                        found: dict[str, Any] = alert
                        return found
                return None

            remaining = BUDGET_S - (time.monotonic() - started)
            alert = wait_for(
                f"VantageRegionThrottled to fire for {region}",
                firing,
                timeout=max(remaining, 75.0),
                interval=2,
            )
            assert alert["labels"]["target"] == target
            assert region in alert["annotations"]["summary"]
            assert target in alert["annotations"]["summary"]
            # The description's query template found the throughput ratio.
            assert re.search(
                r"at \d+(\.\d+)?% of the throughput", alert["annotations"]["description"]
            ), alert


def test_a_fleet_scraped_whole_shows_each_verdict_once_before_and_after_a_takeover(
    tmp_path: Path, pg_server: Any
) -> None:
    """Two coordinators on one PostgreSQL database, four agents in two regions spread over
    them, a periodic tcp job; the shipped config scrapes both. Of the verdict series only
    one copy exists per (region, target), and the recording rule gives one code per pair,
    both before and after the lease holder is killed -9 and the other takes over."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("the prometheus server is not installed (Debian package: prometheus)")
    from tests.e2e.harness import Targets, local_targets

    db = pg_server.create_db()
    members = [(free_port(), free_port()) for _ in range(2)]
    argv = lambda port, metrics: [  # noqa: E731
        *vantage_command(), "coordinator", "--listen", f"127.0.0.1:{port}", "--metrics-listen",
        f"127.0.0.1:{metrics}", "--db", db, "--min-interval", "1s", "--reassign-after", "2s",
    ]  # fmt: skip
    fleet = ",".join(f"127.0.0.1:{p}" for p, _ in members)
    (tmp_path / "targets").mkdir()
    with contextlib.ExitStack() as stack:
        targets: Targets = stack.enter_context(local_targets(tmp_path / "targets"))
        coords = []
        for i, (port, metrics) in enumerate(members):
            coords.append(stack.enter_context(running(argv(port, metrics), log=tmp_path / f"c{i}.log")))
            wait_for(f"coordinator {i} to serve metrics",
                     lambda m=metrics: True if http_get(f"http://127.0.0.1:{m}/metrics")[0] == 200 else None,
                     timeout=30)  # fmt: skip
        for i, region in enumerate(("de", "de", "ru", "ru")):
            stack.enter_context(running([
                *vantage_command(), "agent", "--coordinator", fleet, "--region", region, "--id", f"{region}-{i}",
                "--state-dir", str(tmp_path / f"a{i}"), "--allow-private-targets",
            ], log=tmp_path / f"a{i}.log"))  # fmt: skip
        client = stack.enter_context(VantageClient(f"127.0.0.1:{members[1][0]}"))  # the relay
        wait_for("four agents", lambda: True if sum(a.connected for a in client.agents()) == 4 else None, timeout=45)
        client.submit("tcp", [f"127.0.0.1:{targets.http_port}"], every_s=1.0, count=100_000)

        config = write_prometheus_config(tmp_path / "prometheus", *(f"127.0.0.1:{m}" for _, m in members))
        base = f"http://127.0.0.1:{free_port()}"
        stack.enter_context(running([
            prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address={base.removeprefix('http://')}", "--log.level=warn",
        ], log=tmp_path / "prometheus.log"))  # fmt: skip
        wait_for("prometheus to be ready", lambda: True if http_get(f"{base}/-/ready")[0] == 200 else None, timeout=60)

        def once_each() -> dict[str, Any] | None:
            ups = result_of(base, 'up{job="vantage-coordinator"} == 1')
            pairs = result_of(base, "count by (region, target) (vantage_verdict_info)")
            codes = result_of(base, "region_target:vantage_verdict:code")
            leaders = result_of(base, "sum(vantage_fleet_leader)")
            if len(pairs) != 2 or len(codes) != 2 or not leaders:
                return None
            return {"ups": len(ups), "copies": sorted(r["value"][1] for r in pairs),
                    "leaders": leaders[0]["value"][1], "codes": sorted(r["value"][1] for r in codes)}  # fmt: skip

        def scraped_both() -> dict[str, Any] | None:  # Prometheus scrapes its two targets at its own pace
            now = once_each()
            return now if now is not None and now["ups"] == 2 else None

        before = wait_for("both coordinators scraped and both regions' verdicts", scraped_both, timeout=90, interval=1)
        assert before == {"ups": 2, "copies": ["1", "1"], "leaders": "1", "codes": ["0", "0"]}, before
        exported = [b"vantage_verdict_info{" in http_get(f"http://127.0.0.1:{m}/metrics")[1] for _, m in members]
        assert exported == [True, False], "only the lease holder exports verdict series"

        coords[0].send_signal(signal.SIGKILL)  # the lease holder
        coords[0].wait(10)

        def taken_over() -> bool | None:
            return True if b"vantage_fleet_leader 1.0" in http_get(f"http://127.0.0.1:{members[1][1]}/metrics")[1] else None

        wait_for("the other coordinator to take over", taken_over, timeout=30)

        def moved() -> dict[str, Any] | None:
            now = once_each()
            if now is None or now["ups"] != 1:
                return None
            rows = result_of(base, "vantage_verdict_info")
            return now if {r["metric"]["instance"] for r in rows} == {f"127.0.0.1:{members[1][1]}"} else None

        after = wait_for("the verdicts to come from the new holder alone", moved, timeout=60, interval=1)
        assert after == {"ups": 1, "copies": ["1", "1"], "leaders": "1", "codes": ["0", "0"]}, after
