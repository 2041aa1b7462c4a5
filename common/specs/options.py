"""Pure parsing helpers shared by the probe kinds: options, hosts, ports, URLs.

Everything here raises :class:`~common.specs.base.SpecError` naming the field
(``target`` or ``options.<name>``) and the reason; nothing does I/O or DNS. HOST:PORT and
host names are :mod:`common.hostport`'s rules, wrapped to raise ``SpecError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from yarl import URL

from common import hostport
from common.specs.base import Limits, SpecError

TIMEOUT_HELP = "seconds before the probe gives up (default and cap: the agent's max_timeout_s, 30)"
LOCATE_HELP = (
    "after the probe, find where on the path a block sits: the trigger (the SYN, ClientHello or "
    "request) sent with TTL 1, 2, 3... beside a traceroute, in the task's time left "
    "(true or false, default false; agent/probes/locate.py)"
)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def check_known(kind: str, options: Mapping[str, str], known: Mapping[str, str]) -> None:
    for name in options:
        if name not in known:
            listed = ", ".join(sorted(known))
            raise SpecError(f"options.{name}", f"unknown option for kind {kind} (known: {listed})")


def opt_float(
    options: Mapping[str, str], name: str, *, default: float, minimum: float, maximum: float
) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SpecError(f"options.{name}", f"expected a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum or value > maximum:
        raise SpecError(f"options.{name}", f"must be between {minimum:g} and {maximum:g}, got {raw}")
    return value


def opt_int(options: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int) -> int:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = parse_size(raw)
    except ValueError:
        raise SpecError(f"options.{name}", f"expected a whole number, got {raw!r}") from None
    if value < minimum or value > maximum:
        raise SpecError(f"options.{name}", f"must be between {minimum} and {maximum}, got {raw}")
    return value


def parse_size(raw: str) -> int:
    """``1234``, ``64k``/``64KiB``, ``10M``/``10MB``, ``1G``: powers of 1024."""
    text = raw.strip().lower().removesuffix("ib").removesuffix("b")
    scale = 1
    for suffix, factor in (("k", 1024), ("m", 1024**2), ("g", 1024**3)):
        if text.endswith(suffix):
            text, scale = text[: -len(suffix)], factor
            break
    if not text or not text.isdigit():
        raise ValueError(raw)
    return int(text) * scale


def opt_bool(options: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = options.get(name)
    if raw is None:
        return default
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise SpecError(f"options.{name}", f"expected true or false, got {raw!r}")


def opt_choice(options: Mapping[str, str], name: str, *, default: str, choices: tuple[str, ...]) -> str:
    raw = options.get(name)
    if raw is None:
        return default
    value = raw.strip()
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise SpecError(f"options.{name}", f"expected one of {', '.join(choices)}, got {raw!r}")


def opt_timeout(options: Mapping[str, str], limits: Limits) -> float:
    return opt_float(
        options, "timeout", default=limits.max_timeout_s, minimum=0.001, maximum=limits.max_timeout_s
    )


def check_host(host: str, field: str = "target") -> str:
    """A host name or IP literal (IPv6 without brackets); returns it normalised."""
    try:
        return hostport.check_host(host, field)
    except hostport.HostPortError as exc:
        raise SpecError(field, exc.reason) from None


def split_host_port(text: str, *, default_port: int | None, field: str = "target") -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, or (with a default port) ``host`` / ``[v6]`` / bare v6
    (:func:`common.hostport.parse_host_port`)."""
    try:
        return hostport.parse_host_port(text, default_port=default_port, field=field)
    except hostport.HostPortError as exc:
        raise SpecError(field, exc.reason) from None


def parse_http_url(text: str, field: str = "target") -> URL:
    """An absolute ``http://`` or ``https://`` URL with a valid host."""
    try:
        url = URL(text.strip())
    except (ValueError, TypeError) as exc:
        raise SpecError(field, f"{text!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https"):
        raise SpecError(field, f"{text!r}: expected an http:// or https:// URL")
    try:
        host = url.host  # decodes IDNA: a malformed A-label (xn--) raises UnicodeError
    except ValueError:
        raise SpecError(field, f"{text[:200]!r}: the host is not a valid (IDNA) name") from None
    if not host:
        raise SpecError(field, f"{text!r}: the URL has no host")
    try:
        port = url.port
    except ValueError:
        raise SpecError(field, f"{text!r}: bad port") from None
    if port is not None and not 1 <= port <= 65535:
        raise SpecError(field, f"{text!r}: port must be from 1 to 65535")
    check_host(host, field)
    return url


def url_host(url: URL) -> str:
    host = url.host
    if host is None:  # parse_http_url guarantees one
        raise ValueError(f"{url} has no host")
    return host


def url_port(url: URL) -> int:
    port = url.port
    if port is None:
        return 443 if url.scheme == "https" else 80
    return port
