"""tls: TCP, then a TLS handshake with a chosen SNI, ALPN and verification.

Reports the TCP connect and handshake times, the negotiated version, cipher and ALPN
protocol, and the leaf certificate (subject, issuer, SANs, validity, SHA-256 of the DER),
read by :mod:`agent.probes.x509` so it is reported with verification off too.

``sni=`` may differ from the host (the differential test: the same server under the
target's name and under a neutral one) or be empty, which sends no SNI at all; then the
certificate chain is still verified (when ``verify`` is on) but the name cannot be, and
``data["hostname_checked"]`` is false. ``trigger_check=host[:port]`` adds two unverified
handshakes under ``trigger_checks`` (``swap`` "sni": the target's address under the
check's name; "address": the check's server under the target's name): which of them a
censor lets through says what it keys on. The spec and its options are parsed in
``common/specs/tls.py``.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import stat
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import structlog

from agent.policy import resolve_checked
from agent.probes.base import Limits, ProbeOutcome, SpecError
from agent.probes.common import MIN_CHECK_S, budget_left, failed, now, rounded, skipped_check
from agent.probes.locate import client_hello, locate_after
from agent.probes.tcp import connect
from agent.probes.x509 import summarize
from common.hostport import join_host_port
from common.specs.tls import NAME, Spec

log = structlog.get_logger("vantage.agent")


#: The largest CA bundle read for a task's ``ca_file``.
MAX_CA_BYTES = 1024 * 1024
#: What a task's submitter learns of a ca_file that cannot be used, whatever the reason:
#: never whether a path exists or what it holds (the agent logs the reason itself).
CA_FILE_UNUSABLE = (
    "not usable: it must name a readable PEM file of CA certificates in the agent's --ca-dir"
)


def read_ca_file(ca_file: str, ca_dir: str | None) -> str:
    """The PEM text of a task's ``ca_file``: only a regular file (no FIFO or device, which
    would pin a thread) of at most 1 MiB, inside ``ca_dir`` after symbolic links are
    resolved. Blocking: call it in a thread. Raises ``SpecError`` with a generic reason."""
    try:
        if ca_dir is None:
            raise PermissionError("the agent has no --ca-dir")
        root = os.path.realpath(ca_dir)
        path = os.path.realpath(os.path.join(root, ca_file))
        if os.path.commonpath([root, path]) != root:
            raise PermissionError("outside --ca-dir")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise PermissionError("not a regular file")
            data = f.read(MAX_CA_BYTES + 1)
        if len(data) > MAX_CA_BYTES:
            raise ValueError("larger than 1 MiB")
        text = data.decode("ascii")
        if "-----BEGIN CERTIFICATE-----" not in text:
            raise ValueError("no PEM certificate")
        return text
    except (OSError, ValueError) as exc:
        log.warning("ca_file_refused", ca_file=ca_file[:200], reason=str(exc)[:200])
        raise SpecError("options.ca_file", CA_FILE_UNUSABLE) from None


# Contexts made so far, by what makes them differ (verify, name checking, the CA bundle's
# text, ALPN), at most CONTEXT_CACHE of them. Loading the system's CA certificates takes
# about 20 ms of CPU: once per probe, that was the cost of an http probe many times over.
# A context is never changed once made, and one context serves any number of connections.
CONTEXT_CACHE = 32
_contexts: OrderedDict[tuple[object, ...], ssl.SSLContext] = OrderedDict()
_contexts_lock = threading.Lock()


def make_context(
    *, verify: bool, sni: str, ca_file: str | None, alpn: tuple[str, ...], ca_dir: str | None = None
) -> ssl.SSLContext:
    """A client context; blocking (reads ``ca_file``, see :func:`read_ca_file`): call it in
    a thread. Raises ``SpecError`` for a ca_file that cannot be used. The same settings
    give the same (shared, never changed) context; a ca_file is read every time, so a
    changed file gives a new context."""
    cadata = read_ca_file(ca_file, ca_dir) if verify and ca_file else None
    key = (verify, bool(sni), cadata, tuple(alpn))
    with _contexts_lock:
        cached = _contexts.get(key)
        if cached is not None:
            _contexts.move_to_end(key)
            return cached
    context = _new_context(verify=verify, sni=sni, cadata=cadata, ca_file=ca_file, alpn=alpn)
    with _contexts_lock:
        _contexts[key] = context
        while len(_contexts) > CONTEXT_CACHE:
            _contexts.popitem(last=False)
    return context


def _new_context(
    *, verify: bool, sni: str, cadata: str | None, ca_file: str | None, alpn: tuple[str, ...]
) -> ssl.SSLContext:
    if verify:
        try:
            context = ssl.create_default_context(cadata=cadata)
        except (ssl.SSLError, ValueError):
            log.warning("ca_file_refused", ca_file=(ca_file or "")[:200], reason="bad PEM")
            raise SpecError("options.ca_file", CA_FILE_UNUSABLE) from None
        context.check_hostname = bool(sni)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def describe_tls(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, Any]:
    """Version, cipher, ALPN and leaf certificate of an established TLS session."""
    if ssl_object is None:
        return {}
    cipher = ssl_object.cipher()
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "tls_version": ssl_object.version() or "",
        "cipher": cipher[0] if cipher else "",
        "alpn": ssl_object.selected_alpn_protocol() or "",
        "certificate": summarize(der).to_data() if der else None,
    }


async def _handshake(
    host: str, port: int, sni: str, context: ssl.SSLContext, limits: Limits, timeout_s: float,
    data: dict[str, Any],
) -> asyncio.Transport:  # fmt: skip
    """Connect to ``host`` (a name or an address, checked by the target policy) and shake
    hands sending ``sni``; fills ``data`` with the address and times as it goes."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout_s):
        addresses = await resolve_checked(
            host, port, allow_private=limits.allow_private_targets,
            overrides=limits.host_overrides,
        )
        sock, address, connect_s = await connect(addresses)
        data["address"] = address.address
        data["connect_s"] = rounded(connect_s)
        handshake_started = now()
        try:
            transport, _protocol = await loop.create_connection(
                asyncio.Protocol,
                sock=sock,
                ssl=context,
                server_hostname=sni,  # "" sends no SNI
                ssl_handshake_timeout=timeout_s,
            )
        except BaseException:
            sock.close()
            raise
        data["handshake_s"] = rounded(now() - handshake_started)
    return transport


async def _trigger_checks(spec: Spec, limits: Limits, address: str, started: float) -> list[dict[str, Any]]:
    """The two handshakes of ``trigger_check``: the target's address under the neutral
    name, the neutral server under the target's name, each fitted into what is left of
    the task's time (``common.budget_left``). Unverified: the names are swapped on
    purpose, so no certificate can match them."""
    assert spec.trigger_host is not None
    context = await asyncio.to_thread(make_context, verify=False, sni="", ca_file=None, alpn=spec.alpn)
    out: list[dict[str, Any]] = []
    for swap, host, port, sni, share in (
        ("sni", address or spec.host, spec.port, spec.trigger_sni, 2),
        ("address", spec.trigger_host, spec.trigger_port, spec.sni, 1),
    ):
        url = join_host_port(host, port)
        left = budget_left(started)
        if left is not None and left / share < MIN_CHECK_S:
            out.append(skipped_check(swap, url, sni))
            continue
        timeout_s = spec.timeout_s if left is None else min(spec.timeout_s, left / share)
        got: dict[str, Any] = {}
        check: dict[str, Any] = {"swap": swap, "url": url, "sni": sni, "failure": ""}
        try:
            transport = await _handshake(host, port, sni, context, limits, timeout_s, got)
        except Exception as exc:
            outcome = failed(kind=NAME, target=host, exc=exc, started=now())
            check.update(failure=outcome.failure or "", failure_detail=outcome.failure_detail)
        else:
            transport.abort()
        check.update(address=got.get("address", ""), handshake_s=got.get("handshake_s"))
        out.append(check)
    return out


async def run(spec: Spec, limits: Limits) -> ProbeOutcome:
    started = now()
    data: dict[str, Any] = {
        "host": spec.host,
        "port": spec.port,
        "sni": spec.sni,
        "verify": spec.verify,
        "hostname_checked": spec.verify and bool(spec.sni),
    }
    try:
        context = await asyncio.to_thread(
            make_context, verify=spec.verify, sni=spec.sni, ca_file=spec.ca_file, alpn=spec.alpn,
            ca_dir=limits.ca_dir,
        )
    except (OSError, ssl.SSLError) as exc:  # the system's roots could not be loaded
        raise SpecError("options.ca_file", f"cannot load the CA certificates: {exc}") from exc
    outcome: ProbeOutcome | None = None
    try:
        transport = await _handshake(spec.host, spec.port, spec.sni, context, limits, spec.timeout_s, data)
    except Exception as exc:
        outcome = failed(kind=NAME, target=spec.target, exc=exc, started=started, data=data)
    else:
        try:
            data.update(describe_tls(transport.get_extra_info("ssl_object")))
        finally:
            transport.abort()
    if spec.trigger_host is not None:
        data["trigger_checks"] = await _trigger_checks(spec, limits, data.get("address", ""), started)
    if spec.locate and (outcome is None or outcome.failure != "target_forbidden"):
        data["locate"] = await locate_after(
            spec.host, spec.port, client_hello(spec.sni, spec.alpn), limits, started=started,
            timeout_s=spec.timeout_s, address=data.get("address", ""),
        )  # fmt: skip
    if outcome is not None:
        return replace(outcome, duration_s=round(now() - started, 6), data=data)
    return ProbeOutcome(
        kind=NAME, target=spec.target, failure=None, duration_s=round(now() - started, 6), data=data
    )
