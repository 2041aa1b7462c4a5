"""The http kind's spec: an http(s) URL, the method, body and redirect caps, verification.

The probe is ``agent/probes/http.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.specs.base import DEFAULT_MAX_BYTES, Limits, SpecError
from common.specs.options import (
    LOCATE_HELP,
    TIMEOUT_HELP,
    check_known,
    opt_bool,
    opt_choice,
    opt_int,
    opt_timeout,
    parse_http_url,
)

NAME = "http"
OPTIONS: Mapping[str, str] = {
    "method": "GET or HEAD (default GET)",
    "max_body": "bytes of the body the SHA-256 covers (default 64k)",
    "max_bytes": "stop reading the body after this many bytes (default 10M, capped by the agent)",
    "max_redirects": "redirects to follow, 0 to 10 (default 5)",
    "verify": "verify the server certificate: true or false (default true)",
    "ca_file": "PEM file of CA certificates to trust instead of the system's",
    "locate": LOCATE_HELP,
    "timeout": TIMEOUT_HELP,
}


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    method: str = "GET"
    max_body: int = 64 * 1024
    max_bytes: int = DEFAULT_MAX_BYTES
    max_redirects: int = 5
    verify: bool = True
    ca_file: str | None = None
    timeout_s: float
    locate: bool = False


def parse(target: str, options: Mapping[str, str], limits: Limits) -> Spec:
    check_known(NAME, options, OPTIONS)
    url = parse_http_url(target)
    max_bytes = opt_int(
        options,
        "max_bytes",
        default=min(DEFAULT_MAX_BYTES, limits.max_bytes_cap),
        minimum=0,
        maximum=limits.max_bytes_cap,
    )
    max_body = opt_int(options, "max_body", default=min(64 * 1024, max_bytes), minimum=0, maximum=max_bytes)
    if max_body > max_bytes:
        raise SpecError("options.max_body", f"must not exceed max_bytes ({max_bytes})")
    return Spec(
        target=str(url),
        method=opt_choice(options, "method", default="GET", choices=("GET", "HEAD")),
        max_body=max_body,
        max_bytes=max_bytes,
        max_redirects=opt_int(options, "max_redirects", default=5, minimum=0, maximum=10),
        verify=opt_bool(options, "verify", default=True),
        ca_file=options.get("ca_file") or None,
        timeout_s=opt_timeout(options, limits),
        locate=opt_bool(options, "locate", default=False),
    )
