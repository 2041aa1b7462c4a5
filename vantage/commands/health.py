"""``vantage health``: ask a coordinator's standard gRPC health service whether it serves.

Exit 0 when the service answers SERVING; exit 1 with one line saying why otherwise
(unreachable, no answer in time, unknown service, NOT_SERVING). The container image's
HEALTHCHECK and operators' scripts use it, so it never prints a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.defaults import DEFAULT_COORDINATOR
from common.hostport import split_host_port
from vantage.config import add_client_certificate_flags, client_certificate
from vantage.errors import UsageError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "health",
        help="check a coordinator through the gRPC health service (exit 0 when SERVING)",
        description=(
            "Call grpc.health.v1.Health/Check on a coordinator. Exit 0 when the service is "
            "SERVING, 1 otherwise with one line saying why."
        ),
    )
    parser.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        default=None,
        help=f"coordinator address (default: $VANTAGE_COORDINATOR or {DEFAULT_COORDINATOR})",
    )
    parser.add_argument(
        "--service",
        metavar="NAME",
        default="",
        help='health service name: "" for the whole server (default) or vantage.v1.JobService',
    )
    parser.add_argument(
        "--ca",
        metavar="FILE",
        default=None,
        type=Path,
        help="PEM CA bundle: connect with TLS and verify the coordinator against it",
    )
    parser.add_argument(
        "--server-name",
        metavar="NAME",
        default=None,
        help="with --ca: the name the certificate must carry when it differs from HOST",
    )
    add_client_certificate_flags(parser)
    parser.add_argument(
        "--timeout",
        metavar="S",
        type=float,
        default=3.0,
        help="give up after S seconds (default 3)",
    )
    parser.set_defaults(func=run)


def _address(args: argparse.Namespace) -> str:
    address = args.coordinator or os.environ.get("VANTAGE_COORDINATOR") or DEFAULT_COORDINATOR
    try:
        split_host_port(address, field="--coordinator", min_port=1)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return str(address)


def _channel(address: str, args: argparse.Namespace) -> grpc.Channel:
    pair = client_certificate(args.cert, args.key)
    if args.ca is None:
        if args.server_name is not None:
            raise UsageError("--server-name: only meaningful with --ca (TLS)")
        if pair is not None:
            raise UsageError("--cert: only meaningful with --ca (TLS)")
        return grpc.insecure_channel(address)
    try:
        root = args.ca.read_bytes()
    except OSError as exc:
        raise UsageError(f"--ca: cannot read {str(args.ca)!r}: {exc.strerror}") from None
    options: list[tuple[str, Any]] = []
    if args.server_name:
        options.append(("grpc.ssl_target_name_override", args.server_name))
    credentials = grpc.ssl_channel_credentials(
        root_certificates=root,
        private_key=pair[1].read_bytes() if pair else None,
        certificate_chain=pair[0].read_bytes() if pair else None,
    )
    return grpc.secure_channel(address, credentials, options=options)


def check(address: str, args: argparse.Namespace) -> tuple[bool, str]:
    """One Check call: (serving, one line describing the outcome)."""
    service_shown = repr(args.service)
    with _channel(address, args) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout
            )
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return False, f"{address}: no answer within {args.timeout:g}s"
            if code == grpc.StatusCode.NOT_FOUND:
                return False, f"{address}: service {service_shown} is unknown to the server"
            if code == grpc.StatusCode.UNAVAILABLE:
                return False, f"{address}: unreachable ({_one_line(detail)})"
            name = code.name if code is not None else "error"
            return False, f"{address}: health check failed: {name} {_one_line(detail)}".rstrip()
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
    if response.status == health_pb2.HealthCheckResponse.SERVING:
        return True, f"{address}: service {service_shown} SERVING"
    return False, f"{address}: service {service_shown} is {status}"


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        raise UsageError(f"--timeout: must be a positive number of seconds, got {args.timeout:g}")
    address = _address(args)
    serving, line = check(address, args)
    print(f"vantage health: {line}", file=sys.stdout if serving else sys.stderr)
    return 0 if serving else 1
