"""structlog set-up, once, at the edge.

JSON lines when stderr is not a terminal (services, CI, pipes); readable key=value lines
on a terminal. ``merge_contextvars`` comes first so ``agent_id``, ``task_id`` and
``job_id`` bound with ``structlog.contextvars.bind_contextvars`` show on every line.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(level: str = "info", json: bool | None = None, file: TextIO | None = None) -> None:
    """Log at ``level`` and above to ``file`` (stderr by default), as JSON unless that is
    a terminal (or as ``json`` says)."""
    out = file if file is not None else sys.stderr
    if json is None:
        json = not out.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
