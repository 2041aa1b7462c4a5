"""What a coordinator checks before it serves, so that a setting it cannot use is one line
naming the flag (``StartupError``), not a traceback: the TLS pair, that an address can be
bound, and the address the rest of a fleet reaches it at."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.hostport import split_host_port


class StartupError(Exception):
    """The coordinator could not start; the message names the setting to fix."""


def read_tls_pair(cert: Path | None, key: Path | None) -> tuple[bytes, bytes]:
    """(key PEM, certificate chain PEM), checked to be a usable pair: gRPC would only say
    "Failed to bind" about a bad one."""
    import ssl

    assert cert is not None and key is not None
    try:
        pair = (key.read_bytes(), cert.read_bytes())
    except OSError as exc:
        raise StartupError(f"--tls-cert/--tls-key: cannot read {exc.filename}: {exc.strerror}") from exc
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (ssl.SSLError, ValueError) as exc:
        raise StartupError(
            f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate chain and its private key ({exc})"
        ) from exc
    return pair


def advertised(listen: str, port: int) -> str:
    """Where the fleet reaches a coordinator listening on ``listen`` (bound to ``port``):
    its host, or this host's name when it listens on every address."""
    import socket

    from common.hostport import join_host_port

    host, _ = split_host_port(listen)
    bare = host[1:-1] if host.startswith("[") else host
    if bare in ("", "0.0.0.0", "::"):
        bare = socket.gethostname()
    return join_host_port(bare, port)


def check_bindable(address: str, flag: str) -> None:
    """Bind ``address`` once with a plain socket, so a port in use or an address this host
    does not have is reported with the system's reason (gRPC reports neither well). Port 0
    (any free port) is not checked."""
    import socket

    host, port = split_host_port(address)
    if port == 0:
        return
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        infos = socket.getaddrinfo(bare or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"{flag} {address}: {exc.strerror}") from exc
    family, _type, _proto, _canon, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(sockaddr)
        except OSError as exc:
            raise StartupError(f"{flag} {address}: {exc.strerror}") from exc


async def serve_metrics(registry: CollectorRegistry, listen: str) -> tuple[web.AppRunner, int]:
    """``/metrics`` (and an index at ``/``) on ``listen``; the runner and the bound port."""

    async def metrics(_: web.Request) -> web.Response:
        # Scrapes read the last evaluation; they never cause one (the server's evaluate loop).
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def index(_: web.Request) -> web.Response:
        return web.Response(text="vantage coordinator: metrics at /metrics\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = split_host_port(listen)
    try:
        check_bindable(listen, "--metrics-listen")
        await web.TCPSite(runner, host, port).start()
    except StartupError:
        await runner.cleanup()
        raise
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(f"--metrics-listen {listen}: {exc.strerror or exc}") from exc
    return runner, runner.addresses[0][1] if runner.addresses else port
