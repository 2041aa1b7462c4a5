"""Configuration at the edge: flags first, then ``VANTAGE_*`` environment variables, then an
optional TOML file (``--config``), then defaults. Nothing else in Vantage reads
``os.environ``; everything below this module gets frozen dataclasses.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vantage.errors import UsageError

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(text: str, field: str) -> float:
    """'500ms', '30s', '5m', '1h', '2d' or plain seconds."""
    m = _DURATION_RE.match(text)
    if not m:
        raise UsageError(f"{field}: {text!r} is not a duration (e.g. 30s, 5m, 1h)")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_key_values(items: list[str] | None, field: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{field}: {item!r} is not KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    value = (os.environ if environ is None else environ).get(name)
    return value if value not in (None, "") else None


def secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A token from ``NAME`` or from the file named by ``NAME_FILE`` (systemd credentials,
    Docker secrets). Surrounding whitespace is stripped."""
    value = env(name, environ)
    if value is not None:
        return value.strip()
    path = env(f"{name}_FILE", environ)
    if path is None:
        return None
    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    if not text:
        raise UsageError(f"{name}_FILE: {path} is empty")
    return text


def load_toml(path: str | None, section: str) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise UsageError(f"--config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config: {path} is not valid TOML: {exc}") from None
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise UsageError(f"--config: [{section}] must be a table")
    return table


def pick(flag: Any, env_name: str | None, toml: Mapping[str, Any], key: str, default: Any) -> Any:
    """The first of: flag (when given), environment variable, TOML key, default."""
    if flag is not None:
        return flag
    if env_name is not None and (value := env(env_name)) is not None:
        return value
    if key in toml:
        return toml[key]
    return default


def pick_bool(flag: bool | None, env_name: str, toml: Mapping[str, Any], key: str) -> bool:
    """``pick`` for on/off settings: a given flag, else 1/true/yes in the environment or
    the TOML file; off by default."""
    return str(pick(flag, env_name, toml, key, False)).lower() in ("1", "true", "yes")
