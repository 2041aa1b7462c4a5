"""The command line's promise: a bad setting, from a flag, an environment variable or the
--config file, is one line naming it, exit code 2, no traceback; so is a coordinator
that cannot start. A failure once the coordinator serves is not dressed up as either."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from vantage.cli import main

VANTAGE = [sys.executable, "-m", "vantage.cli"]


def run_cli(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}
    return subprocess.run(
        [*VANTAGE, *args], env={**clean, **env}, cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], command: str, message: str) -> None:
    """Exit 2 and one error line on stderr. A coordinator may have logged (JSON lines)
    before it found it cannot start; nothing else may be there: no traceback, and no
    gRPC C-core error lines that would say more than our line does."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("{")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0] == proc.stderr.strip().splitlines()[-1], "the error is the last line"
    assert lines[0].startswith(f"vantage {command}: error: "), lines[0]
    assert message in lines[0], lines[0]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VANTAGE_CONCURRENCY": "eight"}, "--concurrency: 'eight' (from VANTAGE_CONCURRENCY) is not a whole number"),
        ({"VANTAGE_CONCURRENCY": "0"}, "--concurrency: must be between 1 and 256, got 0 (from VANTAGE_CONCURRENCY)"),
        ({"VANTAGE_ASN": "AS3320"}, "--asn: 'AS3320' (from VANTAGE_ASN) is not a whole number"),
        ({"VANTAGE_ASN": "4294967296"}, "--asn: must be between 0 and 4294967295"),
        ({"VANTAGE_OUTBOX_MAX": "1e4"}, "--outbox-max: '1e4' (from VANTAGE_OUTBOX_MAX) is not a whole number"),
        ({"VANTAGE_TLS": "ture"}, "--tls: 'ture' (from VANTAGE_TLS) is not on or off"),
        ({"VANTAGE_LOG_LEVEL": "chatty"}, "--log-level: 'chatty' (from VANTAGE_LOG_LEVEL) is not one of"),
        ({"VANTAGE_COORDINATOR": "c1:50051,,c2:50051"}, "--coordinator: 'c1:50051,,c2:50051' has an empty entry"),
        ({"VANTAGE_COORDINATOR": "c1:50051,c1:50051"}, "--coordinator: 'c1:50051,c1:50051' names a coordinator twice"),
        ({"VANTAGE_COORDINATOR": "c1:50051,c2:0"}, "--coordinator: 'c2:0' is not HOST:PORT with a port in 1..65535"),
        ({"VANTAGE_COORDINATOR": "c1"}, "--coordinator: 'c1' is not HOST:PORT"),
    ],
)
async def test_agent_settings_from_the_environment(env: dict[str, str], message: str, tmp_path: Path) -> None:
    args = ["agent", "--region", "de-fra", "--state-dir", str(tmp_path / "s")]
    proc = await asyncio.to_thread(run_cli, args, env, tmp_path)
    one_line_error(proc, "agent", message)


async def test_agent_settings_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    for body, message in (
        ('[agent]\nregion = "de"\nconcurrency = "lots"\n', "--concurrency: 'lots' (from concurrency in the --config file)"),
        ('[agent]\nregion = "de"\nlabels = "tier=vps"\n', "--config: labels must be a table"),
        ('[agent]\nregion = "de"\n[agent.resolve]\n"a.example" = ["1.2.3.4"]\n', "--config: resolve.a.example must be a string"),
    ):
        config.write_text(body)
        args = ["agent", "--config", str(config), "--state-dir", str(tmp_path / "s")]
        proc = await asyncio.to_thread(run_cli, args, {}, tmp_path)
        one_line_error(proc, "agent", message)


async def test_coordinator_settings_from_the_environment(tmp_path: Path) -> None:
    for env, message in (
        ({"VANTAGE_MAX_TARGETS": "many"}, "--max-targets: 'many' (from VANTAGE_MAX_TARGETS) is not a whole number"),
        ({"VANTAGE_INSECURE": "sure"}, "--insecure: 'sure' (from VANTAGE_INSECURE) is not on or off"),
        ({"VANTAGE_WINDOW": "a while"}, "--window: 'a while' is not a duration"),
        ({"VANTAGE_WINDOW": "0s"}, "--window: must be longer than 0s"),
        ({"VANTAGE_MAX_TARGETS": "9" * 5000}, "--max-targets: 999999999999... (5000 digits) (from VANTAGE_MAX_TARGETS) is out of range"),
    ):
        proc = await asyncio.to_thread(run_cli, ["coordinator", "--db", str(tmp_path / "v.db")], env, tmp_path)
        one_line_error(proc, "coordinator", message)


async def test_bad_canaries_are_one_line_naming_the_flag(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "v.db")]
    for args, env, message in (
        (["--canary", "ftp://x/"], {}, "--canary: 'ftp://x/': "),
        (["--canary", "http://a/", "--canary", "http://a/"], {}, "--canary: a URL is given twice"),
        ([], {"VANTAGE_CANARY": "http://a/ http://a/"}, "--canary: a URL is given twice"),
        (["--canary", "http://a/", "--canary-every", "1s"], {}, "--canary-every: must be between 5s and 1h, got 1s"),
    ):
        proc = await asyncio.to_thread(run_cli, ["coordinator", *db, *args], env, tmp_path)
        one_line_error(proc, "coordinator", message)
    config = tmp_path / "c.toml"
    config.write_text("[coordinator]\ncanary = 5\n")
    proc = await asyncio.to_thread(run_cli, ["coordinator", "--config", str(config), *db], {}, tmp_path)
    one_line_error(proc, "coordinator", "--canary: the canary setting in the --config file must be a list of URLs")


async def test_bad_block_page_files_are_one_line_naming_the_file_entry_and_field(tmp_path: Path) -> None:
    db = ["--db", str(tmp_path / "v.db")]
    bad = tmp_path / "own.toml"
    bad.write_text('[[fingerprint]]\nname = "isp"\nfield = "body"\npattern = "x"\nsource = "s"\n')
    for args, env, message in (
        (["--block-pages", str(tmp_path / "none.toml")], {}, f"--block-pages: {tmp_path / 'none.toml'}: cannot read"),
        (["--block-pages", str(bad)], {}, f"--block-pages: {bad}: fingerprint 1 (isp).field: 'body' is not one of"),
        ([], {"VANTAGE_BLOCK_PAGES": str(bad)}, "fingerprint 1 (isp).field"),
    ):
        proc = await asyncio.to_thread(run_cli, ["coordinator", *db, *args], env, tmp_path)
        one_line_error(proc, "coordinator", message)


async def test_config_file_values_of_the_wrong_type(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[coordinator]\nlisten = 50051\n")
    proc = await asyncio.to_thread(run_cli, ["coordinator", "--config", str(config), "--db", str(tmp_path / "v.db")], {}, tmp_path)
    one_line_error(proc, "coordinator", "--listen: '50051' is not HOST:PORT")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["health", "--coordinator", "localhost:0"], "--coordinator: 'localhost:0' is not HOST:PORT with a port in 1..65535"),
        (["health", "--coordinator", "[::1]"], "--coordinator: '[::1]' is not HOST:PORT with a port in 1..65535"),
        (["demo", "--listen", "50051"], "--listen: '50051' is not HOST:PORT"),
        (["demo", "--metrics-listen", "127.0.0.1:metrics"], "--metrics-listen: '127.0.0.1:metrics' is not HOST:PORT"),
    ],
)
def test_addresses_are_host_port_named_by_the_flag(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused before anything starts, in one line (common.hostport, the coordinator's rule)."""
    monkeypatch.delenv("VANTAGE_COORDINATOR", raising=False)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"vantage {argv[0]}: error: {message}\n"


async def test_an_agent_state_dir_it_cannot_use(tmp_path: Path) -> None:
    state = tmp_path / "s"
    (state / "agent_id").mkdir(parents=True)  # where the id file should be
    proc = await asyncio.to_thread(run_cli, ["agent", "--region", "de", "--state-dir", str(state)], {}, tmp_path)
    one_line_error(proc, "agent", f"--state-dir: cannot read {state / 'agent_id'}: Is a directory")


async def test_a_coordinator_that_cannot_bind_says_which_address(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for flag, args in (
            ("--listen", ["--listen", f"127.0.0.1:{port}", "--metrics-listen", "127.0.0.1:0"]),
            ("--metrics-listen", ["--listen", "127.0.0.1:0", "--metrics-listen", f"127.0.0.1:{port}"]),
        ):
            proc = await asyncio.to_thread(
                run_cli, ["coordinator", "--db", str(tmp_path / "v.db"), *args], {}, tmp_path
            )
            one_line_error(proc, "coordinator", f"cannot start: {flag} 127.0.0.1:{port}: Address already in use")


async def test_a_certificate_that_is_not_one_is_named(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate\n")
    key.write_text("not a key\n")
    args = ["coordinator", "--db", str(tmp_path / "v.db"), "--listen", "127.0.0.1:0",
            "--metrics-listen", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key)]
    proc = await asyncio.to_thread(run_cli, args, {}, tmp_path)
    one_line_error(proc, "coordinator", f"cannot start: --tls-cert {cert} / --tls-key {key}: not a PEM certificate chain and its private key")


async def test_a_database_it_cannot_open_is_a_startup_error(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_text("a file")
    proc = await asyncio.to_thread(
        run_cli, ["coordinator", "--db", str(tmp_path / "not-a-dir" / "v.db")], {}, tmp_path
    )
    one_line_error(proc, "coordinator", f"cannot start: --db {tmp_path / 'not-a-dir' / 'v.db'}: ")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    proc = await asyncio.to_thread(run_cli, ["coordinator", "--db", str(garbage), "--metrics-listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"], {}, tmp_path)
    one_line_error(proc, "coordinator", f"cannot start: --db {garbage}: ")
    assert garbage.read_bytes() == b"this is not a database" * 100, "the file is left as it was"


def test_an_error_while_serving_is_not_called_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from coordinator import server

    async def broken_run(self: server.CoordinatorServer) -> None:
        raise ValueError("a bug in the tick loop")

    monkeypatch.setattr(server.CoordinatorServer, "run", broken_run)
    monkeypatch.chdir(tmp_path)
    try:
        with pytest.raises(ValueError, match="a bug in the tick loop"):
            main(["coordinator", "--db", str(tmp_path / "v.db")])
    finally:
        structlog.reset_defaults()  # main() configured logging for this process
    assert "usage" not in capsys.readouterr().err


def test_results_summarise_each_kind_by_the_probes_own_field_names() -> None:
    """`vantage results` reads the typed data the probes' dicts become (docs/probes.md)."""
    from protos.results import probe_result_to_pb
    from protos.vantage.v1 import vantage_pb2 as pb
    from vantage.commands.client import _outcome, _place, _result_summary

    def result(kind: str, data: dict[str, object], failure: str = "", detail: str = "") -> pb.TaskResult:
        return pb.TaskResult(result=probe_result_to_pb(kind=kind, target="t", failure=failure,
                                                       failure_detail=detail, duration_s=0.1, data=data))

    def summary(kind: str, data: dict[str, object], failure: str = "", detail: str = "") -> str:
        return _result_summary(result(kind, data, failure, detail))

    assert summary("tls", {"tls_version": "TLSv1.3", "alpn": "h2"}) == "TLSv1.3 h2"
    assert summary("tls", {"tls_version": "TLSv1.2", "alpn": ""}) == "TLSv1.2"
    assert summary("http", {"status": 200, "body_length": 512}) == "HTTP 200 512 bytes"
    titled = summary("http", {"status": 200, "body_length": 900, "title": "Access\nrestricted " + "x" * 60})
    assert titled == "HTTP 200 900 bytes 'Access restricted " + "x" * 22 + "'"
    assert summary("throughput", {"bytes_per_second": 16250.0, "ratio": 0.018}) == "16.2 kB/s ratio 0.02"
    assert summary("throughput", {"bytes_per_second": 900000.0}) == "900.0 kB/s"
    assert summary("throughput", {"bytes_per_second": None}) == "no rate"
    # a policer's burst: the rate after the drop, and the ratio of the sustained rates
    policed = {"bytes_per_second": 360000.0, "sustained_bps": 119000.0, "drop_at_s": 0.5,
               "ratio": 0.15, "sustained_ratio": 0.05}  # fmt: skip
    assert summary("throughput", policed) == "360.0 kB/s, 119.0 kB/s after a drop at 0.5 s ratio 0.05"
    assert summary("throughput", {"direction": "upload", "bytes_per_second": 118000.0}) == "up 118.0 kB/s"
    assert summary("dns", {"answers": ["192.0.2.1", "192.0.2.2"], "rcode": "NOERROR"}) == "192.0.2.1 192.0.2.2"
    assert summary("dns", {"answers": [], "rcode": "NXDOMAIN"}) == "NXDOMAIN"
    lied = {"answers": ["198.19.0.2"], "rcode": "NOERROR", "control": {"answers": ["198.18.0.11"], "rcode": "NOERROR"}}
    assert summary("dns", lied) == "198.19.0.2 (control: 198.18.0.11)"
    agreed = {**lied, "control": {"answers": ["198.19.0.2"], "rcode": "NOERROR"}}
    assert summary("dns", agreed) == "198.19.0.2"
    assert summary("tcp", {"address": "192.0.2.1"}) == "192.0.2.1"
    assert summary("tcp", {}) == "ok"
    assert summary("tcp", {}, "connection_refused", "refused") == "connection_refused refused"
    assert _outcome(result("tcp", {}, "connection_refused")) == "connection_refused"
    # A failure number from a newer (or hostile) agent is shown as a number, not as success.
    odd = result("tcp", {})
    odd.result.failure = 99  # type: ignore[assignment]
    assert _outcome(odd) == "failure#99" and _result_summary(odd).startswith("failure#99")
    placed = result("tcp", {})
    assert _place(placed) == "-"
    placed.place.region, placed.place.country, placed.place.asn = "ru-msk", "RU", 12389
    assert _place(placed) == "ru-msk RU AS12389"


async def test_a_database_the_coordinator_cannot_use_is_one_line_without_its_password(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cases = [
        (f"postgresql://vantage:s3cret@127.0.0.1:{port}/v",
         f"cannot start: --db postgresql://vantage:***@127.0.0.1:{port}/v: "),
        ("mysql://vantage:s3cret@db.example/v",
         "--db mysql://vantage:***@db.example/v: unknown engine 'mysql'; give a file path (SQLite) or postgresql://"),
    ]  # fmt: skip
    for db, message in cases:
        proc = await asyncio.to_thread(run_cli, ["coordinator", "--db", db, "--metrics-listen", "127.0.0.1:0",
                                                 "--listen", "127.0.0.1:0"], {}, tmp_path)  # fmt: skip
        one_line_error(proc, "coordinator", message)
        assert "s3cret" not in proc.stdout + proc.stderr


def test_coordinator_lists_from_a_flag_or_a_config_file() -> None:
    from vantage.commands.agent_cmd import coordinator_list
    from vantage.errors import UsageError

    assert coordinator_list("c1:50051, [::1]:50051") == ["c1:50051", "[::1]:50051"]
    assert coordinator_list(["c1:50051", "c2:50051"]) == ["c1:50051", "c2:50051"]
    with pytest.raises(UsageError, match="must be HOST:PORT or a list of them"):
        coordinator_list(50051)
    with pytest.raises(UsageError, match="at most 16 coordinators"):
        coordinator_list([f"c{i}:1" for i in range(17)])


async def test_advertise_must_be_a_reachable_host_and_port(tmp_path: Path) -> None:
    for given, said in (("0.0.0.0:50051", "--advertise 0.0.0.0:50051: must be an address the other"),
                        ("c1", "--advertise"), ("c1:0", "--advertise")):  # fmt: skip
        proc = await asyncio.to_thread(run_cli, ["coordinator", "--advertise", given], {}, tmp_path)
        one_line_error(proc, "coordinator", said)


async def test_coordinator_order_is_random_or_listed(tmp_path: Path) -> None:
    proc = await asyncio.to_thread(run_cli, ["agent", "--region", "de"], {"VANTAGE_COORDINATOR_ORDER": "first"}, tmp_path)
    one_line_error(proc, "agent", "--coordinator-order: 'first' is not random or listed")


@pytest.mark.parametrize(
    "argv",
    [
        ["agents", "--coordinator", "10.9.8.7:1", "--json", "add", "ru-1", "--region", "ru"],
        ["agents", "add", "ru-1", "--region", "ru", "--coordinator", "10.9.8.7:1", "--json"],
        ["tokens", "--coordinator", "10.9.8.7:1", "add", "n", "--role", "read", "--json"],
    ],
)
def test_options_given_before_or_after_a_subcommand_both_count(argv: list[str]) -> None:
    from vantage.cli import build_parser

    ns = build_parser().parse_args(argv)
    assert ns.coordinator == "10.9.8.7:1" and ns.json is True


def test_a_quota_out_of_range_is_a_usage_error_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["tokens", "add", "x", "--role", "read", "--max-active-jobs", "5000000000"])
    err = capsys.readouterr().err
    assert code == 2 and "--max-active-jobs: 0 (no limit) to 10000000" in err and "Traceback" not in err
