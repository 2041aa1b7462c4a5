"""``vantage coordinator``: the job API, agent channel and /metrics in one process."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import Any

from common.defaults import DEFAULT_LISTEN, DEFAULT_METRICS_LISTEN
from common.hostport import split_host_port
from vantage.config import (
    load_toml,
    parse_duration,
    pick,
    pick_bool,
    pick_int,
    pick_log_level,
    secret,
)
from vantage.errors import UsageError
from vantage.logs import configure_logging

HELP = """\
Serve the gRPC job API (JobService) and agent channel (AgentService), the standard gRPC
health service and server reflection on --listen, and Prometheus metrics on
--metrics-listen (path /metrics). State lives in the SQLite file --db: jobs survive a
restart, periodic jobs go on, and the analysis window is read back from it so verdicts
stand right after a restart. --retain bounds how long measurements are kept.

Security: agents present VANTAGE_AGENT_TOKEN and API callers VANTAGE_API_TOKEN (or the
files named by VANTAGE_AGENT_TOKEN_FILE / VANTAGE_API_TOKEN_FILE); the coordinator reads
the expected tokens from the same variables. With no token set, only loopback clients are
served. A non-loopback --listen needs --tls-cert/--tls-key, or --insecure for a lab.

Canaries (--canary URL, repeatable) are small pages no censor blocks; every agent fetches
them every --canary-every, and a failure elsewhere counts as evidence of blocking only
when the same agent reached a canary (or a throughput job's control) around it. Without
them a region whose own network is down can read "blocked" (docs/detection.md).

A fleet: several coordinators given one PostgreSQL --db share the work. The one that holds
the fleet's lease schedules (rounds, dispatch, sweeps, the analysis, the verdict series on
/metrics); the others relay agents and API calls to it, and one of them takes over within
about 10 s when it dies. Give agents every coordinator's address (--coordinator A,B,C)
and each coordinator the address the others reach it at (--advertise).

Every flag can also come from VANTAGE_<FLAG> (e.g. VANTAGE_DB) or from [coordinator] in
the --config TOML file."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "coordinator", help="run the coordinator", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="TOML file with a [coordinator] table")
    p.add_argument("--listen", help=f"gRPC address (default {DEFAULT_LISTEN})")
    p.add_argument("--metrics-listen", help=f"Prometheus /metrics address (default {DEFAULT_METRICS_LISTEN})")
    p.add_argument("--db", help="SQLite database file (default vantage.db), or "
                   "postgresql://user@host:port/dbname for PostgreSQL (a fleet). Keep a password "
                   "off the command line, where any local user can read it with ps: use "
                   "PGPASSFILE or PGPASSWORD (libpq reads them), --db-file, VANTAGE_DB or "
                   "VANTAGE_DB_FILE")
    p.add_argument("--db-file", metavar="FILE",
                   help="read the --db value (e.g. a postgresql:// URL with its password) from "
                   "the first line of FILE; keep it mode 0600")
    p.add_argument("--advertise", metavar="HOST:PORT",
                   help="in a fleet: the address the other coordinators reach this one at "
                   "(default: the --listen host, or this host's name when that is 0.0.0.0/[::], "
                   "with the bound port)")
    p.add_argument("--tls-cert", help="PEM certificate chain for the gRPC listener")
    p.add_argument("--tls-key", help="PEM private key for the gRPC listener")
    p.add_argument("--client-ca", metavar="FILE",
                   help="mutual TLS: every client must present a certificate signed by this CA "
                   "(PEM); an agent's certificate names its id (subject CN) and may stand in for "
                   "its token. Needs --tls-cert/--tls-key; one coordinator only, not a fleet")
    p.add_argument("--insecure", action="store_true", default=None,
                   help="allow a non-loopback listener without TLS (labs only)")
    p.add_argument("--window", help="analysis window: verdicts use measurements this recent (default 60s)")
    p.add_argument("--group-by", choices=("region", "asn"), default=None,
                   help="what verdicts compare: agents' regions (default) or their ASNs")
    p.add_argument("--max-targets", type=int, help="targets tracked by the analysis (default 500)")
    p.add_argument("--reassign-after", help="wait this long for a lost agent before its tasks "
                   "go to another agent (default 10s)")
    p.add_argument("--min-interval", help="smallest interval of a periodic job (default 5s)")
    p.add_argument("--forget-agents-after", metavar="DURATION",
                   help="an agent not seen for this long leaves `vantage agents` and the metrics "
                   "(its region too, once it has no agent left; default 7d, at least 1h)")
    p.add_argument("--max-shared-agents", type=int, metavar="N",
                   help="agents that may connect with the shared agent token (VANTAGE_AGENT_TOKEN), "
                   "connected or not; past it a new id is refused (default 1000; enrolled agents "
                   "do not count)")
    p.add_argument("--max-shared-regions", type=int, metavar="N",
                   help="regions the shared-token agents may name between them (default 64)")
    p.add_argument("--canary", action="append", metavar="URL",
                   help="a canary: a small page no censor blocks, probed (http) from every agent "
                   "so that a region that reaches nothing reads unreachable, not blocked "
                   "(repeatable, up to 8; VANTAGE_CANARY takes them space-separated)")
    p.add_argument("--canary-every", help="interval of the canary probes (default 10s)")
    p.add_argument("--block-pages", action="append", metavar="FILE",
                   help="a block-page fingerprint file (TOML, the format of the shipped "
                   "coordinator/analysis/blockpages.toml; docs/detection.md) whose entries are "
                   "added to the shipped ones; an entry of the same name replaces a shipped one "
                   "(repeatable; VANTAGE_BLOCK_PAGES takes them space-separated)")
    p.add_argument("--retain", metavar="DURATION",
                   help="drop measurements, finished tasks and finished jobs older than this "
                   "(e.g. 30d; checked every 10 minutes; default: keep everything)")
    p.add_argument("--log-level", default=None, help="debug, info, warning, error (default info)")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace, toml: dict[str, Any]) -> Any:
    """The service's config from flags, the environment and ``toml`` (the --config table)."""
    from coordinator.analysis import AnalysisConfig
    from coordinator.core import CoordinatorConfig
    from coordinator.registry import SharedLimits
    from coordinator.server import ServerConfig
    from coordinator.validation import JobLimits

    listen = str(pick(args.listen, "VANTAGE_LISTEN", toml, "listen", DEFAULT_LISTEN))
    metrics = str(pick(args.metrics_listen, "VANTAGE_METRICS_LISTEN", toml, "metrics_listen", DEFAULT_METRICS_LISTEN))
    for name, value in (("--listen", listen), ("--metrics-listen", metrics)):
        try:
            split_host_port(value, field=name)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    advertise = pick(args.advertise, "VANTAGE_ADVERTISE", toml, "advertise", None)
    if advertise is not None:
        try:
            host, _port = split_host_port(str(advertise), field="--advertise", min_port=1)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if host.strip("[]") in ("", "0.0.0.0", "::"):
            raise UsageError(f"--advertise {advertise}: must be an address the other coordinators "
                             "can reach, not a wildcard")  # fmt: skip
        advertise = str(advertise)
    cert = pick(args.tls_cert, "VANTAGE_TLS_CERT", toml, "tls_cert", None)
    key = pick(args.tls_key, "VANTAGE_TLS_KEY", toml, "tls_key", None)
    if (cert is None) != (key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for name, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{name}: no such file {path}")
    client_ca = pick(args.client_ca, "VANTAGE_CLIENT_CA", toml, "client_ca", None)
    if client_ca is not None and cert is None:
        raise UsageError("--client-ca: needs --tls-cert and --tls-key (mutual TLS is TLS first)")
    if client_ca is not None and not Path(client_ca).is_file():
        raise UsageError(f"--client-ca: no such file {client_ca}")
    insecure = pick_bool(args.insecure, "VANTAGE_INSECURE", toml, "insecure")
    window = parse_duration(str(pick(args.window, "VANTAGE_WINDOW", toml, "window", "60s")), "--window")
    if window <= 0:
        raise UsageError("--window: must be longer than 0s")
    group_by = pick(args.group_by, "VANTAGE_GROUP_BY", toml, "group_by", "region")
    if group_by not in ("region", "asn"):
        raise UsageError(f"--group-by: {group_by!r} is not region or asn")
    max_targets = pick_int(args.max_targets, "VANTAGE_MAX_TARGETS", toml, "max_targets", 500,
                           field="--max-targets", minimum=1)
    reassign = parse_duration(str(pick(args.reassign_after, "VANTAGE_REASSIGN_AFTER", toml, "reassign_after", "10s")), "--reassign-after")
    min_interval = parse_duration(str(pick(args.min_interval, "VANTAGE_MIN_INTERVAL", toml, "min_interval", "5s")), "--min-interval")
    forget = parse_duration(str(pick(args.forget_agents_after, "VANTAGE_FORGET_AGENTS_AFTER", toml, "forget_agents_after", "7d")), "--forget-agents-after")
    if forget < 3600:
        raise UsageError("--forget-agents-after: at least 1h (agents that are merely lost for a "
                         "while must keep their records)")
    shared = SharedLimits(
        max_agents=pick_int(args.max_shared_agents, "VANTAGE_MAX_SHARED_AGENTS", toml, "max_shared_agents",
                            1000, field="--max-shared-agents", minimum=1),
        max_regions=pick_int(args.max_shared_regions, "VANTAGE_MAX_SHARED_REGIONS", toml, "max_shared_regions",
                             64, field="--max-shared-regions", minimum=1),
    )  # fmt: skip
    canary = _canary(args, toml)
    block_pages = _block_pages(args, toml)
    retain_text = pick(args.retain, "VANTAGE_RETAIN", toml, "retain", None)
    retain = parse_duration(str(retain_text), "--retain") if retain_text is not None else 0.0
    if retain_text is not None and retain < 3600:
        raise UsageError(f"--retain: at least 1h, got {retain_text!r} (a shorter one would "
                         "drop results still in the analysis window or being watched)")
    try:
        return ServerConfig(
            listen=listen,
            metrics_listen=metrics,
            db=_db(args, toml),
            tls_cert=Path(cert) if cert else None,
            tls_key=Path(key) if key else None,
            client_ca=Path(client_ca) if client_ca else None,
            insecure=insecure,
            agent_token=secret("VANTAGE_AGENT_TOKEN"),
            api_token=secret("VANTAGE_API_TOKEN"),
            core=CoordinatorConfig(
                group_by=group_by,
                reassign_after_s=reassign,
                forget_agents_after_s=forget,
                shared_agents=shared,
                job_limits=JobLimits(min_interval_s=min_interval),
                block_pages=block_pages,
            ),
            analysis=AnalysisConfig(window_s=window, max_targets=max_targets),
            canary=canary,
            retain_s=retain,
            advertise=advertise,
        )
    except ValueError as exc:  # a config dataclass refused a value the checks above let through
        raise UsageError(str(exc)) from None


def _db(args: argparse.Namespace, toml: dict[str, Any]) -> str:
    """--db, --db-file, VANTAGE_DB (or the file VANTAGE_DB_FILE names), the --config file's
    ``db``, then vantage.db. The file forms keep a password out of argv and the unit."""
    if args.db is not None and args.db_file is not None:
        raise UsageError("--db-file: give --db or --db-file, not both")
    if args.db is not None:
        return str(args.db)
    if args.db_file is not None:
        try:
            text = Path(args.db_file).read_text().strip()
        except OSError as exc:
            raise UsageError(f"--db-file: cannot read {args.db_file}: {exc.strerror}") from None
        line = text.splitlines()[0].strip() if text else ""
        if not line:
            raise UsageError(f"--db-file: {args.db_file} is empty")
        return line
    from_env = secret("VANTAGE_DB")
    if from_env:
        return from_env
    return str(pick(None, "VANTAGE_DB", toml, "db", "vantage.db"))


def _block_pages(args: argparse.Namespace, toml: dict[str, Any]) -> Any:
    """The shipped block-page fingerprints and the operator's files' (--block-pages /
    VANTAGE_BLOCK_PAGES / ``block_pages``, a list in the TOML)."""
    from coordinator.analysis.blockpage import FingerprintError, load

    files = pick(args.block_pages, "VANTAGE_BLOCK_PAGES", toml, "block_pages", [])
    if isinstance(files, str):
        files = files.split()
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise UsageError("--block-pages: the block_pages setting in the --config file must be a list of files")
    try:
        return load(files)
    except FingerprintError as exc:
        raise UsageError(f"--block-pages: {exc}") from None


def _canary(args: argparse.Namespace, toml: dict[str, Any]) -> Any:
    """The canary job's spec from --canary / VANTAGE_CANARY / ``canary`` (a list in the
    TOML), or None."""
    from coordinator.canary import CanaryError, canary_spec

    urls = pick(args.canary, "VANTAGE_CANARY", toml, "canary", [])
    if isinstance(urls, str):
        urls = urls.split()
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise UsageError("--canary: the canary setting in the --config file must be a list of URLs")
    every = parse_duration(
        str(pick(args.canary_every, "VANTAGE_CANARY_EVERY", toml, "canary_every", "10s")),
        "--canary-every",
    )
    try:
        return canary_spec(urls, every)
    except CanaryError as exc:
        raise UsageError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    toml = load_toml(args.config, "coordinator")
    configure_logging(pick_log_level(args.log_level, toml))
    config = build_config(args, toml)
    import structlog

    from coordinator.server import CoordinatorServer
    from coordinator.startup import StartupError

    log = structlog.get_logger("vantage.coordinator")

    async def main() -> None:
        stopping = False
        restarts = 0
        while True:
            server = CoordinatorServer(config, restarted=restarts > 0)
            restarts += 1

            def stop(server: Any = server) -> None:
                nonlocal stopping
                stopping = True
                server.shutdown()

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop)
            await server.run()
            if server.lost_lease is None or stopping:
                return
            # Another coordinator of the fleet took the lease (this one could not renew it
            # in time): start again from scratch, as one that relays to it.
            log.warning("coordinator_restarting", reason=server.lost_lease)

    # Only what stops the coordinator from starting (a port in use, a database it cannot
    # open, a certificate it cannot read) is a one-line error. Anything that goes wrong
    # once it serves is a bug: it propagates with its traceback.
    try:
        asyncio.run(main())
    except StartupError as exc:
        raise UsageError(f"cannot start: {exc}") from None
    return 0
