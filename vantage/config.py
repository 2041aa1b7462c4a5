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
    m = _DURATION_RE.fullmatch(text)
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
    except RecursionError:  # tomllib recurses per nesting level
        raise UsageError(f"--config: {path} is nested too deeply to read") from None
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise UsageError(f"--config: [{section}] must be a table")
    return table


def toml_table(toml: Mapping[str, Any], key: str) -> dict[str, str]:
    """A ``[section.key]`` table of strings from the --config file (empty when absent)."""
    table = toml.get(key, {})
    if not isinstance(table, dict):
        raise UsageError(f"--config: {key} must be a table of names and values, got {table!r}")
    for name, value in table.items():
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise UsageError(f"--config: {key}.{name} must be a string, got {value!r}")
    return {str(k): str(v) for k, v in table.items()}


def pick(flag: Any, env_name: str | None, toml: Mapping[str, Any], key: str, default: Any) -> Any:
    """The first of: flag (when given), environment variable, TOML key, default."""
    return _pick_with_source(flag, env_name, toml, key, default)[0]


def _pick_with_source(
    flag: Any, env_name: str | None, toml: Mapping[str, Any], key: str, default: Any
) -> tuple[Any, str]:
    """``pick``, and where the value came from, for error messages."""
    if flag is not None:
        return flag, ""
    if env_name is not None and (value := env(env_name)) is not None:
        return value, f" (from {env_name})"
    if key in toml:
        return toml[key], f" (from {key} in the --config file)"
    return default, ""


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def pick_bool(
    flag: bool | None, env_name: str, toml: Mapping[str, Any], key: str, *, field: str | None = None
) -> bool:
    """``pick`` for on/off settings: a given flag, else 1/true/yes/on or 0/false/no/off
    (any case) in the environment, else a TOML boolean or one of those strings; off by
    default. Anything else is a usage error naming the setting and where it came from,
    so a typo such as ``VANTAGE_TLS=ture`` does not silently mean "off"."""
    value, source = _pick_with_source(flag, env_name, toml, key, False)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    name = field or "--" + key.replace("_", "-")
    raise UsageError(f"{name}: {value!r}{source} is not on or off (1/0, true/false, yes/no, on/off)")


def pick_int(
    flag: int | None,
    env_name: str,
    toml: Mapping[str, Any],
    key: str,
    default: int,
    *,
    field: str,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """``pick`` for whole numbers, checked against ``minimum`` and ``maximum``: a bad value
    is a usage error naming the flag and where the value came from, never a traceback."""
    value, source = _pick_with_source(flag, env_name, toml, key, default)
    if isinstance(value, bool):
        raise UsageError(f"{field}: {value!r}{source} is not a whole number")
    if isinstance(value, int):
        number = value
    else:
        text = str(value).strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):  # ASCII digits only
            raise UsageError(f"{field}: {value!r}{source} is not a whole number")
        if len(text) > 30:  # no setting takes such a number (and int() refuses 4,300 digits)
            raise UsageError(f"{field}: {text[:12]}... ({len(text)} digits){source} is out of range")
        number = int(text)
    too_low = minimum is not None and number < minimum
    too_high = maximum is not None and number > maximum
    if too_low or too_high:
        if minimum is not None and maximum is not None:
            rule = f"between {minimum} and {maximum}"
        else:
            rule = f"at least {minimum}" if too_low else f"at most {maximum}"
        raise UsageError(f"{field}: must be {rule}, got {number}{source}")
    return number


LOG_LEVELS = ("debug", "info", "warning", "error")


def pick_log_level(flag: str | None, toml: Mapping[str, Any] | None = None) -> str:
    """``--log-level`` (or ``VANTAGE_LOG_LEVEL``, or ``log_level`` in the file), checked."""
    value, source = _pick_with_source(flag, "VANTAGE_LOG_LEVEL", toml or {}, "log_level", "info")
    level = str(value).strip().lower()
    if level not in LOG_LEVELS:
        raise UsageError(f"--log-level: {value!r}{source} is not one of {', '.join(LOG_LEVELS)}")
    return level


def require_tls_off_loopback(addresses: list[str], *, tls: bool, insecure: bool, flag: str) -> None:
    """Refuse plaintext to a coordinator that is not on this machine: the bearer token would
    cross the network in the clear. ``--insecure`` allows it (a lab's private network)."""
    from common.address import is_loopback_host
    from common.hostport import split_host_port

    if tls or insecure:
        return
    for address in addresses:
        try:
            host, _port = split_host_port(address, field=flag)
        except ValueError:
            continue  # the caller reports a malformed address itself
        if not is_loopback_host(host):
            raise UsageError(
                f"{flag}: {address} is not on this machine and the connection would be "
                "plaintext (the token in the clear); use TLS (--tls or --ca FILE), or "
                "--insecure on a network you trust (a lab)"
            )


def client_certificate(
    cert: Any, key: Any, toml: Mapping[str, Any] | None = None
) -> tuple[Path, Path] | None:
    """``--cert``/``--key`` (or VANTAGE_CERT/VANTAGE_KEY, or the --config file's cert/key):
    the PEM client certificate and key for a coordinator with mutual TLS (``--client-ca``),
    checked to go together and to exist; None when neither is given."""
    toml = toml or {}
    cert = pick(cert, "VANTAGE_CERT", toml, "cert", None)
    key = pick(key, "VANTAGE_KEY", toml, "key", None)
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--cert and --key go together (a client certificate and its private key)")
    for flag, path in (("--cert", cert), ("--key", key)):
        if not Path(str(path)).is_file():
            raise UsageError(f"{flag}: no such file {path}")
    return Path(str(cert)), Path(str(key))


def add_client_certificate_flags(p: Any) -> None:
    p.add_argument("--cert", metavar="FILE", help="PEM client certificate, for a coordinator with "
                   "mutual TLS (--client-ca); an agent's names its id (subject CN)")
    p.add_argument("--key", metavar="FILE", help="the PEM private key of --cert")
