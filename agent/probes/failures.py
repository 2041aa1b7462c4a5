"""The one place exceptions are mapped onto the closed set of failure classes.

A probe never lets a network error escape: it catches it and calls :func:`classify`,
which returns one of :data:`~common.failures.FAILURES`. Anything this module does not
recognise is ``unknown_failure`` (and the probe logs the exception so the map can grow).
The names and sets themselves live in :mod:`common.failures` (the coordinator and the
analysis import them from there); they are re-exported here so the probes and the
runner can keep writing ``f.CONNECTION_RESET``.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import aiohttp
import dns.exception
import dns.resolver

from agent.policy import TargetForbidden
from agent.probes.netpath import IcmpUnavailable
from common.failures import (
    AGENT_DEADLINE_MISSED,
    AGENT_ERRORS,
    AGENT_INTERNAL_ERROR,
    AGENT_RESOURCE_ERROR,
    AGENT_SPEC_ERROR,
    CONNECTION_CLOSED,
    CONNECTION_REFUSED,
    CONNECTION_RESET,
    DNS_NO_ANSWER,
    DNS_NXDOMAIN,
    DNS_REFUSED,
    DNS_SERVFAIL,
    DNS_TEMPORARY_FAILURE,
    DNS_TIMEOUT,
    FAILURES,
    GENERIC_TIMEOUT,
    HOST_UNREACHABLE,
    HTTP_ERROR,
    NETWORK_UNREACHABLE,
    TARGET_FORBIDDEN,
    TLS_CERT_INVALID,
    TLS_HANDSHAKE_FAILED,
    UNKNOWN_FAILURE,
)

# Re-exported: the probes and the runner write ``f.<NAME>``.
__all__ = [
    "AGENT_DEADLINE_MISSED",
    "AGENT_ERRORS",
    "AGENT_INTERNAL_ERROR",
    "AGENT_RESOURCE_ERROR",
    "AGENT_SPEC_ERROR",
    "CONNECTION_CLOSED",
    "CONNECTION_REFUSED",
    "CONNECTION_RESET",
    "DNS_NO_ANSWER",
    "DNS_NXDOMAIN",
    "DNS_REFUSED",
    "DNS_SERVFAIL",
    "DNS_TEMPORARY_FAILURE",
    "DNS_TIMEOUT",
    "FAILURES",
    "GENERIC_TIMEOUT",
    "HOST_UNREACHABLE",
    "HTTP_ERROR",
    "NETWORK_UNREACHABLE",
    "TARGET_FORBIDDEN",
    "TLS_CERT_INVALID",
    "TLS_HANDSHAKE_FAILED",
    "UNKNOWN_FAILURE",
    "classify",
    "classify_with_cause",
    "describe",
]

DETAIL_MAX = 300  # characters of failure_detail

_ERRNO_FAILURES: dict[int, str] = {
    errno.ECONNREFUSED: CONNECTION_REFUSED,
    errno.ECONNRESET: CONNECTION_RESET,
    errno.EPIPE: CONNECTION_RESET,
    errno.ECONNABORTED: CONNECTION_RESET,
    errno.ETIMEDOUT: GENERIC_TIMEOUT,
    errno.EHOSTUNREACH: HOST_UNREACHABLE,
    errno.EHOSTDOWN: HOST_UNREACHABLE,
    errno.ENETUNREACH: NETWORK_UNREACHABLE,
    errno.ENETDOWN: NETWORK_UNREACHABLE,
    errno.EADDRNOTAVAIL: NETWORK_UNREACHABLE,
    # the agent's own host ran out of something: about the agent, not the network
    errno.EMFILE: AGENT_RESOURCE_ERROR,
    errno.ENFILE: AGENT_RESOURCE_ERROR,
    errno.ENOBUFS: AGENT_RESOURCE_ERROR,
    errno.ENOMEM: AGENT_RESOURCE_ERROR,
}

_GAI_FAILURES: dict[int, str] = {
    socket.EAI_NONAME: DNS_NXDOMAIN,
    socket.EAI_AGAIN: DNS_TEMPORARY_FAILURE,
    socket.EAI_FAIL: DNS_SERVFAIL,
}
for _name in ("EAI_NODATA", "EAI_ADDRFAMILY"):
    if hasattr(socket, _name):
        _GAI_FAILURES[getattr(socket, _name)] = DNS_NO_ANSWER


def classify(exc: BaseException) -> str:
    """Map an exception raised while probing onto one of :data:`FAILURES`."""
    return classify_with_cause(exc)[0]


def classify_with_cause(exc: BaseException) -> tuple[str, BaseException]:
    """The failure class and the exception in ``exc``'s chain that decided it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        failure = _classify_one(current)
        if failure is not None:
            return failure, current
        current = _inner(current)
    return UNKNOWN_FAILURE, exc


def _inner(exc: BaseException) -> BaseException | None:
    inner = getattr(exc, "os_error", None)  # aiohttp's ClientConnectorError wraps one
    if isinstance(inner, BaseException) and inner is not exc:
        return inner
    return exc.__cause__ or exc.__context__


def _classify_one(exc: BaseException) -> str | None:
    if isinstance(exc, TargetForbidden):
        return TARGET_FORBIDDEN
    if isinstance(exc, IcmpUnavailable):
        return AGENT_SPEC_ERROR  # this host cannot run the task as asked: not evidence
    if isinstance(exc, MemoryError):
        return AGENT_RESOURCE_ERROR
    # dnspython
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return DNS_NXDOMAIN
    if isinstance(exc, dns.resolver.NoAnswer):
        return DNS_NO_ANSWER
    if isinstance(exc, dns.exception.Timeout):
        return DNS_TIMEOUT
    # aiohttp
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return TLS_CERT_INVALID
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return (
            _classify_ssl(exc.os_error)
            if isinstance(exc.os_error, ssl.SSLError)
            else TLS_HANDSHAKE_FAILED
        )
    if isinstance(exc, aiohttp.ServerTimeoutError | aiohttp.ConnectionTimeoutError):
        return GENERIC_TIMEOUT
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return CONNECTION_CLOSED
    if isinstance(exc, aiohttp.TooManyRedirects | aiohttp.ClientResponseError):
        return HTTP_ERROR
    if isinstance(exc, aiohttp.ClientPayloadError):
        return None if (exc.__cause__ or exc.__context__) else HTTP_ERROR
    if isinstance(exc, aiohttp.InvalidURL):
        return HTTP_ERROR
    # TLS
    if isinstance(exc, ssl.SSLError):
        return _classify_ssl(exc)
    if isinstance(exc, ssl.CertificateError):
        return TLS_CERT_INVALID
    # sockets
    if isinstance(exc, socket.gaierror):
        return _GAI_FAILURES.get(exc.errno or 0, DNS_TEMPORARY_FAILURE)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return GENERIC_TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED
    if isinstance(exc, ConnectionResetError) and exc.errno is None:
        # asyncio's "Connection lost": the peer closed (EOF), e.g. during a TLS handshake;
        # a real RST carries errno ECONNRESET.
        return CONNECTION_CLOSED
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return CONNECTION_RESET
    if isinstance(exc, OSError) and exc.errno in _ERRNO_FAILURES:
        return _ERRNO_FAILURES[exc.errno]
    if isinstance(exc, aiohttp.ClientOSError):
        return None  # look at the wrapped OSError
    if isinstance(exc, aiohttp.ClientConnectionError | ConnectionError):
        return None if (exc.__cause__ or exc.__context__) else CONNECTION_CLOSED
    return None


def _classify_ssl(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TLS_CERT_INVALID
    return TLS_HANDSHAKE_FAILED


def describe(exc: BaseException) -> str:
    """A one-line ``failure_detail``: type and message of the exception that decided the
    class (the wrapped ``OSError`` rather than aiohttp's wrapper, say)."""
    exc = classify_with_cause(exc)[1]
    text = " ".join(str(exc).split())
    if len(text) > DETAIL_MAX:
        text = text[: DETAIL_MAX - 3] + "..."
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
