"""Configuration at the edge: durations, KEY=VALUE lists, secrets, precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from vantage.config import (
    load_toml,
    parse_duration,
    parse_key_values,
    pick,
    pick_bool,
    pick_int,
    pick_log_level,
    secret,
)
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


# ------------------------------------------------------------------ on/off and numbers


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "yes", "On", " on "])
def test_pick_bool_true_words(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VANTAGE_TLS", text)
    assert pick_bool(None, "VANTAGE_TLS", {}, "tls") is True


@pytest.mark.parametrize("text", ["0", "false", "No", "OFF"])
def test_pick_bool_false_words(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VANTAGE_TLS", text)
    assert pick_bool(None, "VANTAGE_TLS", {}, "tls") is False


def test_pick_bool_precedence_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VANTAGE_TLS", raising=False)
    assert pick_bool(None, "VANTAGE_TLS", {}, "tls") is False  # off unless asked
    assert pick_bool(None, "VANTAGE_TLS", {"tls": True}, "tls") is True
    assert pick_bool(None, "VANTAGE_TLS", {"tls": "yes"}, "tls") is True
    monkeypatch.setenv("VANTAGE_TLS", "0")
    assert pick_bool(None, "VANTAGE_TLS", {"tls": True}, "tls") is False  # env beats file
    assert pick_bool(True, "VANTAGE_TLS", {}, "tls") is True  # the flag beats both


def test_pick_bool_refuses_what_it_cannot_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VANTAGE_TLS", "ture")
    with pytest.raises(UsageError, match=r"^--tls: 'ture' \(from VANTAGE_TLS\) is not on or off"):
        pick_bool(None, "VANTAGE_TLS", {}, "tls")
    monkeypatch.delenv("VANTAGE_TLS")
    with pytest.raises(UsageError, match=r"^--allow-private-targets: 2 \(from allow_private_targets in the --config file\)"):
        pick_bool(None, "VANTAGE_X", {"allow_private_targets": 2}, "allow_private_targets")
    with pytest.raises(UsageError, match=r"^--insecure: 'maybe'"):
        pick_bool(None, "VANTAGE_X", {"i": "maybe"}, "i", field="--insecure")


def test_pick_int_reads_flags_env_and_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VANTAGE_CONCURRENCY", raising=False)
    assert pick_int(None, "VANTAGE_CONCURRENCY", {}, "concurrency", 8, field="--concurrency") == 8
    assert pick_int(None, "VANTAGE_CONCURRENCY", {"concurrency": 3}, "concurrency", 8, field="--c") == 3
    monkeypatch.setenv("VANTAGE_CONCURRENCY", " 12 ")
    assert pick_int(None, "VANTAGE_CONCURRENCY", {"concurrency": 3}, "concurrency", 8, field="--c") == 12
    assert pick_int(5, "VANTAGE_CONCURRENCY", {}, "concurrency", 8, field="--c") == 5
    assert pick_int(None, "VANTAGE_X", {"n": "-4"}, "n", 0, field="--n") == -4


@pytest.mark.parametrize("bad", ["eight", "1.5", "", "0x10", "1e3", "٣"])
def test_pick_int_refuses_non_numbers_naming_the_source(bad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VANTAGE_CONCURRENCY", bad)
    if bad == "":  # an empty variable counts as unset
        assert pick_int(None, "VANTAGE_CONCURRENCY", {}, "concurrency", 8, field="--concurrency") == 8
        return
    with pytest.raises(UsageError, match=r"^--concurrency: .* \(from VANTAGE_CONCURRENCY\) is not a whole number$"):
        pick_int(None, "VANTAGE_CONCURRENCY", {}, "concurrency", 8, field="--concurrency")


def test_pick_int_bounds_and_types() -> None:
    with pytest.raises(UsageError, match=r"^--c: must be between 1 and 256, got 0$"):
        pick_int(0, "VANTAGE_X", {}, "c", 8, field="--c", minimum=1, maximum=256)
    with pytest.raises(UsageError, match=r"^--c: must be between 1 and 256, got 257 \(from c in the --config file\)$"):
        pick_int(None, "VANTAGE_X", {"c": 257}, "c", 8, field="--c", minimum=1, maximum=256)
    assert pick_int(256, "VANTAGE_X", {}, "c", 8, field="--c", minimum=1, maximum=256) == 256
    assert pick_int(1, "VANTAGE_X", {}, "c", 8, field="--c", minimum=1, maximum=256) == 1
    with pytest.raises(UsageError, match=r"^--m: must be at least 1, got 0$"):
        pick_int(0, "VANTAGE_X", {}, "m", 8, field="--m", minimum=1)
    with pytest.raises(UsageError, match=r"^--m: must be at most 9, got 10$"):
        pick_int(10, "VANTAGE_X", {}, "m", 8, field="--m", maximum=9)
    with pytest.raises(UsageError, match="is not a whole number"):
        pick_int(None, "VANTAGE_X", {"m": True}, "m", 8, field="--m")
    with pytest.raises(UsageError, match="is not a whole number"):
        pick_int(None, "VANTAGE_X", {"m": 2.5}, "m", 8, field="--m")


def test_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VANTAGE_LOG_LEVEL", raising=False)
    assert pick_log_level(None) == "info"
    assert pick_log_level("DEBUG") == "debug"
    assert pick_log_level(None, {"log_level": "warning"}) == "warning"
    monkeypatch.setenv("VANTAGE_LOG_LEVEL", "loud")
    with pytest.raises(UsageError, match=r"^--log-level: 'loud' \(from VANTAGE_LOG_LEVEL\) is not one of debug, info, warning, error$"):
        pick_log_level(None)
