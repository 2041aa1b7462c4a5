"""http: GET or HEAD a URL with aiohttp and report phase timings, status and body digest.

Phase timings come from aiohttp's tracing hooks (``TraceConfig``): ``dns_s`` (resolve),
``connect_s`` (TCP), ``tls_s`` (handshake), ``ttfb_s`` (request sent to response
headers) are phase durations of the final request; ``total_s`` is the whole probe, all
redirects included. aiohttp opens the TCP connection and runs the TLS handshake in one
call, so the connector below marks the moment the TCP connection exists (asyncio builds
the protocol right then, before the handshake) to split the two.

Redirects are followed by the probe itself (``max_redirects``, default 5), so every hop
passes the target policy: address literals are checked before connecting and names by
the resolver after resolving. The body is read up to ``max_bytes`` (decoded);
``body_sha256`` covers its first ``max_body`` bytes, and ``title``, ``link_hosts`` and
``refresh_url`` are read from them (``page.py``), so block pages can be recognised.
A final status of 400 or more is the failure ``http_error`` (the data is still there).
The spec and its options are parsed in ``common/specs/http.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from agent.policy import check_address, check_host_literal
from agent.probes import failures as f
from agent.probes import page
from agent.probes.base import Limits, ProbeOutcome, SpecError
from agent.probes.common import failed, now, rounded
from agent.probes.locate import client_hello, http_request, locate_after
from agent.probes.tls import make_context
from common.address import parse_address
from common.specs.http import NAME, Spec
from common.specs.options import url_host, url_port

SELECTED_HEADERS = (
    "content-type",
    "content-length",
    "content-encoding",
    "location",
    "server",
    "via",
    "x-cache",
    "cache-control",
)
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_READ_SIZE = 64 * 1024


class PolicyResolver(AbstractResolver):
    """aiohttp resolver that checks every resolved address against the target policy."""

    def __init__(self, *, allow_private: bool, overrides: Mapping[str, str] | None = None) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_private = allow_private
        self._overrides = dict(overrides or {})

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        target = self._overrides.get(host.lower(), host)
        results = await self._inner.resolve(target, port, family)
        for result in results:
            result["hostname"] = host
        for result in results:
            check_address(host, result["host"], allow_private=self._allow_private)
        return results

    async def close(self) -> None:
        await self._inner.close()


class TimedConnector(aiohttp.TCPConnector):
    """Marks when the TCP connection is up, which aiohttp's trace hooks cannot tell apart
    from the end of the TLS handshake. asyncio calls the protocol factory once the socket
    is connected and before it starts TLS, so the mark goes there."""

    def __init__(self, *, marks: dict[str, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._marks = marks

    async def _wrap_create_connection(self, *args: Any, **kwargs: Any) -> Any:
        factory = args[0]
        marks = self._marks

        def timed_factory() -> Any:
            marks["tcp_connected"] = now()
            return factory()

        return await super()._wrap_create_connection(timed_factory, *args[1:], **kwargs)


def _trace_config(marks: dict[str, float]) -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()

    def mark(name: str) -> Any:
        async def hook(_session: Any, _ctx: Any, _params: Any) -> None:
            if name == "request_start":
                marks.clear()
            marks[name] = now()

        return hook

    config.on_request_start.append(mark("request_start"))
    config.on_dns_resolvehost_start.append(mark("dns_start"))
    config.on_dns_resolvehost_end.append(mark("dns_end"))
    config.on_connection_create_start.append(mark("connect_start"))
    config.on_connection_create_end.append(mark("connect_end"))
    config.on_request_headers_sent.append(mark("headers_sent"))
    config.on_request_end.append(mark("response_headers"))
    return config


def _span(marks: Mapping[str, float], start: str, end: str) -> float | None:
    if start in marks and end in marks:
        return rounded(max(0.0, marks[end] - marks[start]))
    return None


def phase_timings(marks: Mapping[str, float], *, tls: bool) -> dict[str, float | None]:
    tcp_start = marks.get("dns_end", marks.get("connect_start"))
    connect_s = None
    tls_s = None
    if tcp_start is not None and "tcp_connected" in marks:
        connect_s = rounded(marks["tcp_connected"] - tcp_start)
        if tls and "connect_end" in marks:
            tls_s = rounded(marks["connect_end"] - marks["tcp_connected"])
    return {
        "dns_s": _span(marks, "dns_start", "dns_end"),
        "connect_s": connect_s,
        "tls_s": tls_s,
        "ttfb_s": _span(marks, "headers_sent", "response_headers"),
    }


async def _read_body(resp: aiohttp.ClientResponse, spec: Spec) -> tuple[int, str, bool, bytes]:
    """The body's length (up to max_bytes), the SHA-256 of its first max_body bytes,
    whether it was cut, and its first bytes for ``page.features``."""
    digest = hashlib.sha256()
    hashed = 0
    length = 0
    truncated = False
    head = bytearray()
    scan = min(spec.max_body, page.MAX_SCAN_BYTES)
    async for chunk in resp.content.iter_chunked(_READ_SIZE):
        if hashed < spec.max_body:
            part = chunk[: spec.max_body - hashed]
            digest.update(part)
            hashed += len(part)
        if len(head) < scan:
            head += chunk[: scan - len(head)]
        length += len(chunk)
        if length >= spec.max_bytes:
            truncated = length > spec.max_bytes or not resp.content.at_eof()
            length = min(length, spec.max_bytes)
            break
    return length, digest.hexdigest(), truncated, bytes(head)


async def _locate(spec: Spec, limits: Limits, started: float) -> dict[str, Any]:
    """Locate toward the first URL (not a redirect's): its request, or its ClientHello."""
    url = URL(spec.target)
    host = url_host(url)
    if url.scheme == "https":
        trigger = client_hello("" if parse_address(host) is not None else host, ("http/1.1",))
    else:
        # the Host the request sends: the host (bracketed when IPv6) and any explicit port,
        # never the URL's userinfo
        named = f"[{url.raw_host}]" if ":" in (url.raw_host or "") else (url.raw_host or host)
        trigger = http_request(named if url.explicit_port is None else f"{named}:{url.explicit_port}",
                               url.raw_path_qs)  # fmt: skip
    return await locate_after(host, url_port(url), trigger, limits, started=started, timeout_s=spec.timeout_s)


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    data: dict[str, Any] = {"method": spec.method, "redirects": []}
    marks: dict[str, float] = {}
    url = URL(spec.target)
    try:
        context = await asyncio.to_thread(
            make_context, verify=spec.verify, sni="x", ca_file=spec.ca_file, alpn=("http/1.1",),
            ca_dir=limits.ca_dir,
        )
    except SpecError:
        raise
    except (OSError, ValueError) as exc:  # the system's roots could not be loaded
        raise SpecError("options.ca_file", f"cannot load the CA certificates: {exc}") from exc
    connector = TimedConnector(
        marks=marks,
        resolver=PolicyResolver(
            allow_private=limits.allow_private_targets, overrides=limits.host_overrides
        ),
        force_close=True,
        use_dns_cache=False,
        ssl=context,
    )
    try:
        async with (
            aiohttp.ClientSession(
                connector=connector,
                trace_configs=[_trace_config(marks)],
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"User-Agent": "vantage-probe/0.1"},
            ) as session,
            asyncio.timeout(spec.timeout_s),
        ):
            method = spec.method
            for hop in range(spec.max_redirects + 1):
                check_host_literal(url_host(url), allow_private=limits.allow_private_targets)
                async with session.request(method, url, allow_redirects=False) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in REDIRECT_STATUSES and location:
                        data["redirects"].append({"url": str(url), "status": resp.status, "location": location})
                        if hop == spec.max_redirects:
                            raise aiohttp.TooManyRedirects(
                                resp.request_info, resp.history, status=resp.status,
                                message=f"more than {spec.max_redirects} redirects",
                            )
                        url = url.join(URL(location))
                        if url.scheme not in ("http", "https"):
                            raise aiohttp.InvalidURL(str(url))
                        if resp.status == 303:
                            method = "GET"
                        continue
                    data["url"] = str(url)
                    data["status"] = resp.status
                    data["reason"] = resp.reason or ""
                    data["http_version"] = f"{resp.version.major}.{resp.version.minor}" if resp.version else ""
                    data["headers"] = {
                        name: resp.headers[name] for name in SELECTED_HEADERS if name in resp.headers
                    }
                    data["timings"] = phase_timings(marks, tls=url.scheme == "https")
                    if method == "HEAD":
                        length, sha, truncated, head = 0, hashlib.sha256().hexdigest(), False, b""
                    else:
                        length, sha, truncated, head = await _read_body(resp, spec)
                    data["body_length"] = length
                    data["body_sha256"] = sha
                    data["body_truncated"] = truncated
                    found = page.features(head, resp.charset)
                    data["title"] = found.title
                    data["link_hosts"] = list(found.link_hosts)
                    data["refresh_url"] = found.refresh_url
                    break
    except Exception as exc:
        if "timings" not in data:
            data["timings"] = phase_timings(marks, tls=url.scheme == "https")
        data["timings"]["total_s"] = rounded(now() - started)
        outcome = failed(kind=NAME, target=spec.target, exc=exc, started=started, data=data)
        if spec.locate and outcome.failure != f.TARGET_FORBIDDEN:
            data["locate"] = await _locate(spec, limits, started)
            outcome = replace(outcome, data=data, duration_s=round(now() - started, 6))
        return outcome
    data["timings"]["total_s"] = rounded(now() - started)
    if spec.locate:
        data["locate"] = await _locate(spec, limits, started)
    status = int(data["status"])
    return ProbeOutcome(
        kind=NAME,
        target=spec.target,
        failure=f.HTTP_ERROR if status >= 400 else None,
        failure_detail=f"status {status} {data['reason']}".strip() if status >= 400 else "",
        duration_s=round(now() - started, 6),
        data=data,
    )
