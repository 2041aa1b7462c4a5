"""``vantage probe KIND TARGET``: run one probe here and now, with no coordinator."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from typing import Any

from agent.probes import KINDS, SpecError, option_help, parse_spec, run_probe
from agent.probes.base import Limits
from agent.probes.failures import FAILURES
from agent.runner import wire_result
from protos.results import probe_result_to_dict
from vantage.commands.agent_cmd import load_asn_file
from vantage.errors import UsageError
from vantage.terminal import clean_lines

EPILOG = """\
options per kind (-o NAME=VALUE):
{options}

failure classes: {failures}

exit status: 0 when the probe ran and succeeded, 1 when it ran and measured a failure
(the failure class is printed, or is in the JSON), 2 for a usage error (unknown kind or
option, malformed target).

examples:
  vantage probe dns example.com -o resolver=9.9.9.9 -o type=A,AAAA
  vantage probe tcp example.com:443
  vantage probe tls example.com -o sni=example.org -o verify=false
  vantage probe http https://example.com/ -o max_body=16k
  vantage probe throughput https://speed.example/10M.bin -o max_seconds=8 -o control=https://cdn.example/10M.bin
  vantage probe ping example.com -o count=10 -o interval=0.5
  vantage probe traceroute example.com -o method=tcp -o port=443 --asn-file asn.txt
"""


def _options_text() -> str:
    lines = []
    for kind in KINDS:
        lines.append(f"  {kind}:")
        for name, text in option_help(kind).items():
            lines.append(f"    {name:<16} {text}")
    return "\n".join(lines)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "probe",
        help="run one probe locally (dns, tcp, tls, http, throughput, ping, traceroute)",
        description=(
            "Run one probe from this machine, with no coordinator, and print what it "
            "measured: a readable summary, or with --json the same fields as the wire "
            "protocol's ProbeResult (kind, target, failure, failure_detail, duration_s, data)."
        ),
        epilog=EPILOG.format(options=_options_text(), failures=", ".join(sorted(FAILURES))),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("kind", metavar="KIND", help=f"probe kind: {', '.join(KINDS)}")
    parser.add_argument(
        "target", metavar="TARGET", help="name (dns), host:port (tcp), host[:port] (tls), URL (http, throughput), host (ping, traceroute)"
    )
    parser.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="K=V",
        help="a probe option, repeatable (see the list below)",
    )
    parser.add_argument(
        "--allow-private-targets",
        action="store_true",
        help="lift the target policy (loopback, private, link-local, CGNAT ... addresses); for labs and tests",
    )
    parser.add_argument("--max-bytes-cap", type=int, default=None, metavar="BYTES", help="hard cap for max_bytes (default 100 MiB)")
    parser.add_argument("--asn-file", metavar="FILE",
                        help="an offline IP-to-ASN table ('PREFIX ASN' per line) for traceroute hops")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def parse_options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--option {pair!r}: expected NAME=VALUE")
        if name in options:
            raise UsageError(f"--option {name}: given twice")
        options[name] = value
    return options


def run(args: argparse.Namespace) -> int:
    if args.max_bytes_cap is not None and args.max_bytes_cap <= 0:
        raise UsageError("--max-bytes-cap: must be positive")
    limits = Limits(
        allow_private_targets=args.allow_private_targets, ca_dir="/",
        asn_lookup=load_asn_file(args.asn_file, "--asn-file") if args.asn_file else None,
        **({"max_bytes_cap": args.max_bytes_cap} if args.max_bytes_cap is not None else {}),
    )
    options = parse_options(args.option)
    try:
        spec = parse_spec(args.kind, args.target, options, limits)
        outcome = asyncio.run(run_probe(spec, limits))
    except SpecError as exc:
        raise UsageError(f"{exc.field}: {exc.reason}") from None
    # Through the wire's typed result, so the names and shape are those of
    # ``vantage results --json`` (and a probe whose data leaves the contract shows here).
    result = probe_result_to_dict(wire_result(outcome))
    if args.json:
        print(json.dumps(result, sort_keys=False))
    else:
        print(clean_lines(render(result)))  # a probed server chose much of it
    return 1 if outcome.failure else 0


def render(result: Mapping[str, Any]) -> str:
    """A readable summary: a status line, then the data as indented ``name: value`` lines.
    Not yet cleaned: the caller passes it through ``clean_lines`` (a reason phrase or a
    ``Server`` header is the probed server's to choose)."""
    status = f"FAILED {result['failure']}" if result["failure"] else "ok"
    lines = [f"{result['kind']} {result['target']}: {status} in {result['duration_s']:.3f}s"]
    if result["failure_detail"]:
        lines.append(f"  detail: {result['failure_detail']}")
    lines.extend(_lines(result["data"] or {}, indent=1))
    return "\n".join(lines)


def _lines(value: Mapping[str, Any], indent: int) -> list[str]:
    pad = "  " * indent
    out: list[str] = []
    for name, item in value.items():
        if isinstance(item, Mapping) and item:
            out.append(f"{pad}{name}:")
            out.extend(_lines(item, indent + 1))
        elif isinstance(item, list) and item and all(isinstance(x, Mapping) for x in item):
            out.append(f"{pad}{name}:")
            for element in item:
                out.append(f"{pad}  - " + ", ".join(f"{k}={v}" for k, v in element.items()))
        elif isinstance(item, list) and name == "series_bps":
            out.append(f"{pad}{name}: [" + ", ".join(f"{x:.0f}" for x in item) + "]")
        elif isinstance(item, list):
            out.append(f"{pad}{name}: {', '.join(str(x) for x in item) if item else '-'}")
        elif isinstance(item, float):
            out.append(f"{pad}{name}: {item:.6g}")
        else:
            out.append(f"{pad}{name}: {'-' if item is None or item == '' else item}")
    return out
