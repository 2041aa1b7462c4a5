"""The closed set of failure classes: what ``ProbeResult.failure`` may say.

The agent's probes report them (``agent.probes.failures.classify`` maps exceptions onto
them, in one place); the coordinator checks results against them and counts the agent
errors; the analysis judges them. This module holds the names and the sets only.
"""

from __future__ import annotations

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
        TARGET_FORBIDDEN,  # the agent's target policy refused the address (agent/policy.py)
        UNKNOWN_FAILURE,  # anything else; the probe logs the exception
        AGENT_DEADLINE_MISSED,  # the deadline passed while the task waited on this agent
        AGENT_SPEC_ERROR,  # the agent cannot run this spec (options, limits)
        AGENT_RESOURCE_ERROR,  # EMFILE, ENFILE, ENOBUFS, ENOMEM: the agent ran out
        AGENT_INTERNAL_ERROR,  # the probe crashed (a bug); the agent logs it
    }
)
