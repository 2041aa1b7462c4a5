"""Hostile inputs from an API caller or an agent that once made series of their own or
slipped past a check (the hostile-load review)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

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
