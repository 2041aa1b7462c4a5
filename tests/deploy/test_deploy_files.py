"""Static checks of the deployment kit: the compose file, the Dockerfile, the systemd units,
the cloud-init example and the Grafana files parse, reference only files that exist in the
repository, and carry the hardening they promise.

No Docker engine runs here or in CI, so the image and the compose stack are never built:
these checks are what stands between a typo and an operator's first `docker compose up`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    DEPLOY,
    DOCKERFILE,
    REPO,
    dockerfile_instructions,
    healthcheck_command,
    installed_vantage,
)

COMPOSE = DEPLOY / "docker" / "compose.yaml"
SYSTEMD = DEPLOY / "systemd"
UNITS = ("vantage-agent.service", "vantage-coordinator.service")

# ---------------------------------------------------------------------------------------
# systemd units: a small parser of our own (configparser rejects repeated keys, which
# systemd allows, e.g. SystemCallFilter=).


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [values in order]}} of a systemd unit file; continuation lines joined."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} before any [section]"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key)
    assert values, f"missing {key}="
    return values[-1]


@pytest.mark.parametrize("unit", UNITS)
def test_unit_is_hardened_and_restarts_with_backoff(unit: str) -> None:
    service = parse_unit(SYSTEMD / unit)["Service"]
    short = unit.removesuffix(".service")
    assert one(service, "DynamicUser") == "yes"
    assert one(service, "NoNewPrivileges") == "yes"
    assert one(service, "ProtectSystem") == "strict"
    assert one(service, "ProtectHome") == "yes"
    assert one(service, "PrivateTmp") == "yes"
    assert one(service, "StateDirectory") == short
    assert one(service, "CapabilityBoundingSet") == ""
    assert one(service, "Restart") == "on-failure"
    assert one(service, "RestartSec")
    assert int(one(service, "RestartSteps")) > 1
    assert one(service, "RestartMaxDelaySec")
    assert one(service, "EnvironmentFile") == f"/etc/vantage/{short.removeprefix('vantage-')}.env"
    assert "User" not in service, "DynamicUser= picks the user; a fixed User= would fight it"
    assert parse_unit(SYSTEMD / unit)["Install"]["WantedBy"] == ["multi-user.target"]


def _exec_start(unit: str) -> list[str]:
    return one(parse_unit(SYSTEMD / unit)["Service"], "ExecStart").split()


def _env_example_keys(name: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{name}: {line!r} is not KEY=VALUE"
            assert key == key.strip() and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), line
            keys[key] = value
    return keys


@pytest.mark.parametrize(
    ("unit", "env_example"),
    [
        ("vantage-agent.service", "agent.env.example"),
        ("vantage-coordinator.service", "coordinator.env.example"),
    ],
)
def test_units_use_only_variables_the_env_example_documents(unit: str, env_example: str) -> None:
    argv = _exec_start(unit)
    assert argv[0] == "/opt/vantage/venv/bin/vantage", "install-agent.sh installs it there"
    state_dir = f"/var/lib/{unit.removesuffix('.service')}"
    assert any(arg.startswith(state_dir) for arg in argv), f"state must live under {state_dir}"
    used = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)\}?", " ".join(argv)))
    documented = set(_env_example_keys(env_example))
    # VANTAGE_TLS_ARGS comes from the tls.conf drop-in, not from the env file.
    from_dropin = {"VANTAGE_TLS_ARGS"} if "coordinator" in unit else set()
    assert used - from_dropin <= documented, f"undocumented: {sorted(used - documented)}"
    # Each documented key is explained by a comment right above it.
    lines = (SYSTEMD / env_example).read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert i > 0 and lines[i - 1].startswith("#"), f"{env_example}: {line!r} has no comment"


def test_unit_flags_exist_in_the_cli() -> None:
    """Every --flag the units pass is one `vantage agent/coordinator --help` knows."""
    from vantage.cli import build_parser

    parser = build_parser()
    sub_actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    choices: dict[str, Any] = sub_actions[0].choices  # type: ignore[attr-defined]
    for unit, command in (
        ("vantage-agent.service", "agent"),
        ("vantage-coordinator.service", "coordinator"),
    ):
        sub = choices.get(command)
        assert sub is not None, f"{unit} runs `vantage {command}`, which does not exist"
        known = {o for a in sub._actions for o in a.option_strings}
        flags = [arg for arg in _exec_start(unit) if arg.startswith("--")]
        assert flags, unit
        for flag in flags:
            assert flag in known, f"{unit}: `vantage {command}` has no {flag}"
    tls = parse_unit(SYSTEMD / "vantage-coordinator.service.d" / "tls.conf")["Service"]
    (env,) = tls["Environment"]
    coordinator_known = {o for a in choices["coordinator"]._actions for o in a.option_strings}
    for flag in re.findall(r"--[a-z-]+", env):
        assert flag in coordinator_known, f"tls.conf: `vantage coordinator` has no {flag}"


def test_tls_dropin_feeds_the_coordinator_unit() -> None:
    tls = parse_unit(SYSTEMD / "vantage-coordinator.service.d" / "tls.conf")["Service"]
    assert len(tls["LoadCredential"]) == 2
    assert "$VANTAGE_TLS_ARGS" in _exec_start("vantage-coordinator.service")
    names = {cred.split(":", 1)[0] for cred in tls["LoadCredential"]}
    (env,) = tls["Environment"]
    for name in names:
        assert f"%d/{name}" in env


def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """`systemd-analyze verify` on the units (and the TLS drop-in), with ExecStart pointed at
    this checkout's `vantage` because verify insists the binary exists. Any complaint fails
    the test, except that systemd < 254 does not know RestartSteps/RestartMaxDelaySec (it
    ignores them and restarts every RestartSec)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package: systemd)")
    vantage = installed_vantage()
    for unit in UNITS:
        text = (SYSTEMD / unit).read_text().replace("/opt/vantage/venv/bin/vantage", vantage)
        (tmp_path / unit).write_text(text)
    dropin = tmp_path / "vantage-coordinator.service.d"
    dropin.mkdir()
    shutil.copy(SYSTEMD / "vantage-coordinator.service.d" / "tls.conf", dropin / "tls.conf")
    proc = subprocess.run(
        [analyze, "verify", "--man=no", *(f"./{unit}" for unit in UNITS)],
        cwd=tmp_path,
        env={
            "SYSTEMD_UNIT_PATH": f"{tmp_path}:",
            "PATH": "/usr/bin:/bin",
            "SYSTEMD_LOG_COLOR": "0",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    allowed = re.compile(r"Unknown key '(RestartSteps|RestartMaxDelaySec)' in section \[Service\]")
    complaints = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if line.strip() and not allowed.search(line)
    ]
    assert proc.returncode == 0 and not complaints, "\n".join(complaints) or proc.returncode


# ---------------------------------------------------------------------------------------
# The container image and the compose stack.


def test_dockerfile_is_slim_nonroot_and_health_checked() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert froms and all(f.split()[0] == "python:3.11-slim" for f in froms)
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    # The final stage runs as that user: no USER root after it.
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    assert any(word == "USER" for word, _ in instructions[last_from:])
    argv = healthcheck_command()
    assert argv[:2] == ["vantage", "health"]
    assert "--coordinator" in argv
    entry = json.loads(next(rest for word, rest in instructions if word == "ENTRYPOINT"))
    assert entry == ["vantage"]
    # COPY sources exist (relative to the build context: the repository root).
    for word, rest in instructions:
        if word == "COPY" and "--from=" not in rest:
            *sources, _dest = rest.split()
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    ignore = (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().split()
    for word, rest in instructions:
        if word == "COPY" and "--from=" not in rest:
            for source in rest.split()[:-1]:
                assert f"!{source.rstrip('/')}" in {i.rstrip("/") for i in ignore}, (
                    f"COPY {source}: excluded from the build context by Dockerfile.dockerignore"
                )


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_compose_services_and_mounts_exist() -> None:
    compose = load_compose()
    services: dict[str, Any] = compose["services"]
    agents = {name: svc for name, svc in services.items() if name.startswith("agent-")}
    assert {"postgres", "coordinator-1", "coordinator-2", "prometheus", "grafana"} <= set(services)
    regions = {svc["labels"]["io.vantage.region"] for svc in agents.values()}
    assert len(agents) == 3 and len(regions) == 3
    for name, svc in agents.items():
        region = svc["labels"]["io.vantage.region"]
        assert f"--region={region}" in svc["command"], name
        assert "--coordinator=coordinator-1:50051,coordinator-2:50051" in svc["command"], name
        assert svc["healthcheck"] == {"disable": True}
        assert svc["depends_on"]["coordinator-1"]["condition"] == "service_healthy"
    # the fleet: both coordinators on the compose PostgreSQL, each advertising its own name
    for name in ("coordinator-1", "coordinator-2"):
        svc = services[name]
        assert svc["environment"]["VANTAGE_DB"].startswith("postgresql://vantage:")
        assert svc["environment"]["VANTAGE_DB"].endswith("@postgres:5432/vantage")
        assert f"--advertise={name}:50051" in svc["command"]
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
    base = COMPOSE.parent
    named_volumes = set(compose.get("volumes") or {})
    for name, svc in services.items():
        build = svc.get("build")
        if build:
            context = (base / build["context"]).resolve()
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (base / source).exists(), f"{name}: mounts {source}, not in the repository"
            else:
                assert source in named_volumes, f"{name}: volume {source} is not declared"
    # Prometheus gets our config and rules; Grafana our provisioning and dashboards.
    prom_mounts = {
        v.split(":")[1]: (base / v.split(":")[0]).resolve()
        for v in services["prometheus"]["volumes"]
        if v.startswith(".")
    }
    assert (
        prom_mounts["/etc/prometheus/prometheus.yml"]
        == (DEPLOY / "prometheus" / "prometheus.yml").resolve()
    )
    assert prom_mounts["/etc/prometheus/rules"] == (DEPLOY / "prometheus" / "rules").resolve()
    graf_mounts = {
        v.split(":")[1]: (base / v.split(":")[0]).resolve()
        for v in services["grafana"]["volumes"]
        if v.startswith(".")
    }
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/vantage.yaml").read_text())
    dash_path = provider["providers"][0]["options"]["path"]
    assert graf_mounts[dash_path] == (DEPLOY / "grafana" / "dashboards").resolve()
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dash_path + "/")
    assert (DEPLOY / "grafana" / "dashboards" / home.removeprefix(dash_path + "/")).is_file()
    # The scrape target in the shipped config is the compose service and its metrics port.
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = prom["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["coordinator-1:9477", "coordinator-2:9477"]  # every coordinator of the fleet
    for target in targets:
        host, port = target.split(":")
        assert any(f"--metrics-listen=0.0.0.0:{port}" == a for a in services[host]["command"])
    # The datasource URL is the compose Prometheus.
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/vantage.yaml").read_text()
    )
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"


def test_compose_secrets_come_from_env_example() -> None:
    """Every ${VAR:?...} the compose file needs is in env.example; published ports are loopback."""
    text = COMPOSE.read_text()
    needed = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "docker" / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert needed and needed <= example, sorted(needed - example)
    for name, svc in load_compose()["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


# ---------------------------------------------------------------------------------------
# cloud-init and the Grafana files.


def test_cloud_init_runs_the_installer_with_flags_it_knows() -> None:
    path = DEPLOY / "cloud-init" / "agent.yaml"
    assert path.read_text().startswith("#cloud-config\n")
    config = yaml.safe_load(path.read_text())
    assert {"git", "python3-venv"} <= set(config["packages"])
    install = [cmd for cmd in config["runcmd"] if "install-agent.sh" in str(cmd[0])]
    assert len(install) == 1
    argv = install[0]
    assert argv[0].endswith("/deploy/install-agent.sh")
    script = (DEPLOY / "install-agent.sh").read_text()
    # Every flag the installer gets is one it knows (each of these flags takes a value,
    # which may itself look like a flag: --agent-args "--tls").
    flags = argv[1::2]
    assert all(f.startswith("--") for f in flags), argv
    for flag in flags:
        assert re.search(rf"^\s+{re.escape(flag)}\)", script, re.M), f"install-agent.sh: no {flag}"
    token_file = argv[argv.index("--token-file") + 1]
    assert token_file in {f["path"] for f in config["write_files"]}


def test_grafana_dashboard_has_the_promised_panels_and_variables() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "vantage.json").read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"region", "target"} <= set(variables)
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    types = {p["title"]: p["type"] for p in panels}
    assert types["Verdict per region and target"] == "state-timeline"
    assert types["Throughput ratio: region \u00d7 target"] == "table"
    assert types["Probe duration distribution"] == "heatmap"
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in (
        "vantage_verdict_info",
        "vantage_outage",
        "vantage_degraded",
        "vantage_throughput_bytes_per_second",
        "vantage_throughput_ratio",
        "vantage_success_ratio",
        "vantage_agents_connected",
        "vantage_probe_duration_seconds_bucket",
    ):
        assert metric in exprs, f"no panel queries {metric}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        # per-target panels (outage, degraded) have no region
        assert "$region" in " ".join(t["expr"] for t in panel["targets"]) or panel[
            "title"
        ].startswith(("Outage", "Degraded"))
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/vantage.yaml").read_text())
    assert provider["apiVersion"] == 1 and provider["providers"][0]["type"] == "file"


# ---------------------------------------------------------------------------------------
# The deployment walk-through: its commands use only files, flags and sub-commands that
# exist (the commands themselves are the paths the other tests run).

DOCS = [REPO / "README.md", DEPLOY / "README.md"]  # the README carries the walk-through


def _shell_blocks(path: Path) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", path.read_text(), re.S)


def test_docs_reference_files_that_exist() -> None:
    for doc in DOCS:
        text = doc.read_text()
        # deploy/... as a path of its own (or under the installed checkout), not the tail
        # of another path such as tests/deploy/...
        for rel in set(re.findall(r"(?:/opt/vantage/src/|(?<![\w/.-]))(deploy/[\w./-]+\w)", text)):
            if rel.endswith("/.env"):  # the operator creates it from env.example
                continue
            assert (REPO / rel).exists(), f"{doc.name} mentions {rel}, which does not exist"
        for rel in set(re.findall(r"(?<![\w/.-])((?:tests|scripts|benchmarks)/[\w./-]+\.py)", text)):
            assert (REPO / rel).exists(), f"{doc.name} mentions {rel}, which does not exist"
    commands = [c for block in _shell_blocks(DOCS[0]) for c in block.splitlines() if c]
    assert len(commands) >= 10


def test_docs_commands_use_known_flags() -> None:
    from vantage.cli import build_parser

    parser = build_parser()
    (sub_action,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    choices: dict[str, Any] = sub_action.choices  # type: ignore[attr-defined]
    script = (DEPLOY / "install-agent.sh").read_text()
    for line in (c for block in _shell_blocks(DOCS[0]) for c in block.splitlines()):
        for part in line.split("&&"):
            words = part.split()
            if any(w.endswith("install-agent.sh") for w in words):
                i = next(i for i, w in enumerate(words) if w.endswith("install-agent.sh"))
                quoted = False  # the value of --agent-args: the agent's flags, not the script's
                for w in words[i + 1 :]:
                    starts, ends = w.startswith('"'), w.endswith('"') and len(w) > 1
                    if quoted or starts:
                        quoted = not ends if not quoted else not w.endswith('"')
                        continue
                    if w.startswith("--") and "=" not in w:
                        assert re.search(rf"^\s+{re.escape(w)}\)", script, re.M), w
            elif words and words[0].endswith("/bin/vantage"):
                command = choices[words[1]]
                subs = [a for a in command._actions if a.__class__.__name__ == "_SubParsersAction"]
                rest = words[2:]
                if subs and rest and rest[0] in subs[0].choices:  # e.g. `vantage agents add`
                    command, rest = subs[0].choices[rest[0]], rest[1:]
                known = {o for a in command._actions for o in a.option_strings}
                for flag in (w for w in rest if w.startswith("--")):
                    assert flag in known, f"`vantage {words[1]}` has no {flag} ({line})"
    # The Prometheus step is the substitution the end-to-end test makes.
    sed = """sed 's/"coordinator-1:9477", "coordinator-2:9477"/"127.0.0.1:9477"/'"""
    assert sed in DOCS[0].read_text()
    assert '"coordinator-1:9477", "coordinator-2:9477"' in (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    datasource = (DEPLOY / "grafana/provisioning/datasources/vantage.yaml").read_text()
    assert "url: http://prometheus:9090" in datasource
