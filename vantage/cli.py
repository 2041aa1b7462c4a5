"""``vantage``: one command for the agent, the coordinator and the client.

Each sub-command lives in ``vantage/commands/<name>.py`` with ``register(subparsers)``
that adds its parser and sets ``func``: a callable taking the parsed namespace and
returning an exit code. Usage errors exit 2 with one line and no traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vantage import __version__
from vantage.commands import COMMAND_MODULES
from vantage.errors import UsageError
from vantage.terminal import clean


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vantage",
        description=(
            "Vantage: see where on the internet a service is throttled, blocked or down. "
            "Agents in many regions run probes for a coordinator, which compares regions "
            "and exports verdicts as Prometheus metrics."
        ),
    )
    parser.add_argument("--version", action="version", version=f"vantage {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as exc:
        print(f"vantage {args.command}: error: {clean(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
