"""Hostile inputs from an API caller or an agent that once made series of their own or
slipped past a check (the hostile-load review)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import ids
from coordinator.model import AgentInfo, JobSpec
from coordinator.validation import InvalidJob, JobLimits, validate_job


@pytest.mark.parametrize(
    ("check", "good"),
    [
        (ids.is_agent_id, "de-fra-1"),
        (ids.is_region, "de-fra"),
        (ids.is_country, "DE"),
        (ids.is_label_key, "tier"),
        (ids.is_version, "0.1.0"),
    ],
)
def test_an_id_with_a_trailing_newline_is_refused(check: object, good: str) -> None:
    assert callable(check)
    assert check(good)
    for bad in (good + "\n", good + "\r\n", "\n" + good, good + "\n\n"):
        assert not check(bad), repr(bad)


@pytest.mark.parametrize(
    ("kind", "targets"),
    [
        ("tcp", ["h.example:80", " h.example:80", "h.example:80 "]),
        ("http", ["https://h.example/", "HTTPS://H.EXAMPLE/", " https://h.example/"]),
        ("dns", ["h.example", "H.Example", "h.example "]),
    ],
)
def test_duplicate_targets_are_found_after_normalising(kind: str, targets: list[str]) -> None:
    for i in range(1, len(targets)):
        spec = JobSpec(kind=kind, targets=(targets[0], targets[i]))
        with pytest.raises(InvalidJob) as info:
            validate_job(spec, [], JobLimits())
        assert info.value.field == "spec.targets[1]" and "spec.targets[0]" in info.value.reason
    # distinct targets still pass
    other = {"tcp": "g.example:80", "http": "https://g.example/", "dns": "g.example"}[kind]
    agent = AgentInfo(agent_id="a", region="de", kinds=(kind,))
    assert validate_job(JobSpec(kind=kind, targets=(targets[0], other)), [agent], JobLimits()) == [agent]


@pytest.mark.parametrize("form", ["--db-file", "VANTAGE_DB_FILE", "VANTAGE_DB"])
async def test_the_database_password_stays_off_argv_and_out_of_every_message(tmp_path: Path, form: str) -> None:
    """The URL comes from a file or the environment, and neither ``user:pass@`` nor
    ``?password=`` is repeated in the log or the error when the server cannot be reached."""
    from tests.unit.test_cli_errors import run_cli

    url = "postgresql://vantage:hunter2@127.0.0.1:1/nowhere?password=swordfish&connect_timeout=2"
    secret_file = tmp_path / "db.url"
    secret_file.write_text(url + "\n")
    args, env = ["coordinator", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"], {}
    if form == "--db-file":
        args += ["--db-file", str(secret_file)]
    elif form == "VANTAGE_DB_FILE":
        env["VANTAGE_DB_FILE"] = str(secret_file)
    else:
        env["VANTAGE_DB"] = url
    proc = await asyncio.to_thread(run_cli, args, env, tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    everything = proc.stdout + proc.stderr
    assert "127.0.0.1:1/nowhere" in everything, everything  # it did read the URL
    assert "hunter2" not in everything and "swordfish" not in everything, everything
    assert "password=***" in everything and "vantage:***@" in everything, everything


def test_db_and_db_file_together_is_a_usage_error(tmp_path: Path) -> None:
    from tests.unit.test_cli_errors import one_line_error, run_cli

    (tmp_path / "f").write_text("x.db\n")
    proc = run_cli(["coordinator", "--db", "a.db", "--db-file", str(tmp_path / "f")], {}, tmp_path)
    one_line_error(proc, "coordinator", "--db-file: give --db or --db-file, not both")


# ------------------------------------------------------------------ operator files

_NESTED = "a = " + "[" * 5000 + "]" * 5000 + "\n"
_toml_ish = st.one_of(
    st.text(max_size=300),
    st.builds(lambda n, s: "x = " + "[" * n + s + "]" * n, st.integers(0, 3000), st.sampled_from(["", "1", "'a'"])),
    st.builds(lambda n: "[" + ".".join(["t"] * n) + "]\n", st.integers(1, 2000)),
    st.just(_NESTED),
    st.builds(lambda n: "192.0.2.0/24 " + "9" * n, st.integers(1, 6000)),
)


def test_operator_files_with_huge_numbers_or_deep_nesting_are_one_line_errors(tmp_path: Path) -> None:
    from tests.unit.test_cli_errors import one_line_error, run_cli

    asn = tmp_path / "asn.txt"
    asn.write_text("192.0.2.0/24 " + "9" * 5000 + "\n")
    proc = run_cli(["agent", "--coordinator", "127.0.0.1:1", "--region", "de", "--state-dir", str(tmp_path / "s"),
                    "--asn-file", str(asn)], {}, tmp_path)  # fmt: skip
    one_line_error(proc, "agent", "is not an AS number")
    nested = tmp_path / "nested.toml"
    nested.write_text(_NESTED)
    proc = run_cli(["coordinator", "--db", str(tmp_path / "v.db"), "--block-pages", str(nested)], {}, tmp_path)
    one_line_error(proc, "coordinator", "nested too deeply")
    proc = run_cli(["coordinator", "--config", str(nested), "--db", str(tmp_path / "v.db")], {}, tmp_path)
    one_line_error(proc, "coordinator", "nested too deeply")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_toml_ish)
def test_the_operator_file_parsers_fuzzed_raise_only_their_own_errors(tmp_path: Path, text: str) -> None:
    """The fuzz campaign over the operator's files: any text is read or refused with the
    parser's own error, never another exception."""
    from agent import asn as asn_file
    from coordinator.analysis import blockpage
    from vantage.config import load_toml
    from vantage.errors import UsageError

    with contextlib.suppress(blockpage.FingerprintError):
        blockpage.parse(text, "fuzz.toml")
    path = tmp_path / "fuzz.txt"
    path.write_text(text, errors="surrogatepass")
    with contextlib.suppress(UsageError):
        load_toml(str(path), "coordinator")
    lines = text.replace("x = ", "192.0.2.0/24 ")
    path.write_text(lines, errors="surrogatepass")
    with contextlib.suppress(asn_file.AsnFileError):
        asn_file.load(path)
