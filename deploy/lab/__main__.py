"""``python -m deploy.lab up|down``: run the lab until Ctrl-C, or clean up leftovers.

    sudo python -m deploy.lab up [--regions ru,de,us] [--agents-per-region 2]
        [--throttle ru:twitter[:130000]]... [--break ru:facebook[:reset|drop|unreachable|block_page|dns]]...
        [--down kremlin]... [--pace cdn[:40000]]... [--police ru:video[:1000000[:1000000]]]...
        [--police-path ru:twitter[:130000[:16000]]]...
        [--throttle-upload us:photos[:1000000]]... [--congest br[:3000000]]...
        [--expose-metrics 127.0.0.1:9477]
        [--no-vantage]
        [--coordinator-arg=--window=60s]...
    sudo python -m deploy.lab down [--prefix vlab-]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
from types import FrameType

from deploy.lab.lab import (
    COORDINATOR_ADDR,
    DEFAULT_PACE_BYTES,
    DEFAULT_PREFIX_ROOT,
    DEFAULT_REGIONS,
    DEFAULT_TARGETS,
    METRICS_PORT,
    TWITTER_2021_RATE_BIT,
    Lab,
    LabError,
    cleanup_prefix,
)


def _split(
    value: str, field: str, n_min: int, n_max: int, form: str = "REGION:TARGET[:VALUE]"
) -> list[str]:
    parts = value.split(":")
    if not n_min <= len(parts) <= n_max or not all(parts):
        raise LabError(f"{field}: {value!r} must be {form}")
    return parts


def _int(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise LabError(f"{field}: {value!r} is not an integer") from None


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _serve_until_stopped(lab: Lab, expose: str | None) -> None:
    """Forward ``expose`` (root namespace) to the coordinator's /metrics in the core one."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = None
    if expose:
        host, _, port = expose.rpartition(":")

        async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            # the upstream socket is created on the core-namespace thread, so it lives there
            sock = lab.in_core(socket.socket)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (COORDINATOR_ADDR, METRICS_PORT))
            except OSError:
                sock.close()
                w.close()
                return
            ur, uw = await asyncio.open_connection(sock=sock)
            await asyncio.gather(_pipe(r, uw), _pipe(ur, w))

        server = await asyncio.start_server(on_client, host or "127.0.0.1", int(port))
        bound = server.sockets[0].getsockname()
        print(f"metrics exposed in the root namespace: http://{bound[0]}:{bound[1]}/metrics")
    print("running; Ctrl-C to tear down", flush=True)
    await stop.wait()
    if server is not None:
        server.close()


def cmd_up(args: argparse.Namespace) -> int:
    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    lab = Lab(
        regions=[r for r in args.regions.split(",") if r],
        agents_per_region=args.agents_per_region,
        targets=[t for t in args.targets.split(",") if t],
        run_vantage=not args.no_vantage,
        coordinator_args=args.coordinator_arg,
        agent_args=args.agent_arg,
        keep_dir=args.keep_dir,
        line_rate_bit=args.line_rate or None,
        uplink_rate_bit=(args.uplink_rate if args.uplink_rate is not None else args.line_rate) or None,
    )
    try:
        lab.start()
        for spec in args.throttle:
            region, target, *rate = _split(spec, "--throttle", 2, 3)
            lab.shape(region, target, _int(rate[0], "--throttle") if rate else TWITTER_2021_RATE_BIT)
        for spec in args.police:
            region, target, *more = _split(spec, "--police", 2, 4, "REGION:TARGET[:BIT/S[:BURST]]")
            lab.police(
                region, target,
                _int(more[0], "--police") if more else 1_000_000,
                _int(more[1], "--police") if len(more) > 1 else 1_000_000,
            )  # fmt: skip
        for spec in args.police_path:
            region, target, *more = _split(spec, "--police-path", 2, 4, "REGION:TARGET[:BIT/S[:BURST]]")
            lab.police_path(
                region, target,
                _int(more[0], "--police-path") if more else TWITTER_2021_RATE_BIT,
                _int(more[1], "--police-path") if len(more) > 1 else 16_000,
            )  # fmt: skip
        for spec in args.throttle_upload:
            region, target, *rate = _split(spec, "--throttle-upload", 2, 3)
            lab.shape_upload(region, target, _int(rate[0], "--throttle-upload") if rate else 1_000_000)
        for spec in args.congest:
            region, *rate = _split(spec, "--congest", 1, 2, "REGION[:BIT/S]")
            lab.congest(region, _int(rate[0], "--congest") if rate else 3_000_000)
        for spec in args.break_:
            region, target, *how = _split(spec, "--break", 2, 3)
            lab.break_target(region, target, how[0] if how else "reset")
        for target in args.down:
            lab.take_down(target)
        for region in args.cut:
            lab.cut(region)
        for spec in args.pace:
            target, *rate = _split(spec, "--pace", 1, 2, "TARGET[:BYTES/S]")
            lab.pace(target, _int(rate[0], "--pace") if rate else DEFAULT_PACE_BYTES)
        print(lab.describe())
        print(
            f"client: sudo ip netns exec {lab.core_ns} env VANTAGE_API_TOKEN={lab.api_token} "
            f"vantage submit ... --coordinator {lab.coordinator} --insecure"
        )
        print(f"tc:     sudo tc -n {lab.core_ns} -s class show dev vh1")
        asyncio.run(_serve_until_stopped(lab, args.expose_metrics))
    except KeyboardInterrupt:
        pass
    finally:
        print("tearing down ...", file=sys.stderr)
        lab.close()
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    removed = cleanup_prefix(args.prefix)
    print(f"removed {len(removed)} namespaces" + (f": {' '.join(removed)}" if removed else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the lab and run it until Ctrl-C")
    up.add_argument("--regions", default=",".join(DEFAULT_REGIONS))
    up.add_argument("--agents-per-region", type=int, default=2)
    up.add_argument("--targets", default=",".join(DEFAULT_TARGETS))
    up.add_argument("--throttle", action="append", default=[], metavar="REGION:TARGET[:BIT/S]")
    up.add_argument("--police", action="append", default=[], metavar="REGION:TARGET[:BIT/S[:BURST]]",
                    help="a policer: BURST bytes (default 1000000) at line speed, then BIT/S "
                         "(default 1000000), refilled while idle (tc tbf)")  # fmt: skip
    up.add_argument("--police-path", action="append", default=[], metavar="REGION:TARGET[:BIT/S[:BURST]]",
                    help="a policer on the path: the censor on tr1 drops the target's packets to "
                         "the region beyond BIT/S (default 130000), BURST bytes (default 16000) "
                         "(nft limit rate over ... drop)")  # fmt: skip
    up.add_argument("--throttle-upload", action="append", default=[],
                    metavar="REGION:TARGET[:BIT/S]",
                    help="uploads from the region to the target at BIT/S (default 1000000)")  # fmt: skip
    up.add_argument("--congest", action="append", default=[], metavar="REGION[:BIT/S]",
                    help="the region's whole lines, both ways, at BIT/S (default 3000000): "
                         "every target slow alike, not a throttle")  # fmt: skip
    up.add_argument("--break", dest="break_", action="append", default=[],
                    metavar="REGION:TARGET[:reset|drop|unreachable|block_page|dns]",
                    help="make the target fail from the region: a TCP reset of the first data "
                         "segment (default) or a drop of its TCP, both by the censor on tr1 (hop 2), "
                         "no route, the ISP's block page with status 200 (an nft "
                         "DNAT of port 80 to the lab's block-page server), or a lying resolver "
                         "(198.19.0.3 answers TARGET.lab with the block-page server)")  # fmt: skip
    up.add_argument("--down", action="append", default=[], metavar="TARGET")
    up.add_argument("--cut", action="append", default=[], metavar="REGION",
                    help="cut the region's hosts off every target (their provider is down)")
    up.add_argument("--pace", action="append", default=[], metavar="TARGET[:BYTES/S]",
                    help="the target's server writes /big.bin slowly to every region "
                         f"(default {DEFAULT_PACE_BYTES} B/s): a degraded target, not a throttle")
    up.add_argument("--expose-metrics", default="127.0.0.1:0", metavar="HOST:PORT",
                    help="forward this root-namespace address to /metrics ('' to disable)")  # fmt: skip
    up.add_argument("--no-vantage", action="store_true", help="network and targets only")
    up.add_argument("--coordinator-arg", action="append", default=[])
    up.add_argument("--agent-arg", action="append", default=[])
    up.add_argument("--keep-dir", action="store_true", help="keep logs and the database")
    up.add_argument("--line-rate", type=int, default=20_000_000, metavar="BIT/S",
                    help="every agent host's line, like a VPS uplink (default 20000000; 0: none)")
    up.add_argument("--uplink-rate", type=int, default=None, metavar="BIT/S",
                    help="the same line upstream, for uploads (default: --line-rate; 0: none)")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="remove leftover lab namespaces by prefix")
    down.add_argument("--prefix", default=DEFAULT_PREFIX_ROOT)
    down.set_defaults(func=cmd_down)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except LabError as exc:
        print(f"lab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
