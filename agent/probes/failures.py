"""The closed set of failure classes and the one place exceptions are mapped onto it.

A probe never lets a network error escape: it catches it and calls :func:`classify`,
which returns one of :data:`FAILURES`. Anything this module does not recognise is
``unknown_failure`` (and the probe logs the exception so the map can grow).
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

DNS_NXDOMAIN = "dns_nxdomain"
DNS_SERVFAIL = "dns_servfail"
DNS_REFUSED = "dns_refused"
DNS_TIMEOUT = "dns_timeout"
DNS_NO_ANSWER = "dns_no_answer"
DNS_TEMPORARY_FAILURE = "dns_temporary_failure"
CONNECTION_REFUSED = "connection_refused"
CONNECTION_RESET = "connection_reset"
CONNECTION_CLOSED = "connection_closed"
GENERIC_TIMEOUT = "generic_timeout"
HOST_UNREACHABLE = "host_unreachable"
NETWORK_UNREACHABLE = "network_unreachable"
TLS_HANDSHAKE_FAILED = "tls_handshake_failed"
TLS_CERT_INVALID = "tls_cert_invalid"
HTTP_ERROR = "http_error"
TARGET_FORBIDDEN = "target_forbidden"
UNKNOWN_FAILURE = "unknown_failure"
# The agent could not run the task: outcomes about the agent, never about the target.
AGENT_DEADLINE_MISSED = "agent_deadline_missed"
AGENT_SPEC_ERROR = "agent_spec_error"
AGENT_RESOURCE_ERROR = "agent_resource_error"
AGENT_INTERNAL_ERROR = "agent_internal_error"

#: The "agent error" class (issue 15): the deadline passed before the task could run, a
#: spec the agent cannot run, a local resource ran out (file descriptors, buffers,
#: memory), or the probe crashed. Like ``target_forbidden``, never evidence about the
#: target; the coordinator counts them per agent (``vantage_agent_errors_total``).
AGENT_ERRORS: frozenset[str] = frozenset(
    {AGENT_DEADLINE_MISSED, AGENT_SPEC_ERROR, AGENT_RESOURCE_ERROR, AGENT_INTERNAL_ERROR}
)

#: Every failure string a probe may report; the wire's ``ProbeResult.failure`` is one of these.
FAILURES: frozenset[str] = frozenset(
    {
        DNS_NXDOMAIN,  # the name does not exist (rcode NXDOMAIN, EAI_NONAME)
        DNS_SERVFAIL,  # the resolver answered SERVFAIL
        DNS_REFUSED,  # the resolver answered REFUSED
        DNS_TIMEOUT,  # the resolver did not answer in time
        DNS_NO_ANSWER,  # the name exists but has no record of the asked type
        DNS_TEMPORARY_FAILURE,  # the system resolver said "try again" (EAI_AGAIN)
        CONNECTION_REFUSED,  # RST in answer to SYN (ECONNREFUSED)
        CONNECTION_RESET,  # RST on an established connection (ECONNRESET), also mid-TLS
        CONNECTION_CLOSED,  # the peer closed (FIN) mid-handshake or before the response was complete
        GENERIC_TIMEOUT,  # connect, handshake or response did not finish in time
        HOST_UNREACHABLE,  # EHOSTUNREACH
        NETWORK_UNREACHABLE,  # ENETUNREACH
        TLS_HANDSHAKE_FAILED,  # TLS alert, protocol error or EOF during the handshake
        TLS_CERT_INVALID,  # the certificate chain or name did not verify
        HTTP_ERROR,  # malformed HTTP, status >= 400, too many redirects
        TARGET_FORBIDDEN,  # the target policy refused the address (agent/policy.py)
        UNKNOWN_FAILURE,  # anything else; the probe logs the exception
        AGENT_DEADLINE_MISSED,  # the deadline passed while the task waited on this agent
        AGENT_SPEC_ERROR,  # the agent cannot run this spec (options, limits)
        AGENT_RESOURCE_ERROR,  # EMFILE, ENFILE, ENOBUFS, ENOMEM: the agent ran out
        AGENT_INTERNAL_ERROR,  # the probe crashed (a bug); the agent logs it
    }
)

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
