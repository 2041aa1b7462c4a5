"""The tcp kind's spec: ``host:port``. The probe is ``agent/probes/tcp.py``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from common.specs.base import Limits
from common.specs.options import (
    LOCATE_HELP,
    TIMEOUT_HELP,
    check_known,
    opt_bool,
    opt_timeout,
    split_host_port,
)

NAME = "tcp"
OPTIONS: Mapping[str, str] = {"timeout": TIMEOUT_HELP, "locate": LOCATE_HELP}


@dataclass(frozen=True, kw_only=True)
class Spec:
    kind: str = NAME
    target: str
    host: str
    port: int
    timeout_s: float
    locate: bool = False


def parse(target: str, options: Mapping[str, str], limits: Limits) -> Spec:
    check_known(NAME, options, OPTIONS)
    host, port = split_host_port(target, default_port=None)
    return Spec(target=target.strip(), host=host, port=port, timeout_s=opt_timeout(options, limits),
                locate=opt_bool(options, "locate", default=False))
