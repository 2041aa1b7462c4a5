"""Configuration at the edge: durations, KEY=VALUE lists, secrets, precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from vantage.config import load_toml, parse_duration, parse_key_values, pick, secret
from vantage.errors import UsageError


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("500ms", 0.5), ("5m", 300), ("1h", 3600), ("2d", 172800), ("7", 7), ("1.5s", 1.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, "--every") == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-1s", "1w"])
def test_bad_durations_name_the_flag(text: str) -> None:
    with pytest.raises(UsageError, match="--every"):
        parse_duration(text, "--every")


def test_key_values() -> None:
    assert parse_key_values(["a=1", "b = x=y"], "-o") == {"a": "1", "b": "x=y"}
    with pytest.raises(UsageError, match="-o: 'a' is not KEY=VALUE"):
        parse_key_values(["a"], "-o")


def test_secret_from_variable_or_file(tmp_path: Path) -> None:
    f = tmp_path / "tok"
    f.write_text("s3cret\n")
    assert secret("VANTAGE_API_TOKEN", {"VANTAGE_API_TOKEN": " abc "}) == "abc"
    assert secret("VANTAGE_API_TOKEN", {"VANTAGE_API_TOKEN_FILE": str(f)}) == "s3cret"
    assert secret("VANTAGE_API_TOKEN", {}) is None
    with pytest.raises(UsageError, match="VANTAGE_API_TOKEN_FILE: cannot read"):
        secret("VANTAGE_API_TOKEN", {"VANTAGE_API_TOKEN_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("")
    with pytest.raises(UsageError, match="is empty"):
        secret("VANTAGE_API_TOKEN", {"VANTAGE_API_TOKEN_FILE": str(tmp_path / "empty")})


def test_precedence_flag_env_file_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text('[agent]\nregion = "from-file"\n')
    toml = load_toml(str(cfg), "agent")
    monkeypatch.delenv("VANTAGE_REGION", raising=False)
    assert pick(None, "VANTAGE_REGION", toml, "region", "dflt") == "from-file"
    monkeypatch.setenv("VANTAGE_REGION", "from-env")
    assert pick(None, "VANTAGE_REGION", toml, "region", "dflt") == "from-env"
    assert pick("from-flag", "VANTAGE_REGION", toml, "region", "dflt") == "from-flag"
    assert pick(None, None, {}, "region", "dflt") == "dflt"
    cfg.write_text("[agent\n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_toml(str(cfg), "agent")
