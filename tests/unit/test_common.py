"""The neutral package both sides of the wire import (common/): its rules, and that it
stays neutral."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import common.failures as failures
from common import hostport, ids
from common.failures import AGENT_ERRORS, FAILURES

REPO = Path(__file__).resolve().parents[2]


def test_the_failure_set_is_every_class_the_module_names() -> None:
    """A class added as a constant but forgotten in FAILURES (or the reverse) fails here."""
    named = {
        value
        for name, value in vars(failures).items()
        if name.isupper() and isinstance(value, str)
    }
    assert named == FAILURES


def test_agent_errors_are_the_agent_prefixed_classes() -> None:
    """The agent_ prefix is what the metrics and the docs call the agent-error class."""
    assert {f for f in FAILURES if f.startswith("agent_")} == AGENT_ERRORS


def test_docs_list_every_failure_class() -> None:
    """docs/probes.md tables the classes about the target; the agent_ ones are in
    docs/detection.md."""
    probes = (REPO / "docs" / "probes.md").read_text()
    section = probes.split("### Failure classes", 1)[1]
    tabled = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    assert tabled == FAILURES - AGENT_ERRORS
    detection = (REPO / "docs" / "detection.md").read_text()
    assert all(f"`{name}`" in detection for name in AGENT_ERRORS)


def test_common_imports_nothing_of_either_side() -> None:
    """Importing every module of common/ pulls in neither the agent, the coordinator nor
    the CLI, and no network or storage library."""
    code = (
        "import pkgutil, importlib, sys, common\n"
        "for m in pkgutil.walk_packages(common.__path__, 'common.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('agent', 'coordinator', 'vantage', 'protos', 'grpc', 'aiohttp', 'dns', "
        "'prometheus_client', 'sqlite3', '_sqlite3', 'structlog')]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=REPO)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""



@pytest.mark.parametrize(
    ("check", "good", "bad"),
    [
        (ids.is_agent_id, ["de-fra-1", "a", "x:1.b_c", "A" * 128], ["", "-a", "a/b", "a b", "A" * 129]),
        (ids.is_region, ["de-fra", "ru:msk.1", "A" * 63], ["", "_x", "de fra", "A" * 64]),
        (ids.is_country, ["DE", "RU"], ["de", "DEU", "D", ""]),
        (ids.is_label_key, ["tier", "_x", "a.b-c"], ["", "1x", "a:b", "a" * 64]),
        (ids.is_job_id, ["0123456789abcdef"], ["0123456789ABCDEF", "0123456789abcde", "j-1"]),
        (ids.is_assigned_task_id, ["j-0-1-ab", "a.b_c", "x" * 128], ["", "../x", "a/b", "a b", "x" * 129]),
        (ids.is_assigned_job_id, ["j", "0123456789abcdef", "x" * 64], ["", "a/b", "x" * 65]),
    ],
)
def test_id_rules(check: object, good: list[str], bad: list[str]) -> None:
    assert callable(check)
    assert [t for t in good if not check(t)] == []
    assert [t for t in bad if check(t)] == []


def test_a_job_id_is_judged_by_who_reads_it() -> None:
    """The job API takes only ids the coordinator issues; an agent takes any safe one."""
    assert ids.is_assigned_job_id("job_1") and not ids.is_job_id("job_1")


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("[::1]:50051", ("::1", 50051)),
        ("localhost:0", ("localhost", 0)),  # any free port
        ("0.0.0.0:65535", ("0.0.0.0", 65535)),
        ("::1:50051", ("::1", 50051)),  # the last colon starts the port
    ],
)
def test_listen_and_dial_addresses(address: str, parsed: tuple[str, int]) -> None:
    assert hostport.split_host_port(address) == parsed


@pytest.mark.parametrize(
    "address", ["50051", ":50051", "host:", "host:x", "host:65536", "host:-1", "", "host:\u00b2"]
)
def test_bad_addresses_say_host_port_and_name_the_flag(address: str) -> None:
    """Without a field, the message coordinator/server.py has always given."""
    with pytest.raises(ValueError, match=r"^'.*' is not HOST:PORT$"):
        hostport.split_host_port(address)
    with pytest.raises(hostport.HostPortError, match=r"^--listen: '.*' is not HOST:PORT$"):
        hostport.split_host_port(address, field="--listen")


def test_a_dialled_address_needs_a_port() -> None:
    assert hostport.split_host_port("h:1", min_port=1) == ("h", 1)
    with pytest.raises(ValueError, match=r"^--coordinator: 'h:0' is not HOST:PORT with a port in 1\.\.65535$"):
        hostport.split_host_port("h:0", field="--coordinator", min_port=1)


@pytest.mark.parametrize(("host", "port", "text"), [("::1", 1, "[::1]:1"), ("h", 2, "h:2"), ("1.2.3.4", 3, "1.2.3.4:3")])
def test_join_is_the_inverse_of_split(host: str, port: int, text: str) -> None:
    assert hostport.join_host_port(host, port) == text
    assert hostport.split_host_port(text) == (host, port)


@pytest.mark.parametrize(
    ("text", "default", "parsed"),
    [
        ("Example.COM:8443", None, ("example.com", 8443)),
        ("example.com", 443, ("example.com", 443)),
        ("[2001:DB8::1]:53", None, ("2001:db8::1", 53)),
        ("2001:db8::1", 53, ("2001:db8::1", 53)),  # a bare IPv6 literal takes the default
        (" 192.0.2.1:7 ", None, ("192.0.2.1", 7)),
    ],
)
def test_targets(text: str, default: int | None, parsed: tuple[str, int]) -> None:
    assert hostport.parse_host_port(text, default_port=default) == parsed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "is empty"),
        ("example.com", "expected host:port"),
        ("2001:db8::1::53", "write IPv6 as [addr]:port"),
        ("[2001:db8::1", "unclosed"),
        ("[2001:db8::1]53", "expected ':port' after ']'"),
        ("[example.com]:53", "inside brackets is not an IPv6 address"),
        ("example.com:0", "not a number from 1 to 65535"),
        ("example.com:\u00b2", "not a number from 1 to 65535"),  # isdigit, but no int
        ("exa mple.com:53", "is not a host name or IP address"),
    ],
)
def test_bad_targets_name_the_field(text: str, reason: str) -> None:
    with pytest.raises(hostport.HostPortError, match=re.escape(reason)) as caught:
        hostport.parse_host_port(text, default_port=None, field="options.resolver")
    assert caught.value.field == "options.resolver"
    assert str(caught.value).startswith("options.resolver: ")


def test_the_coordinator_imports_nothing_of_the_agent() -> None:
    """What both sides share lives in common/ (README.md, "How it fits together"); the
    coordinator imports nothing from agent/ and the agent nothing from coordinator/."""
    code = (
        "import pkgutil, importlib, sys\n"
        "side = sys.argv[1]\n"
        "pkg = importlib.import_module(side)\n"
        "for m in pkgutil.walk_packages(pkg.__path__, side + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "other = {'coordinator': 'agent', 'agent': 'coordinator'}[side]\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == other)))\n"
    )
    for side in ("coordinator", "agent"):
        out = subprocess.run([sys.executable, "-c", code, side], capture_output=True, text=True,
                             timeout=60, cwd=REPO)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "", f"{side} imports {out.stdout.strip()}"


def test_the_coordinator_listens_where_the_others_dial_by_default() -> None:
    from common.defaults import DEFAULT_COORDINATOR, DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN
    from coordinator.server import ServerConfig

    config = ServerConfig()
    assert (config.listen, config.metrics_listen) == (DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN)
    assert DEFAULT_COORDINATOR == DEFAULT_LISTEN
