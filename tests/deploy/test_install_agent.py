"""deploy/install-agent.sh on a pretend fresh host: everything under tmp_path.

The script is run for real (venv, pip install, env file, unit file), with its documented
overrides pointing at tmp_path and a recording `systemctl` (no systemd runs here). To stay
off the network, Vantage is installed from a wheel built from this checkout with
VANTAGE_PIP_ARGS="--no-deps --no-index", into a venv that can import the dependencies
this test run already has: on a real host pip fetches them.

That venv is made by the script itself, through VANTAGE_PYTHON pointing at a small
wrapper of this interpreter: after ``python -m venv DIR`` it adds a ``.pth`` file naming
this interpreter's site-packages. ``--system-site-packages`` would not do: inside a venv
(a newcomer's ``python3 -m venv v``) it reaches the base Python's site-packages, where the
dependencies are not.
"""

from __future__ import annotations

import os
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.deploy.support import DEPLOY, REPO

SCRIPT = DEPLOY / "install-agent.sh"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of this checkout, built from a copy so the work tree is not written to."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in ("agent", "common", "coordinator", "protos", "vantage"):
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "-w", str(out), str(src)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (built,) = out.glob("vantage-*.whl")
    return built


def site_dirs() -> list[str]:
    """Where this interpreter finds its installed packages (venv, user and system)."""
    dirs = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return list(dict.fromkeys(d for d in dirs if Path(d).is_dir()))


def python_wrapper(directory: Path) -> Path:
    """A `python` for VANTAGE_PYTHON: this interpreter, whose ``-m venv DIR`` also gives
    the new venv a .pth file with this interpreter's site directories (see the module
    docstring)."""
    pth = "\n".join(site_dirs()) + "\n"
    wrapper = directory / "python-with-deps"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'"{sys.executable}" "$@" || exit $?\n'
        'if [ "$1" = -m ] && [ "$2" = venv ]; then\n'
        '    for last in "$@"; do :; done\n'
        '    for sp in "$last"/lib/python*/site-packages; do\n'
        f"        printf '%s' '{pth}' > \"$sp/_test_run_deps.pth\"\n"
        "    done\n"
        "fi\n"
    )
    wrapper.chmod(0o755)
    return wrapper


class Host:
    def __init__(self, root: Path, wheel: Path) -> None:
        self.root = root
        self.wheel = wheel
        self.prefix = root / "opt" / "vantage"
        self.etc = root / "etc" / "vantage"
        self.units = root / "etc" / "systemd" / "system"
        self.log = root / "systemctl.log"
        fake = root / "bin" / "systemctl"
        fake.parent.mkdir(parents=True)
        fake.write_text(f'#!/bin/sh\necho "$*" >> "{self.log}"\n')
        fake.chmod(0o755)
        self.env = {
            **os.environ,
            "VANTAGE_PREFIX": str(self.prefix),
            "VANTAGE_ETC": str(self.etc),
            "VANTAGE_SYSTEMD_DIR": str(self.units),
            "VANTAGE_PYTHON": str(python_wrapper(root / "bin")),
            "VANTAGE_PIP_ARGS": "--no-deps --no-index",
            "SYSTEMCTL": str(fake),
        }
        self.env.pop("VANTAGE_AGENT_TOKEN", None)

    def install(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(SCRIPT), "--source", str(self.wheel), *args],
            env={**self.env, **(env or {})},
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip

    def env_file(self) -> dict[str, str]:
        values = {}
        for line in (self.etc / "agent.env").read_text().splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.partition("=")
                assert key not in values, f"{key} twice in agent.env"
                values[key] = value
        return values

    def systemctl_calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def test_install_twice_then_reconfigure(tmp_path: Path, wheel: Path) -> None:
    host = Host(tmp_path, wheel)
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    first = host.install(
        "--coordinator", "coord.example.net:50051", "--region", "de-fra",
        "--token-file", str(token), "--agent-args", "--ca /etc/vantage/ca.pem --label a=b",
    )  # fmt: skip
    assert first.returncode == 0, first.stdout + first.stderr
    vantage = host.prefix / "venv" / "bin" / "vantage"
    version = subprocess.run(
        [str(vantage), "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("vantage ")
    assert host.env_file() == {
        "VANTAGE_COORDINATOR": "coord.example.net:50051",
        "VANTAGE_REGION": "de-fra",
        "VANTAGE_AGENT_TOKEN": "s3cret-token",
        "VANTAGE_AGENT_ARGS": "--ca /etc/vantage/ca.pem --label a=b",
    }
    mode = stat.S_IMODE((host.etc / "agent.env").stat().st_mode)
    assert mode == 0o600, oct(mode)
    unit = (host.units / "vantage-agent.service").read_text()
    assert f"ExecStart={vantage} agent " in unit
    assert f"EnvironmentFile={host.etc / 'agent.env'}" in unit
    shipped = (DEPLOY / "systemd" / "vantage-agent.service").read_text()
    assert (
        unit.replace(str(vantage), "/opt/vantage/venv/bin/vantage").replace(
            str(host.etc / "agent.env"), "/etc/vantage/agent.env"
        )
        == shipped
    ), "only the two paths may differ from the shipped unit"
    assert host.systemctl_calls() == [
        "daemon-reload",
        "enable vantage-agent.service",
        "restart vantage-agent.service",
    ]
    assert "s3cret-token" not in first.stdout + first.stderr

    # Again with no flags: same configuration, same unit, a restart to pick up the package.
    env_before = (host.etc / "agent.env").read_bytes()
    unit_mtime = (host.units / "vantage-agent.service").stat().st_mtime_ns
    again = host.install()
    assert again.returncode == 0, again.stdout + again.stderr
    assert (host.etc / "agent.env").read_bytes() == env_before
    assert (host.units / "vantage-agent.service").stat().st_mtime_ns == unit_mtime
    assert "creating" not in again.stdout
    assert host.systemctl_calls()[3:] == host.systemctl_calls()[:3]

    # Changing one value keeps the others; the token may come from the environment.
    third = host.install("--region", "us-nyc", "--no-start", env={"VANTAGE_AGENT_TOKEN": "t2"})
    assert third.returncode == 0, third.stdout + third.stderr
    assert host.env_file() == {
        "VANTAGE_COORDINATOR": "coord.example.net:50051",
        "VANTAGE_REGION": "us-nyc",
        "VANTAGE_AGENT_TOKEN": "t2",
        "VANTAGE_AGENT_ARGS": "--ca /etc/vantage/ca.pem --label a=b",
    }
    assert host.systemctl_calls()[6:] == ["daemon-reload", "enable vantage-agent.service"]

    # systemd itself accepts the installed unit (its ExecStart exists now).
    analyze = shutil.which("systemd-analyze")
    if analyze is not None:
        proc = subprocess.run(
            [analyze, "verify", "--man=no", str(host.units / "vantage-agent.service")],
            capture_output=True, text=True, timeout=60, check=False,
            env={"PATH": "/usr/bin:/bin", "SYSTEMD_LOG_COLOR": "0"},
        )  # fmt: skip
        complaints = [
            line
            for line in (proc.stdout + proc.stderr).splitlines()
            if "RestartSteps" not in line and "RestartMaxDelaySec" not in line
        ]
        assert proc.returncode == 0 and not complaints, complaints


def test_first_install_needs_coordinator_and_region(tmp_path: Path, wheel: Path) -> None:
    host = Host(tmp_path, wheel)
    proc = host.install("--region", "de-fra")
    assert proc.returncode == 2
    assert "--coordinator is required on first install" in proc.stderr
    proc = host.install("--coordinator", "c:50051", "--region", "De Fra")
    assert proc.returncode == 2 and "--region" in proc.stderr
    proc = host.install("--coordinator", "c:http")
    assert proc.returncode == 2 and "numeric port" in proc.stderr
    proc = host.install("--bogus")
    assert proc.returncode == 2 and "unknown argument: --bogus" in proc.stderr
    assert not host.prefix.exists() and not host.etc.exists()


def test_cloud_init_example_installs_an_agent(tmp_path: Path, wheel: Path) -> None:
    """The runcmd of deploy/cloud-init/agent.yaml, its REPLACE placeholders filled in, the
    clone replaced by this checkout and the token file written as write_files would."""
    config = yaml.safe_load((DEPLOY / "cloud-init" / "agent.yaml").read_text())
    host = Host(tmp_path, wheel)
    (write,) = config["write_files"]
    token_file = tmp_path / "run" / Path(write["path"]).name
    token_file.parent.mkdir()
    token_file.write_text("cloud-token\n")
    (argv,) = [cmd for cmd in config["runcmd"] if str(cmd[0]).endswith("install-agent.sh")]
    filled = {
        "REPLACE-coordinator.example.net:50051": "coord.example.net:50051",
        "REPLACE-de-fra": "de-fra",
        write["path"]: str(token_file),
    }
    args = [filled.get(a, a) for a in argv[1:]]
    assert not any("REPLACE" in a for a in args), args
    proc = host.install(*args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert host.env_file()["VANTAGE_AGENT_TOKEN"] == "cloud-token"
    assert host.env_file()["VANTAGE_REGION"] == "de-fra"
    # Unedited, the example fails loudly instead of installing a bogus region.
    unedited = Host(tmp_path / "unedited", wheel).install(
        *[str(token_file) if a == write["path"] else a for a in argv[1:]]
    )
    assert unedited.returncode == 2 and "--region" in unedited.stderr
