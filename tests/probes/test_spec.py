"""parse_spec: the interface the coordinator validates jobs with. Pure, errors name the field."""

from __future__ import annotations

import dataclasses
import socket

import pytest

from agent.probes import KINDS, SpecError, option_help, parse_spec
from agent.probes.base import DEFAULT_MAX_BYTES, Limits
from agent.probes.failures import FAILURES, classify

LIMITS = Limits()


def test_kinds_and_option_help() -> None:
    assert KINDS == ("dns", "tcp", "tls", "http", "throughput", "ping", "traceroute")
    for kind in KINDS:
        helps = option_help(kind)
        assert "timeout" in helps and all(isinstance(v, str) and v for v in helps.values())


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("dns", "example.com"),
        ("tcp", "example.com:443"),
        ("tcp", "[2001:db8::1]:80"),
        ("tls", "example.com"),
        ("http", "https://example.com/a?b=c"),
        ("throughput", "http://example.com:8080/10M.bin"),
    ],
)
def test_specs_are_frozen_and_named(kind: str, target: str) -> None:
    spec = parse_spec(kind, target, {}, LIMITS)
    assert spec.kind == kind and spec.target
    assert spec.timeout_s == LIMITS.max_timeout_s
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.target = "x"


@pytest.mark.parametrize(
    ("kind", "target", "options", "field"),
    [
        ("smoke", "example.com", {}, "kind"),
        ("dns", "not a name", {}, "target"),
        ("dns", "8.8.8.8", {}, "target"),
        ("tcp", "example.com", {}, "target"),
        ("tcp", "example.com:99999", {}, "target"),
        ("tcp", "2001:db8::1:80", {}, "target"),
        ("tls", "https://example.com", {}, "target"),
        ("http", "ftp://example.com/", {}, "target"),
        ("http", "https:///nohost", {}, "target"),
        ("throughput", "example.com/file", {}, "target"),
        ("tcp", "example.com:1", {"colour": "red"}, "options.colour"),
        ("tcp", "example.com:1", {"timeout": "31"}, "options.timeout"),
        ("tcp", "example.com:1", {"timeout": "soon"}, "options.timeout"),
        ("dns", "example.com", {"type": "A,BOGUS"}, "options.type"),
        ("dns", "example.com", {"resolver": "dns.google"}, "options.resolver"),
        ("dns", "example.com", {"transport": "quic"}, "options.transport"),
        ("tls", "example.com", {"verify": "maybe"}, "options.verify"),
        ("tls", "example.com", {"sni": "bad name"}, "options.sni"),
        ("http", "http://e.com/", {"method": "POST"}, "options.method"),
        ("http", "http://e.com/", {"max_redirects": "11"}, "options.max_redirects"),
        ("throughput", "http://e.com/", {"max_bytes": "101M"}, "options.max_bytes"),
        ("throughput", "http://e.com/", {"max_seconds": "31"}, "options.max_seconds"),
        ("throughput", "http://e.com/", {"control": "e.com/x"}, "options.control"),
    ],
)
def test_bad_input_names_the_field(kind: str, target: str, options: dict[str, str], field: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(kind, target, options, LIMITS)
    assert info.value.field == field
    assert info.value.reason


def test_byte_limits() -> None:
    spec = parse_spec("throughput", "http://e.com/", {}, LIMITS)
    assert spec.max_bytes == DEFAULT_MAX_BYTES
    assert parse_spec("throughput", "http://e.com/", {"max_bytes": "64k"}, LIMITS).max_bytes == 65536
    big = Limits(max_bytes_cap=1 << 30)
    assert parse_spec("throughput", "http://e.com/", {"max_bytes": "1G"}, big).max_bytes == 1 << 30
    small = Limits(max_bytes_cap=1000)
    assert parse_spec("http", "http://e.com/", {}, small).max_bytes == 1000


def test_parse_does_no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> None:
        raise AssertionError("parse_spec resolved a name")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    for kind, target in [("tcp", "example.com:1"), ("http", "https://example.com/"), ("dns", "example.com")]:
        parse_spec(kind, target, {}, LIMITS)


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "dns_nxdomain"),
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure"), "dns_temporary_failure"),
        (ConnectionRefusedError(111, "refused"), "connection_refused"),
        (ConnectionResetError(104, "reset"), "connection_reset"),
        (TimeoutError(), "generic_timeout"),
        (OSError(113, "No route to host"), "host_unreachable"),
        (OSError(101, "Network is unreachable"), "network_unreachable"),
        (RuntimeError("something new"), "unknown_failure"),
    ],
)
def test_classify(exc: BaseException, failure: str) -> None:
    assert classify(exc) == failure
    assert failure in FAILURES


def test_failures_include_the_required_set() -> None:
    required = {
        "dns_nxdomain", "dns_servfail", "dns_refused", "dns_timeout", "dns_no_answer",
        "connection_refused", "connection_reset", "generic_timeout", "host_unreachable",
        "network_unreachable", "tls_handshake_failed", "tls_cert_invalid", "http_error",
        "target_forbidden", "unknown_failure",
    }
    assert required <= FAILURES
