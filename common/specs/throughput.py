"""The throughput kind's spec: an http(s) URL, the direction, the transfer caps, the sampling, an
optional control URL, an optional trigger check and the TLS options of the tls kind.

``trigger_check=URL`` names a neutral https URL the operator controls (a file as large
as the target's). After the target (and the control), the probe makes two more transfers
that each swap one thing (``agent/probes/throughput.py``): the target's address with the
neutral URL's server name, and the neutral URL's address with the target's server name.
Which of the two escapes a throttle says what the censor keys on
(``coordinator/analysis/trigger.py``).

The probe, and how its figures are computed, is ``agent/probes/throughput.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from yarl import URL

from common.specs.base import DEFAULT_MAX_BYTES, Limits, SpecError
from common.specs.options import (
    TIMEOUT_HELP,
    check_known,
    opt_float,
    opt_int,
    opt_timeout,
    parse_http_url,
    url_host,
)
from common.specs.tls import neutral_sni, parse_tls_options

NAME = "throughput"
# A download past this many bytes, and steady for DEFAULT_SETTLE_S more, ends early: a
# policer's burst is rarely above 1 MB (the lab's is 1 MB), so 2 MiB leaves room, and on a
# 20 Mbit/s line the whole download then takes under 2 s instead of max_seconds.
DEFAULT_BURST_BYTES = 2 * 1024 * 1024
DEFAULT_SETTLE_S = 1.0
DIRECTIONS = ("download", "upload")
OPTIONS: Mapping[str, str] = {
    "direction": (
        "download (GET the URL, the default) or upload (POST a body of max_bytes to it and "
        "measure the rate the server acknowledges)"
    ),
    "max_bytes": "stop after this many body bytes (default 10M, capped by the agent)",
    "max_seconds": "stop after this many seconds (default 10, capped by the agent's max_timeout_s)",
    "interval": "seconds per sample of series_bps (default 0.25)",
    "stall_threshold": "a gap between reads longer than this counts as stall time (default 0.5)",
    "burst": (
        "bytes a policer may let through at full speed before it throttles: once past "
        "them, the download ends after `settle` more seconds (default 2M; 0: run to "
        "max_bytes or max_seconds)"
    ),
    "settle": "seconds the download goes on past `burst` bytes before it ends early (default 1)",
    "control": "a second URL fetched right after from this agent, for the ratio",
    "trigger_check": (
        "a neutral https URL you control: also fetch the target's address under its server "
        "name, and it under the target's server name, to tell an SNI-keyed throttle from an "
        "address-keyed one (verdicts say trigger: sni or address)"
    ),
    "sni": "TLS server name to send (default: the URL's host; empty: none)",
    "verify": "verify the server certificate: true or false (default true)",
    "ca_file": "PEM file of CA certificates to trust instead of the system's",
    "timeout": TIMEOUT_HELP + "; bounds connect and response headers",
}


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    direction: str = "download"
    max_bytes: int = DEFAULT_MAX_BYTES
    max_seconds: float = 10.0
    interval_s: float = 0.25
    stall_threshold_s: float = 0.5
    burst_bytes: int = DEFAULT_BURST_BYTES
    settle_s: float = DEFAULT_SETTLE_S
    control: str | None = None
    trigger_check: str | None = None
    trigger_sni: str = ""  # the neutral server name: trigger_check's host ("" for an address)
    sni: str = ""
    verify: bool = True
    ca_file: str | None = None
    timeout_s: float


def parse(target: str, options: Mapping[str, str], limits: Limits) -> Spec:
    check_known(NAME, options, OPTIONS)
    url = parse_http_url(target)
    control = None
    if options.get("control"):
        control = str(parse_http_url(options["control"], field="options.control"))
    sni, _alpn, verify, ca_file = parse_tls_options(options, url_host(url))
    trigger_check, trigger_sni = None, ""
    if options.get("trigger_check"):
        trigger_url = parse_http_url(options["trigger_check"], field="options.trigger_check")
        trigger_sni = check_trigger(url, trigger_url, sni)
        trigger_check = str(trigger_url)
    direction = options.get("direction", "download")
    if direction not in DIRECTIONS:
        raise SpecError("options.direction", f"must be download or upload, got {direction[:40]!r}")
    return Spec(
        target=str(url),
        direction=direction,
        max_bytes=opt_int(
            options,
            "max_bytes",
            default=min(DEFAULT_MAX_BYTES, limits.max_bytes_cap),
            minimum=1,
            maximum=limits.max_bytes_cap,
        ),
        max_seconds=opt_float(
            options,
            "max_seconds",
            default=min(10.0, limits.max_timeout_s),
            minimum=0.01,
            maximum=limits.max_timeout_s,
        ),
        interval_s=opt_float(options, "interval", default=0.25, minimum=0.01, maximum=10.0),
        stall_threshold_s=opt_float(
            options, "stall_threshold", default=0.5, minimum=0.01, maximum=60.0
        ),
        burst_bytes=opt_int(
            options, "burst", default=DEFAULT_BURST_BYTES, minimum=0, maximum=limits.max_bytes_cap
        ),
        settle_s=opt_float(options, "settle", default=DEFAULT_SETTLE_S, minimum=0.0, maximum=60.0),
        control=control,
        trigger_check=trigger_check,
        trigger_sni=trigger_sni,
        sni=sni,
        verify=verify,
        ca_file=ca_file,
        timeout_s=opt_timeout(options, limits),
    )


def check_trigger(url: URL, trigger_url: URL, sni: str) -> str:
    """The neutral server name of a throughput trigger check, or SpecError: both URLs
    https (the swap is of the TLS server name), a target that sends a name, and a check
    that is not the target (``neutral_sni``)."""
    if url.scheme != "https" or trigger_url.scheme != "https":
        raise SpecError(
            "options.trigger_check",
            "the check swaps the TLS server name: the target and the check must be https URLs",
        )
    return neutral_sni(url_host(trigger_url), sni, url_host(url))
