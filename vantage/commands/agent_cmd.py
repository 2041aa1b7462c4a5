"""``vantage agent``: dial out to a coordinator and run the probes it assigns."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import signal
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent import asn
from common.defaults import DEFAULT_COORDINATOR
from common.hostport import split_host_port
from common.ids import is_agent_id, is_country, is_region, labels_problem
from vantage.config import (
    add_client_certificate_flags,
    client_certificate,
    load_toml,
    parse_key_values,
    pick,
    pick_bool,
    pick_int,
    pick_log_level,
    require_tls_off_loopback,
    secret,
    toml_table,
)
from vantage.errors import UsageError
from vantage.logs import configure_logging

HELP = """\
Connect to a coordinator (the agent always dials out, so it works behind NAT), say which
region it stands in, and run the probe tasks it is given. Results are kept in a durable
outbox under --state-dir until the coordinator acknowledges them, so a lost link or a
restart loses nothing. The agent id is kept in --state-dir and stays the same across
restarts.

The token comes from VANTAGE_AGENT_TOKEN (or the file in VANTAGE_AGENT_TOKEN_FILE).
Probes refuse loopback, private, link-local, CGNAT, multicast and reserved addresses
unless --allow-private-targets is given (labs and tests).

Every flag can also come from VANTAGE_<FLAG> (e.g. VANTAGE_REGION) or from [agent] in the
--config TOML file."""

def register(sub: Any) -> None:
    p = sub.add_parser(
        "agent", help="run a probe agent", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE", help="TOML file with an [agent] table")
    p.add_argument("--coordinator", metavar="HOST:PORT[,HOST:PORT...]",
                   help=f"the coordinator (default {DEFAULT_COORDINATOR}), or several of one fleet: "
                   "the agent starts at a random one and moves to the next when its session ends")
    p.add_argument("--coordinator-order", choices=("random", "listed"), default=None,
                   help="where in the --coordinator list the agent starts: a random one (default: "
                   "a fleet's agents spread over it), or the first (a preferred, nearby "
                   "coordinator; the others are for failover)")
    p.add_argument("--region", help="where this agent stands, e.g. de-fra (required)")
    p.add_argument("--id", dest="agent_id", help="agent id (default: generated once, kept in --state-dir)")
    p.add_argument("--country", help="ISO country code, e.g. DE")
    p.add_argument("--asn", type=int, help="the network's AS number")
    p.add_argument("--label", action="append", metavar="K=V", help="a label for selectors (repeatable)")
    p.add_argument("--concurrency", type=int, help="tasks run at once (default 8)")
    p.add_argument("--state-dir", help="outbox and id (default ./vantage-agent-state)")
    p.add_argument("--allow-private-targets", action="store_true", default=None,
                   help="let probes reach private and loopback addresses (labs, tests)")
    p.add_argument("--ca", help="PEM CA bundle to verify the coordinator's TLS certificate")
    p.add_argument("--tls", action="store_true", default=None,
                   help="use TLS, verifying the coordinator with the system's CA certificates")
    p.add_argument("--insecure", action="store_true", default=None,
                   help="allow plaintext to a coordinator that is not on this machine (a lab's "
                   "private network; the token travels in the clear)")
    add_client_certificate_flags(p)
    p.add_argument("--asn-file", metavar="FILE",
                   help="an offline IP-to-ASN table ('PREFIX ASN' per line, agent/asn.py): traceroute "
                        "hops carry the ASN of their address; never looked up on the network "
                        "(env VANTAGE_ASN_FILE)")
    p.add_argument("--ca-dir", metavar="DIR",
                   help="the directory a task's ca_file option may name files in (default: none, "
                   "so tasks with ca_file are refused; the coordinator's submitters must not "
                   "read other files of this host)")
    p.add_argument("--resolve", action="append", metavar="NAME=ADDR",
                   help="connect to ADDR when a probe target names NAME, keeping NAME for SNI "
                   "and Host (like curl --resolve; repeatable; labs and the demo use it)")
    p.add_argument("--max-bytes-per-task", metavar="SIZE",
                   help="the most one probe may download or upload, e.g. 20M (default 100M); a "
                   "task asking more is not run (agent_spec_error). No job can raise it")
    p.add_argument("--max-bytes-per-hour", metavar="SIZE",
                   help="the most this agent's probes may move in any hour, e.g. 5G (default: no "
                   "limit); past it a task is not run (agent_resource_error, never evidence "
                   "about a target)")
    p.add_argument("--outbox-max", type=int, help="results kept unacked before the oldest is dropped (default 10000)")
    p.add_argument("--log-level", default=None, help="debug, info, warning, error (default info)")
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace, toml: dict[str, Any]) -> Any:
    """The service's config from flags, the environment and ``toml`` (the --config table)."""
    from agent.probes.base import Limits
    from agent.session import AgentConfig

    region = pick(args.region, "VANTAGE_REGION", toml, "region", None)
    if not region:
        raise UsageError("--region: is required (e.g. --region de-fra)")
    region = str(region)
    if not is_region(region):
        raise UsageError(f"--region: {region!r} is malformed (letters, digits, - _ . :)")
    state_dir = Path(pick(args.state_dir, "VANTAGE_STATE_DIR", toml, "state_dir", "vantage-agent-state"))
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--state-dir: cannot create {state_dir}: {exc.strerror}") from None
    agent_id = pick(args.agent_id, "VANTAGE_AGENT_ID", toml, "id", None)
    id_file = state_dir / "agent_id"
    try:
        kept = id_file.read_text().strip() if id_file.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--state-dir: cannot read {id_file}: {getattr(exc, 'strerror', None) or exc}") from None
    if agent_id is None:
        agent_id = kept if kept else f"{region}-{uuid.uuid4().hex[:8]}"
    agent_id = str(agent_id)
    if not is_agent_id(agent_id):
        raise UsageError(f"--id: {agent_id!r} is malformed (letters, digits, - _ . :)")
    if kept != agent_id:
        try:
            id_file.write_text(agent_id + "\n")
        except OSError as exc:
            raise UsageError(f"--state-dir: cannot write {id_file}: {exc.strerror}") from None
    concurrency = pick_int(args.concurrency, "VANTAGE_CONCURRENCY", toml, "concurrency", 8,
                           field="--concurrency", minimum=1, maximum=256)
    asn = pick_int(args.asn, "VANTAGE_ASN", toml, "asn", 0, field="--asn", minimum=0, maximum=2**32 - 1)
    country = str(pick(args.country, "VANTAGE_COUNTRY", toml, "country", "")).upper()
    if country and not is_country(country):
        raise UsageError(f"--country: {country!r} is not a two-letter code")
    ca = pick(args.ca, "VANTAGE_CA", toml, "ca", None)
    if ca is not None and not Path(ca).is_file():
        raise UsageError(f"--ca: no such file {ca}")
    allow = pick_bool(args.allow_private_targets, "VANTAGE_ALLOW_PRIVATE_TARGETS", toml, "allow_private_targets")
    outbox_max = pick_int(args.outbox_max, "VANTAGE_OUTBOX_MAX", toml, "outbox_max", 10_000,
                          field="--outbox-max", minimum=1)
    per_task = _size(pick(args.max_bytes_per_task, "VANTAGE_MAX_BYTES_PER_TASK", toml, "max_bytes_per_task", None),
                     "--max-bytes-per-task", 100 * 1024 * 1024)
    per_hour = _size(pick(args.max_bytes_per_hour, "VANTAGE_MAX_BYTES_PER_HOUR", toml, "max_bytes_per_hour", None),
                     "--max-bytes-per-hour", 0)
    if per_hour and per_hour < per_task:
        raise UsageError(f"--max-bytes-per-hour: {per_hour} bytes is less than one task's "
                         f"--max-bytes-per-task ({per_task}); no download could run")
    labels = parse_key_values(args.label, "--label") or toml_table(toml, "labels")
    problem = labels_problem(labels)
    if problem is not None:
        raise UsageError(f"--label: {problem}")
    ca_dir_value = pick(args.ca_dir, "VANTAGE_CA_DIR", toml, "ca_dir", None)
    ca_dir = None
    if ca_dir_value:
        ca_dir = Path(str(ca_dir_value))
        if not ca_dir.is_dir():
            raise UsageError(f"--ca-dir: {ca_dir} is not a directory")
        ca_dir = ca_dir.resolve()
    asn_file = pick(args.asn_file, "VANTAGE_ASN_FILE", toml, "asn_file", None)
    asn_lookup = load_asn_file(str(asn_file), "--asn-file") if asn_file else None
    overrides = {}
    for name, addr in (parse_key_values(args.resolve, "--resolve") or toml_table(toml, "resolve")).items():
        try:
            ipaddress.ip_address(addr)
        except ValueError:
            raise UsageError(f"--resolve: {addr!r} for {name} is not an IP address") from None
        overrides[name.lower()] = addr
    order = pick(args.coordinator_order, "VANTAGE_COORDINATOR_ORDER", toml, "coordinator_order", "random")
    if order not in ("random", "listed"):
        raise UsageError(f"--coordinator-order: {order!r} is not random or listed")
    coordinators = coordinator_list(
        pick(args.coordinator, "VANTAGE_COORDINATOR", toml, "coordinator", DEFAULT_COORDINATOR))
    tls = pick_bool(args.tls, "VANTAGE_TLS", toml, "tls")
    pair = client_certificate(args.cert, args.key, toml)
    if pair is not None and not (tls or ca is not None):
        raise UsageError("--cert: a client certificate is for TLS; give --ca or --tls too")
    require_tls_off_loopback(
        coordinators, tls=tls or ca is not None,
        insecure=pick_bool(args.insecure, "VANTAGE_INSECURE", toml, "insecure"), flag="--coordinator",
    )
    return AgentConfig(
        coordinator=",".join(coordinators),
        coordinator_order=order,
        region=region,
        agent_id=agent_id,
        state_dir=state_dir,
        country=country,
        asn=asn,
        labels=labels,
        concurrency=concurrency,
        limits=Limits(allow_private_targets=allow, host_overrides=overrides, max_bytes_cap=per_task,
                      ca_dir=str(ca_dir) if ca_dir else None, asn_lookup=asn_lookup),
        token=secret("VANTAGE_AGENT_TOKEN"),
        ca_file=Path(ca) if ca else None,
        tls=tls,
        client_cert=pair,
        outbox_max=outbox_max,
        max_bytes_per_hour=per_hour,
    )


MAX_SIZE = 1024**4  # 1 TiB: past any budget an operator means


def _size(value: Any, flag: str, default: int) -> int:
    """A byte size flag (``20M``, ``5G``, ``1234``; powers of 1024), checked."""
    from common.specs.options import parse_size

    if value is None:
        return default
    text = str(value)
    try:
        n = parse_size(text)
    except ValueError:
        raise UsageError(f"{flag}: {text[:40]!r} is not a size (e.g. 20M, 5G)") from None
    if not 1 <= n <= MAX_SIZE:
        raise UsageError(f"{flag}: must be between 1 byte and 1T, got {text[:40]!r}")
    return n


MAX_COORDINATORS = 16


def load_asn_file(path: str, flag: str) -> Callable[[str], int | None]:
    """The lookup of an ``--asn-file`` table, or UsageError naming the flag, file and line."""
    try:
        return asn.load(Path(path)).lookup
    except asn.AsnFileError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def coordinator_list(value: object) -> list[str]:
    """``--coordinator`` as a list of HOST:PORT: comma-separated (flag, environment) or a
    list (the --config file). Raises UsageError naming the flag."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise UsageError("--coordinator: the coordinator setting in the --config file must be "
                         "HOST:PORT or a list of them")  # fmt: skip
    if not items or any(not v for v in items):
        raise UsageError(f"--coordinator: {value!r} has an empty entry; give HOST:PORT[,HOST:PORT...]")
    if len(items) > MAX_COORDINATORS:
        raise UsageError(f"--coordinator: at most {MAX_COORDINATORS} coordinators, got {len(items)}")
    if len(set(items)) != len(items):
        raise UsageError(f"--coordinator: {value!r} names a coordinator twice")
    for item in items:
        try:
            split_host_port(item, field="--coordinator", min_port=1)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return items


def run(args: argparse.Namespace) -> int:
    toml = load_toml(args.config, "agent")
    configure_logging(pick_log_level(args.log_level, toml))
    config = build_config(args, toml)
    from agent.session import Agent

    async def main() -> None:
        agent = Agent(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.shutdown)
        await agent.run()

    asyncio.run(main())
    return 0
