"""The tls kind's spec: ``host[:port]`` (443 by default), SNI, ALPN and verification.

``parse_tls_options`` is shared with the throughput kind. The probe is
``agent/probes/tls.py``.

``trigger_check=host[:port]`` names a neutral TLS server the operator controls: after the
handshake with the target, two more swap one thing each (the target's address with the
neutral server's name, the neutral server's address with the target's name), to tell a
block keyed on the SNI from one keyed on the address (``coordinator/analysis/trigger.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.address import is_hostname, parse_address
from common.specs.base import Limits, SpecError
from common.specs.options import (
    LOCATE_HELP,
    TIMEOUT_HELP,
    check_known,
    opt_bool,
    opt_timeout,
    split_host_port,
)

NAME = "tls"
OPTIONS: Mapping[str, str] = {
    "sni": "server name to send (default: the target's host when it is a name; empty: none)",
    "alpn": "ALPN protocols to offer, comma-separated (default h2,http/1.1; empty: none)",
    "verify": "verify the certificate chain and name: true or false (default true)",
    "ca_file": "PEM file of CA certificates to trust instead of the system's",
    "trigger_check": (
        "host[:port] of a neutral TLS server you control: also shake hands with the target's "
        "address under its name, and with it under the target's name, to tell an SNI-keyed "
        "block from an address-keyed one (verdicts say trigger: sni or address)"
    ),
    "locate": LOCATE_HELP,
    "timeout": TIMEOUT_HELP,
}


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    host: str
    port: int
    sni: str  # "" sends none
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    verify: bool = True
    ca_file: str | None = None
    trigger_host: str | None = None  # options.trigger_check
    trigger_port: int = 443
    trigger_sni: str = ""  # the neutral server name: trigger_host ("" for an address)
    timeout_s: float
    locate: bool = False


def neutral_sni(trigger_host: str, sni: str, target_host: str) -> str:
    """The neutral server name of a trigger check (the check's host when it is a name, else
    none), or SpecError when there would be nothing to swap: the target sends no name, or
    the check is the target (its host, or the name the target sends)."""
    if not sni:
        raise SpecError(
            "options.trigger_check",
            "the target sends no server name to swap: give -o sni=NAME or a target by name",
        )
    check = trigger_host.lower().rstrip(".")
    if check in (sni.rstrip("."), target_host.lower().rstrip(".")):
        raise SpecError("options.trigger_check", f"{trigger_host!r} is the target itself: name a neutral server")
    return "" if _is_address(check) else check


def parse_tls_options(options: Mapping[str, str], host: str) -> tuple[str, tuple[str, ...], bool, str | None]:
    """sni, alpn, verify and ca_file as the tls and throughput kinds share them."""
    if "sni" in options:
        sni = options["sni"].strip().lower()
        if sni and not is_hostname(sni):
            raise SpecError("options.sni", f"{options['sni']!r} is not a host name")
    else:
        sni = "" if _is_address(host) else host
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    if "alpn" in options:
        alpn = tuple(p.strip() for p in options["alpn"].split(",") if p.strip())
        for proto in alpn:
            if len(proto) > 255 or not proto.isascii():
                raise SpecError("options.alpn", f"{proto!r} is not an ALPN protocol id")
    verify = opt_bool(options, "verify", default=True)
    ca_file = options.get("ca_file") or None
    return sni, alpn, verify, ca_file


def _is_address(host: str) -> bool:
    return parse_address(host) is not None


def parse(target: str, options: Mapping[str, str], limits: Limits) -> Spec:
    check_known(NAME, options, OPTIONS)
    text = target.strip()
    if text.startswith("https://"):
        raise SpecError("target", f"{target!r}: the tls kind takes host[:port], not a URL")
    host, port = split_host_port(text, default_port=443)
    sni, alpn, verify, ca_file = parse_tls_options(options, host)
    trigger_host, trigger_port, trigger_sni = None, 443, ""
    if options.get("trigger_check"):
        trigger_host, trigger_port = split_host_port(
            options["trigger_check"].strip(), default_port=443, field="options.trigger_check"
        )
        trigger_sni = neutral_sni(trigger_host, sni, host)
    return Spec(
        target=text,
        host=host,
        port=port,
        sni=sni,
        alpn=alpn,
        verify=verify,
        ca_file=ca_file,
        trigger_host=trigger_host,
        trigger_port=trigger_port,
        trigger_sni=trigger_sni,
        timeout_s=opt_timeout(options, limits),
        locate=opt_bool(options, "locate", default=False),
    )
