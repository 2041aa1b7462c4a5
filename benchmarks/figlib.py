"""What every benchmark shares: the ``--quick`` and ``--json PATH`` options, and the
machine-readable list of figures that ``--json`` writes (read by ``benchmarks/figures.py``).

The JSON file holds one object::

    {"benchmark": "scale", "quick": true, "argv": [...],
     "figures": [{"name": ..., "value": ..., "unit": ..., "goal": ... or null,
                  "better": "higher" | "lower" | null,
                  "ratio": ... or null, "ratio_is": "value/goal" | "goal/value" | null,
                  "note": ""}, ...],
     "skipped": [{"name": ..., "reason": ...}, ...]}

``ratio`` is value/goal when higher is better and goal/value when lower is better, so a
ratio of at least 1 always means the goal is met. A lower-is-better figure of 0 has no
ratio (the goal is met; the note says so).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_args(parser: argparse.ArgumentParser, quick_help: str) -> None:
    """Add ``--quick`` and ``--json PATH`` to a benchmark's parser."""
    parser.add_argument("--quick", action="store_true",
                        help=f"the same figures at a smaller size, in a few minutes at most: {quick_help}; "
                        "options given explicitly still win")  # fmt: skip
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the figures to PATH as JSON (a list of figures, each with its "
                        "name, value, unit, goal and ratio; see benchmarks/figlib.py)")  # fmt: skip


def apply_quick(
    args: argparse.Namespace, parser: argparse.ArgumentParser, quick: dict[str, Any]
) -> None:
    """With --quick, set each option of ``quick`` that was left at its default."""
    if not args.quick:
        return
    for key, value in quick.items():
        if getattr(args, key) == parser.get_default(key):
            setattr(args, key, value)


def ratio_of(
    value: float, goal: float | None, better: str | None
) -> tuple[float | None, str | None]:
    if goal is None or better is None:
        return None, None
    if better == "higher":
        return (value / goal if goal else None), "value/goal"
    return (goal / value if value else None), "goal/value"


class Figures:
    """The figures of one run of one benchmark."""

    def __init__(self, benchmark: str, quick: bool = False) -> None:
        self.benchmark = benchmark
        self.quick = quick
        self.figures: list[dict[str, Any]] = []
        self.skipped: list[dict[str, str]] = []

    def add(self, name: str, value: float, unit: str, goal: float | None = None,
            better: str | None = None, note: str = "") -> None:  # fmt: skip
        """``better``: "higher" or "lower" (required with a goal)."""
        assert goal is None or better in ("higher", "lower"), (name, better)
        ratio, ratio_is = ratio_of(float(value), goal, better)
        if goal is not None and better == "lower" and value == 0 and not note:
            note = "none: met"
        self.figures.append({
            "name": name, "value": float(value), "unit": unit, "goal": goal, "better": better,
            "ratio": ratio, "ratio_is": ratio_is, "note": note,
        })  # fmt: skip

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append({"name": name, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {"benchmark": self.benchmark, "quick": self.quick, "argv": sys.argv,
                "figures": self.figures, "skipped": self.skipped}  # fmt: skip

    def write(self, path: Path | None) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
