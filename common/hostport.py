"""HOST:PORT parsing, one module for every caller, with errors that name the field.

Two rules, because two kinds of text are parsed:

- :func:`split_host_port` is the coordinator's rule for the addresses it is told to
  listen on or dial (``--listen``, ``--metrics-listen``, ``--coordinator``): the text up
  to the last ``:`` is the host (brackets stripped, so ``[::1]:50051`` works), the rest
  is the port. The host is not judged: gRPC and the socket layer do, and report better.
  Port 0 (any free port) is allowed unless the caller says ``min_port=1``.
- :func:`parse_host_port` is the probe targets' rule (``tcp``/``tls`` targets, the dns
  ``resolver`` option): the host must be a host name or IP literal and comes back
  normalised, an IPv6 literal with a port needs brackets, a port is 1 to 65535, and a
  caller may supply a default port.

Both raise :class:`HostPortError` (a ``ValueError``), whose message starts with the
field when one is given.
"""

from __future__ import annotations

from common.address import normal_host, parse_address


class HostPortError(ValueError):
    """``field`` (may be None) names what is wrong and ``reason`` why."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def split_host_port(address: str, *, field: str | None = None, min_port: int = 0) -> tuple[str, int]:
    """'127.0.0.1:50051', '[::1]:50051' or 'host:0' -> (host, port).

    The same behaviour as ``coordinator.server.split_host_port`` (with ``field`` None,
    the same message too): ValueError unless there is a non-empty host and a port of
    digits from ``min_port`` to 65535. One difference, in a message only: a port of
    digits ``int`` cannot read (``'²'``, ``isdigit`` but not ``isdecimal``) is refused
    with this message, where server.py lets ``int``'s own ValueError through."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdecimal() or not min_port <= int(port) <= 65535:
        ports = "" if min_port == 0 else f" with a port in {min_port}..65535"
        raise HostPortError(field, f"{address!r} is not HOST:PORT{ports}")
    return host.strip("[]"), int(port)


def join_host_port(host: str, port: int) -> str:
    """The inverse of :func:`split_host_port`: IPv6 literals go in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_host_port(text: str, *, default_port: int | None, field: str = "target") -> tuple[str, int]:
    """``host:port``, ``[v6]:port``, or (with a default port) ``host`` / ``[v6]`` / bare v6.

    Returns the normalised host (IPv6 without brackets) and the port."""
    text = text.strip()
    if not text:
        raise HostPortError(field, "is empty")
    host: str
    port_text: str | None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise HostPortError(field, f"{text!r}: unclosed '['")
        host, rest = text[1:end], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise HostPortError(field, f"{text!r}: expected ':port' after ']'")
        port_text = rest[1:] if rest else None
        if parse_address(host) is None:
            raise HostPortError(field, f"{host!r} inside brackets is not an IPv6 address")
    elif text.count(":") > 1:
        if parse_address(text) is None:
            raise HostPortError(field, f"{text!r} is not host:port (write IPv6 as [addr]:port)")
        host, port_text = text, None
    elif ":" in text:
        host, port_text = text.split(":", 1)
    else:
        host, port_text = text, None
    if port_text is None:
        if default_port is None:
            raise HostPortError(field, f"{text!r}: expected host:port")
        port = default_port
    else:
        port = parse_port(port_text, field)
    return check_host(host, field), port


def parse_port(text: str, field: str) -> int:
    """A port from 1 to 65535, or HostPortError naming ``field``."""
    if not text.isdecimal() or not 1 <= int(text) <= 65535:
        raise HostPortError(field, f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def check_host(host: str, field: str = "target") -> str:
    """A host name or IP literal (IPv6 without brackets); returns it normalised, or raises
    HostPortError naming ``field``."""
    normal = normal_host(host)
    if normal is None:
        raise HostPortError(field, f"{host!r} is not a host name or IP address")
    return normal
