"""Client commands: submit, jobs, job, results, agents, cancel, verdicts; and for the
admin role agents add/revoke/enrolled, tokens add/list/revoke, audit.

Tables for people, ``--json`` for scripts (field names as in the protos). The coordinator
comes from --coordinator or VANTAGE_COORDINATOR (default 127.0.0.1:50051), the token from
VANTAGE_API_TOKEN (or VANTAGE_API_TOKEN_FILE), the CA from --ca or VANTAGE_CA.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

from common.defaults import DEFAULT_COORDINATOR
from protos.results import failure_name, task_result_to_dict
from vantage.config import (
    client_certificate,
    parse_duration,
    parse_key_values,
    pick,
    pick_bool,
    require_tls_off_loopback,
    secret,
)
from vantage.errors import UsageError
from vantage.terminal import clean

STATE_NAMES = {0: "unspecified", 1: "pending", 2: "running", 3: "done", 4: "cancelled", 5: "failed"}


def _common(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """The connection options. ``sub``: a subcommand's (``vantage agents add``), which
    leave what was given before the subcommand (``vantage agents --coordinator X add``)
    as it is when not given again."""
    unset = argparse.SUPPRESS if sub else None
    p.add_argument("--coordinator", default=unset,
                   help=f"HOST:PORT (default $VANTAGE_COORDINATOR or {DEFAULT_COORDINATOR})")
    p.add_argument("--ca", default=unset, help="PEM CA bundle: use TLS and verify the coordinator with it")
    p.add_argument("--tls", action="store_true", default=unset, help="use TLS with the system's CA certificates")
    p.add_argument("--insecure", action="store_true", default=unset,
                   help="allow plaintext to a coordinator that is not on this machine (a lab's "
                   "private network; the API token travels in the clear)")
    p.add_argument("--cert", metavar="FILE", default=unset, help="PEM client certificate, for a coordinator "
                   "with mutual TLS (--client-ca)")
    p.add_argument("--key", metavar="FILE", default=unset, help="the PEM private key of --cert")


def _json_flag(p: argparse.ArgumentParser, *, sub: bool = False, help: str | None = None) -> None:
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS if sub else False, help=help)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "submit", help="submit a probe job",
        description="Submit a job: run probe KIND against each TARGET from the selected agents, "
        "once or every --every for --count rounds (or --until a time).",
        epilog="examples:\n"
        "  vantage submit http https://example.org/ --regions de-fra,ru-msk --wait\n"
        "  vantage submit throughput https://host/file --every 30s --count 10 "
        "-o control=https://neutral/file -o max_seconds=5\n"
        "  vantage submit dns example.org -o resolver=9.9.9.9 --per-region 2 --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(p)
    p.add_argument("kind", help="probe kind: dns, tcp, tls, http, throughput")
    p.add_argument("targets", nargs="+", metavar="TARGET", help="what to measure (host, host:port or URL)")
    p.add_argument("--regions", help="comma-separated regions (default: every region)")
    p.add_argument("--countries", help="comma-separated country codes")
    p.add_argument("--asns", help="comma-separated AS numbers")
    p.add_argument("--label", action="append", metavar="K=V", help="agent label to match (repeatable)")
    p.add_argument("--agents", help="comma-separated agent ids")
    p.add_argument("--per-region", type=int, default=0, help="at most N agents per region (default all)")
    p.add_argument("--every", help="repeat at this interval, e.g. 30s (minimum 5s)")
    p.add_argument("--count", type=int, default=0, help="rounds of a periodic job")
    p.add_argument("--until", help="run a periodic job until this time (ISO 8601, UTC if no zone)")
    p.add_argument("--spread", help="spread each round's starts over this long (default 0)")
    p.add_argument("--timeout", help="per-task deadline (default 60s)")
    p.add_argument("-o", "--option", action="append", metavar="K=V", help="probe option (repeatable)")
    p.add_argument("--wait", action="store_true", help="wait for the job to end, showing progress")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("jobs", help="list jobs")
    _common(p)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("job", help="show one job")
    _common(p)
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_job)

    p = sub.add_parser("results", help="show a job's results")
    _common(p)
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--follow", action="store_true", help="keep printing results until the job ends")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser(
        "agents", help="list agents; enrol and revoke them (admin)",
        description="List the agents the coordinator knows. With a subcommand (admin role): "
        "enrol an agent, giving it a token of its own bound to its id and to where it stands, "
        "revoke one, or list the enrolments.",
        epilog="examples:\n"
        "  vantage agents\n"
        "  vantage agents add ru-msk-1 --region ru-msk --country RU --asn 12389 --label provider=ovh\n"
        "  vantage agents revoke ru-msk-1\n"
        "  vantage agents enrolled --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    _common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_agents)
    actions = p.add_subparsers(dest="action", metavar="{add,revoke,enrolled}")
    a = actions.add_parser(
        "add", help="enrol an agent and print its token (once)",
        description="Enrol agent ID: the coordinator makes a token bound to ID and to the region, "
        "country, ASN and labels given here, keeps only its hash, and prints it this once. Give it "
        "to the agent as VANTAGE_AGENT_TOKEN; what the agent then says in its hello about where "
        "it stands is ignored.",
    )  # fmt: skip
    _common(a, sub=True)
    a.add_argument("agent_id", metavar="ID")
    a.add_argument("--region", required=True, help="the region the agent measures from, e.g. ru-msk")
    a.add_argument("--country", default="", help="ISO 3166 two-letter code")
    a.add_argument("--asn", type=int, default=0, help="the AS number of the agent's network")
    a.add_argument("--label", action="append", metavar="K=V", help="a label (repeatable)")
    _json_flag(a, sub=True)
    a.set_defaults(func=cmd_agents_add)
    a = actions.add_parser("revoke", help="end an agent's session and refuse its token from now on")
    _common(a, sub=True)
    a.add_argument("agent_id", metavar="ID")
    _json_flag(a, sub=True)
    a.set_defaults(func=cmd_agents_revoke)
    a = actions.add_parser("enrolled", help="list the enrolments (revoked ones too)")
    _common(a, sub=True)
    _json_flag(a, sub=True)
    a.set_defaults(func=cmd_agents_enrolled)

    p = sub.add_parser(
        "tokens", help="API tokens with roles and quotas (admin)",
        description="API tokens (admin role). Roles: read (jobs, results, agents, verdicts), "
        "submit (read, and submit and cancel its own jobs), admin (everything, any job). "
        "VANTAGE_API_TOKEN on the coordinator is the bootstrap admin.",
        epilog="examples:\n"
        "  vantage tokens add grafana --role read\n"
        "  vantage tokens add newsroom --role submit --max-active-jobs 5 --max-tasks-per-hour 2000\n"
        "  vantage tokens list\n"
        "  vantage tokens revoke newsroom",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    _common(p)
    _json_flag(p)
    p.set_defaults(func=_tokens_usage)
    actions = p.add_subparsers(dest="action", metavar="{add,list,revoke}")
    a = actions.add_parser("add", help="make a token and print it (once)")
    _common(a, sub=True)
    a.add_argument("name", metavar="NAME", help="lower-case letters, digits and ._- (shown in the audit)")
    a.add_argument("--role", required=True, choices=("read", "submit", "admin"))
    a.add_argument("--max-active-jobs", type=int, default=0, metavar="N",
                   help="at most N of its jobs running at once (default 0: no limit)")
    a.add_argument("--max-tasks-per-hour", type=int, default=0, metavar="N",
                   help="at most N tasks an hour from its jobs (default 0: no limit)")
    a.add_argument("--max-bytes-per-hour", default="0", metavar="SIZE",
                   help="at most SIZE bytes an hour moved by its jobs' throughput and http probes, "
                   "e.g. 10G, counted at each task's max_bytes (default 0: no limit)")
    _json_flag(a, sub=True)
    a.set_defaults(func=cmd_tokens_add)
    a = actions.add_parser("list", help="list the tokens (revoked ones too; never a secret)")
    _common(a, sub=True)
    _json_flag(a, sub=True)
    a.set_defaults(func=cmd_tokens_list)
    a = actions.add_parser("revoke", help="refuse a token from its next call on")
    _common(a, sub=True)
    a.add_argument("name", metavar="NAME")
    _json_flag(a, sub=True)
    a.set_defaults(func=cmd_tokens_revoke)

    p = sub.add_parser(
        "audit", help="who submitted and cancelled what (admin)",
        description="The audit record: every submit and cancel, and every change to enrolments "
        "and tokens, with the API token's name, oldest first.",
    )  # fmt: skip
    _common(p)
    p.add_argument("--since", default="24h", help="how far back, e.g. 1h or 7d (default 24h; 0: all)")
    p.add_argument("--limit", type=int, default=1000, help="the newest N records (default 1000, at most 10000)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser("cancel", help="cancel a job")
    _common(p)
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("verdicts", help="show the current verdict table")
    _common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verdicts)


# ------------------------------------------------------------------ plumbing


def _client(args: argparse.Namespace) -> Any:
    from coordinator.client import VantageClient

    address = pick(args.coordinator, "VANTAGE_COORDINATOR", {}, "", DEFAULT_COORDINATOR)
    ca = pick(args.ca, "VANTAGE_CA", {}, "", None)
    if ca is not None and not Path(ca).is_file():
        raise UsageError(f"--ca: no such file {ca}")
    tls = pick_bool(args.tls, "VANTAGE_TLS", {}, "tls")
    pair = client_certificate(args.cert, args.key)
    if pair is not None and not (tls or ca is not None):
        raise UsageError("--cert: a client certificate is for TLS; give --ca or --tls too")
    require_tls_off_loopback(
        [address], tls=tls or ca is not None,
        insecure=pick_bool(args.insecure, "VANTAGE_INSECURE", {}, "insecure"), flag="--coordinator",
    )
    return VantageClient(
        address, token=secret("VANTAGE_API_TOKEN"), ca_file=Path(ca) if ca else None, tls=tls,
        client_cert=pair,
    )


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except grpc.RpcError as exc:
        code = exc.code() if hasattr(exc, "code") else None
        details = exc.details() if hasattr(exc, "details") else str(exc)
        name = code.name if code is not None else "ERROR"
        if code == grpc.StatusCode.UNAVAILABLE:
            details = f"coordinator unreachable ({details})"
        raise UsageError(f"{name}: {details}") from None


def _dict(msg: Message) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _job_dict(job: Any) -> dict[str, Any]:
    d = _dict(job)
    d["state"] = STATE_NAMES.get(job.state, str(job.state))
    return d


def _ts(t: float) -> str:
    if not t:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: Any = None) -> None:
    out = out or sys.stdout
    cells = [[clean(c) for c in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line.rstrip(), file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def _csv(text: str | None) -> list[str]:
    return [x.strip() for x in (text or "").split(",") if x.strip()]


def _parse_until(text: str) -> float:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--until: {text!r} is not an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _place(r: Any) -> str:
    """Where a result was measured: region, then country and AS when known."""
    p = r.place
    parts = [p.region or "-"]
    if p.country:
        parts.append(p.country)
    if p.asn:
        parts.append(f"AS{p.asn}")
    return " ".join(parts)


def _result_summary(r: Any) -> str:
    result = r.result
    failure = failure_name(result.failure)
    if result.failure:
        name = failure if failure is not None else f"failure#{result.failure}"
        return f"{name} {result.failure_detail}".strip()
    kind = result.kind
    which = result.WhichOneof("data")
    if which != kind:
        return "ok"
    data = getattr(result, which)
    if kind == "throughput":
        up = "up " if data.direction == "upload" else ""
        s = f"{up}{data.bytes_per_second / 1000:.1f} kB/s" if data.HasField("bytes_per_second") else "no rate"
        if data.HasField("drop_at_s") and data.HasField("sustained_bps"):
            s += f", {data.sustained_bps / 1000:.1f} kB/s after a drop at {data.drop_at_s:.2g} s"
        if data.HasField("sustained_ratio"):
            s += f" ratio {data.sustained_ratio:.2f}"
        elif data.HasField("ratio"):
            s += f" ratio {data.ratio:.2f}"
        return s
    if kind == "http":
        status = data.status if data.HasField("status") else 0
        title = " ".join(data.title.split())[:40]  # the server's words: one short line
        return f"HTTP {status} {data.body_length} bytes" + (f" {title!r}" if title else "")
    if kind == "dns":
        text = " ".join(data.answers)[:60] or data.rcode
        if data.HasField("control") and set(data.control.answers) != set(data.answers):
            text += f" (control: {' '.join(data.control.answers)[:40] or data.control.rcode or 'failed'})"
        return text
    if kind == "tls":
        return f"{data.tls_version} {data.alpn}".strip()
    return data.address or "ok"


def _outcome(r: Any) -> str:
    if not r.result.failure:
        return "ok"
    name = failure_name(r.result.failure)
    return name if name is not None else f"failure#{r.result.failure}"


# ------------------------------------------------------------------ commands


def cmd_submit(args: argparse.Namespace) -> int:
    options = parse_key_values(args.option, "--option")
    labels = parse_key_values(args.label, "--label")
    every = parse_duration(args.every, "--every") if args.every else 0.0
    spread = parse_duration(args.spread, "--spread") if args.spread else 0.0
    timeout = parse_duration(args.timeout, "--timeout") if args.timeout else 0.0
    until = _parse_until(args.until) if args.until else 0.0
    try:
        asns = [int(a) for a in _csv(args.asns)]
    except ValueError:
        raise UsageError(f"--asns: {args.asns!r} is not a list of numbers") from None
    if args.count < 0 or args.per_region < 0:
        raise UsageError("--count and --per-region must not be negative")
    count = args.count if every else (args.count or 0)
    with _client(args) as client:
        job = _call(
            lambda: client.submit(
                args.kind, args.targets, options=options, regions=_csv(args.regions),
                countries=[c.upper() for c in _csv(args.countries)], asns=asns, labels=labels,
                agent_ids=_csv(args.agents), per_region=args.per_region, every_s=every,
                count=count, until=until, spread_s=spread, timeout_s=timeout,
            )
        )
        if not args.wait:
            if args.json:
                print(json.dumps(_job_dict(job), indent=2))
            else:
                print(f"job {clean(job.job_id)} accepted: {job.tasks_expected or 'open-ended'} tasks expected")
            return 0
        final = _wait(client, job, quiet=args.json)
        if args.json:
            print(json.dumps(_job_dict(final), indent=2))
        else:
            print(
                f"job {final.job_id} {STATE_NAMES[final.state]}: {final.tasks_done} results, "
                f"{final.tasks_failed} tasks failed"
            )
        return 0 if STATE_NAMES[final.state] == "done" else 1


def _wait(client: Any, job: Any, *, quiet: bool) -> Any:
    """Follow the job to its end, printing 'done of expected' progress to stderr."""
    state = {"done": 0, "final": job}
    tty = sys.stderr.isatty()

    def consume() -> None:
        for event in client.watch(job.job_id, follow=True):
            which = event.WhichOneof("event")
            if which in ("result", "task_failed"):
                state["done"] += 1
                if not quiet:
                    expected = state["final"].tasks_expected or "?"
                    print(
                        f"progress: {state['done']} of {expected} tasks",
                        end="\r" if tty else "\n", file=sys.stderr, flush=True,
                    )
            elif which == "job_end":
                state["final"] = event.job_end

    _call(consume)
    if not quiet and tty:
        print(file=sys.stderr)
    return state["final"]


def cmd_jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        jobs = _call(lambda: client.list_jobs(args.limit))
    if args.json:
        print(json.dumps([_job_dict(j) for j in jobs], indent=2))
        return 0
    print_table(
        ["job", "state", "kind", "targets", "rounds", "done", "failed", "expected", "created"],
        [
            (j.job_id, STATE_NAMES[j.state], j.spec.kind, len(j.spec.targets), j.rounds_done,
             j.tasks_done, j.tasks_failed, j.tasks_expected or "-", _ts(j.created_at))
            for j in jobs
        ],
    )
    return 0


def cmd_job(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = _call(lambda: client.get(args.job_id))
    if args.json:
        print(json.dumps(_job_dict(job), indent=2))
        return 0
    spec = job.spec
    rows = [
        ("job", job.job_id), ("state", STATE_NAMES[job.state]), ("kind", spec.kind),
        ("targets", ", ".join(spec.targets)),
        ("options", ", ".join(f"{k}={v}" for k, v in sorted(spec.options.items())) or "-"),
        ("regions", ", ".join(spec.selector.regions) or "all"),
        ("every", f"{spec.every_s:g}s" if spec.every_s else "once"),
        ("rounds", f"{job.rounds_done} of {spec.count or '-'}"),
        ("tasks", f"{job.tasks_done} done, {job.tasks_failed} failed, {job.tasks_expected or '?'} expected"),
        ("created", _ts(job.created_at)), ("finished", _ts(job.finished_at)),
        ("reason", job.reason or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {clean(value)}")
    return 0


def cmd_results(args: argparse.Namespace) -> int:
    with _client(args) as client:
        rows = []

        def consume() -> None:
            for event in client.watch(args.job_id, follow=args.follow):
                which = event.WhichOneof("event")
                if which == "result":
                    r = event.result
                    if args.json:
                        print(json.dumps(task_result_to_dict(r)), flush=True)
                    elif args.follow:
                        print(
                            clean(f"{_ts(r.finished_at)}  {r.agent_id}  {_place(r)}  {r.result.target}  "
                                  f"{_outcome(r)}  {_result_summary(r)}"),
                            flush=True,
                        )
                    else:
                        rows.append(
                            (_ts(r.finished_at), r.agent_id, _place(r), r.result.target,
                             _outcome(r), f"{r.result.duration_s:.3f}s", _result_summary(r))
                        )
                elif which == "task_failed" and not args.json:
                    failed = event.task_failed
                    print(clean(f"task {failed.task_id} failed: {failed.reason}"), file=sys.stderr)

        _call(consume)
    if rows:
        print_table(["finished", "agent", "from", "target", "outcome", "duration", "measured"], rows)
    return 0


def cmd_agents(args: argparse.Namespace) -> int:
    with _client(args) as client:
        agents = _call(client.agents)
    if args.json:
        print(json.dumps([_dict(a) for a in agents], indent=2))
        return 0
    print_table(
        ["agent", "region", "country", "asn", "connected", "running", "last seen", "version",
         "health", "not run"],
        [
            (a.agent_id, a.region, a.country or "-", a.asn or "-", "yes" if a.connected else "no",
             a.running, _ts(a.last_seen), a.version, a.health or "-", _errors(a.errors))
            for a in agents
        ],
    )  # fmt: skip
    for a in agents:
        if a.health == "unhealthy":
            print(clean(f"  {a.agent_id}: {a.health_reason}"))
    return 0


def _tokens_usage(_: argparse.Namespace) -> int:
    raise UsageError("give a subcommand: add, list or revoke (vantage tokens --help)")


def _enrollment_row(e: Any) -> tuple[Any, ...]:
    labels = ",".join(f"{k}={e.labels[k]}" for k in sorted(e.labels)) or "-"
    state = f"revoked {_ts(e.revoked_at)}" if e.revoked_at else "in force"
    return (e.agent_id, e.region, e.country or "-", e.asn or "-", labels, _ts(e.created_at), e.created_by, state)


ENROLLMENT_HEADERS = ["agent", "region", "country", "asn", "labels", "enrolled", "by", "state"]


def cmd_agents_add(args: argparse.Namespace) -> int:
    if args.asn < 0 or args.asn > 0xFFFFFFFF:
        raise UsageError("--asn: an AS number, 0 to 4294967295")
    labels = parse_key_values(args.label or [], "--label")
    with _client(args) as client:
        resp = _call(lambda: client.enroll_agent(args.agent_id, args.region, country=args.country,
                                                 asn=args.asn, labels=labels))  # fmt: skip
    if args.json:
        print(json.dumps({"enrollment": _dict(resp.enrollment), "token": resp.token}, indent=2))
        return 0
    print(clean(f"enrolled agent {resp.enrollment.agent_id} in {resp.enrollment.region}; its token (shown once):"))
    print(resp.token)
    print("start the agent with VANTAGE_AGENT_TOKEN set to it (or VANTAGE_AGENT_TOKEN_FILE naming a file that holds it)")
    return 0


def cmd_agents_revoke(args: argparse.Namespace) -> int:
    with _client(args) as client:
        e = _call(lambda: client.revoke_agent(args.agent_id))
    if args.json:
        print(json.dumps(_dict(e), indent=2))
    else:
        print(clean(f"agent {e.agent_id} revoked: its session is ended and its token refused"))
    return 0


def cmd_agents_enrolled(args: argparse.Namespace) -> int:
    with _client(args) as client:
        rows = _call(client.enrollments)
    if args.json:
        print(json.dumps([_dict(e) for e in rows], indent=2))
    else:
        print_table(ENROLLMENT_HEADERS, [_enrollment_row(e) for e in rows])
    return 0


def _token_row(t: Any) -> tuple[Any, ...]:
    state = f"revoked {_ts(t.revoked_at)}" if t.revoked_at else "in force"
    return (t.name, t.role, t.max_active_jobs or "-", t.max_tasks_per_hour or "-", t.max_bytes_per_hour or "-",
            _ts(t.created_at), t.created_by, state)  # fmt: skip


TOKEN_HEADERS = ["name", "role", "max active jobs", "max tasks/hour", "max bytes/hour", "created", "by", "state"]


def cmd_tokens_add(args: argparse.Namespace) -> int:
    for flag, value in (("--max-active-jobs", args.max_active_jobs), ("--max-tasks-per-hour", args.max_tasks_per_hour)):
        if not 0 <= value <= 10_000_000:
            raise UsageError(f"{flag}: 0 (no limit) to 10000000")
    from common.specs.options import parse_size

    try:
        max_bytes = parse_size(str(args.max_bytes_per_hour)) if str(args.max_bytes_per_hour).strip() != "0" else 0
    except ValueError:
        raise UsageError(f"--max-bytes-per-hour: {str(args.max_bytes_per_hour)[:40]!r} is not a size (e.g. 10G; 0: no limit)") from None
    if max_bytes > 1024**5:
        raise UsageError("--max-bytes-per-hour: at most 1P (0: no limit)")
    with _client(args) as client:
        resp = _call(lambda: client.add_token(args.name, args.role, max_active_jobs=args.max_active_jobs,
                                              max_tasks_per_hour=args.max_tasks_per_hour,
                                              max_bytes_per_hour=max_bytes))  # fmt: skip
    if args.json:
        print(json.dumps({"token": _dict(resp.token), "secret": resp.secret}, indent=2))
        return 0
    print(clean(f"token {resp.token.name} ({resp.token.role}); its secret (shown once):"))
    print(resp.secret)
    print("callers give it as VANTAGE_API_TOKEN (or VANTAGE_API_TOKEN_FILE naming a file that holds it)")
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        rows = _call(client.tokens)
    if args.json:
        print(json.dumps([_dict(t) for t in rows], indent=2))
    else:
        print_table(TOKEN_HEADERS, [_token_row(t) for t in rows])
    return 0


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    with _client(args) as client:
        t = _call(lambda: client.revoke_token(args.name))
    if args.json:
        print(json.dumps(_dict(t), indent=2))
    else:
        print(clean(f"token {t.name} revoked"))
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    back = parse_duration(args.since, "--since") if args.since not in ("0", "") else 0.0
    if not 0 < args.limit <= 10_000:
        raise UsageError("--limit: 1 to 10000")
    since = time.time() - back if back else 0.0
    with _client(args) as client:
        rows = _call(lambda: client.audit(since, args.limit))
    if args.json:
        for r in rows:
            d = _dict(r)
            with contextlib.suppress(ValueError):
                d["detail"] = json.loads(r.detail)
            print(json.dumps(d))
        return 0
    print_table(["at", "actor", "action", "subject", "detail"],
                [(_ts(r.at), r.actor, r.action, r.subject, r.detail) for r in rows])  # fmt: skip
    return 0


def _errors(errors: Any) -> str:
    """Tasks an agent could not run, by reason: "deadline_missed 3, spec_error 1"."""
    return ", ".join(f"{k} {errors[k]}" for k in sorted(errors)) or "-"


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = _call(lambda: client.cancel(args.job_id))
    if args.json:
        print(json.dumps(_job_dict(job), indent=2))
    else:
        print(f"job {job.job_id} {STATE_NAMES[job.state]}")
    return 0


def cmd_verdicts(args: argparse.Namespace) -> int:
    with _client(args) as client:
        resp = _call(client.verdicts)
    if args.json:
        print(json.dumps(_dict(resp), indent=2))
        return 0
    print_verdicts(resp)
    return 0


def _verdict_words(v: Any) -> str:
    """"blocked (connection_reset)", "throttled (upload)", "throttled (trigger: sni)",
    "blocked (connection_reset, at hop 2 198.18.0.6, AS64502)" where agents located it; a
    download's throttle is the plain word, as it always was, and an unknown trigger is
    not said."""
    notes = [v.failure] if v.failure else []
    if v.direction and v.direction != "download":
        notes.append(v.direction)
    if v.trigger and v.trigger != "unknown":
        notes.append(f"trigger: {v.trigger}")
    if v.censor_at == "destination":
        notes.append("at the destination")
    elif v.censor_at in ("path", "unknown"):
        where = ", ".join(p for p in (v.censor_hop, f"AS{v.censor_asn}" if v.censor_asn else "") if p)
        notes.append(f"at hop {v.censor_ttl}" + (f" {where}" if where else "")
                     + ("?" if v.censor_at == "unknown" else ""))  # fmt: skip
    return str(v.verdict) + (f" ({', '.join(notes)})" if notes else "")


def _rates(download: float, upload: float, spread: tuple[float, float, float, float] = (0, 0, 0, 0)) -> str:
    """Each direction's median, and its 95% interval where the coordinator gave one."""

    def one(bps: float, low: float, high: float) -> str:
        text = f"{bps / 1000:.1f} kB/s"
        if high > 0 and (low, high) != (bps, bps):
            text += f" ({low / 1000:.1f}-{high / 1000:.1f})"
        return text

    parts = [one(download, spread[0], spread[1])] if download else []
    if upload:
        parts.append("up " + one(upload, spread[2], spread[3]))
    return " ".join(parts) or "-"


def _ratios(download: float, upload: float) -> str:
    parts = [f"{download:.3f}"] if download else []
    if upload:
        parts.append(f"up {upload:.3f}")
    return " ".join(parts) or "-"


def print_verdicts(resp: Any) -> None:
    now = time.time()
    print_table(
        ["region", "target", "verdict", "throughput", "ratio", "samples", "agents", "since", "why"],
        [
            (v.region, v.target, _verdict_words(v), _rates(v.throughput_bps, v.upload_bps, (v.throughput_low_bps, v.throughput_high_bps, v.upload_low_bps, v.upload_high_bps)),
             _ratios(v.ratio, v.upload_ratio), v.samples, v.agents,
             f"{now - v.since:.0f}s ago" if v.since else "-", v.reason)
            for v in resp.regions
        ],
    )
    down = [r for r in resp.region_health if not r.reachable]
    print(clean(f"unreachable regions: {', '.join(r.region for r in down) if down else 'none'}"))
    for r in down:
        print(clean(f"  {r.region}: {r.reason}"))
    outages = [t.target for t in resp.targets if t.outage]
    print(clean(f"outage: {', '.join(outages) if outages else 'none'}"))
    degraded = [t for t in resp.targets if t.degraded]
    print(clean(f"degraded: {', '.join(t.target for t in degraded) if degraded else 'none'}"))
    for t in degraded:
        print(clean(f"  {t.target}: {t.degraded_reason}"))


def main_verdicts(address: str) -> None:
    """Print the verdict table of the coordinator at ``address`` (used by the demo)."""
    from coordinator.client import VantageClient

    with VantageClient(address) as client:
        print_verdicts(_call(client.verdicts))
