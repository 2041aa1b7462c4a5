"""benchmarks/figures.py renders fabricated figures: no benchmark runs here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location(
        f"benchmarks.{name}", ROOT / "benchmarks" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


figlib = load("figlib")
figures = load("figures")

META = {
    "cores": 2,
    "cpu": "Test CPU @ 1.00GHz",
    "commit": "abc1234+dirty",
    "date": "2026-01-02 03:04 UTC",
    "quick": True,
    "runs": 2,
    "command": "python benchmarks/figures.py --quick --runs 2",
    "python": "3.11.0",
}


def run_of(ingest: float, rss: float) -> object:
    f = figlib.Figures("scale", quick=True)
    f.add("SQLite: ingest", ingest, "results/s", 15_000, "higher")
    f.add("SQLite: coordinator RSS", rss, "MiB", 512, "lower")
    f.add("SQLite: heartbeats handled", 200.0, "heartbeats/s")
    f.skip("PostgreSQL", "no initdb")
    d = f.as_dict()
    return figures.Run(ok=True, wall_s=20.0, figures=d["figures"], skipped=d["skipped"])


def test_ratio_direction() -> None:
    assert figlib.ratio_of(30_000, 15_000, "higher") == (2.0, "value/goal")
    assert figlib.ratio_of(256, 512, "lower") == (2.0, "goal/value")
    assert figlib.ratio_of(5, None, None) == (None, None)


def test_render_holds_values_goals_ratios_machine_commit_and_failures() -> None:
    results = [
        figures.Result("scale", "python benchmarks/scale.py --quick", "simulated agents", [run_of(3_000, 128), run_of(6_000, 256)]),
        figures.Result("agent_cost", "python benchmarks/agent_cost.py --quick", "one agent",
                       [figures.Run(ok=False, wall_s=240.0, reason="timed out after 240 s (killed)")] * 2),
        figures.Result("throughput_vs_curl", "python benchmarks/throughput_vs_curl.py --quick", "curl",
                       [figures.Run(ok=False, not_run=True, reason="skipped: curl not installed")] * 2),
    ]  # fmt: skip
    md = figures.render(META, results)
    assert "2 cores (os.cpu_count()), Test CPU @ 1.00GHz" in md
    assert "- commit: abc1234+dirty" in md
    assert "- date: 2026-01-02 03:04 UTC" in md
    assert "- quick: yes" in md
    assert "`python benchmarks/figures.py --quick --runs 2`" in md
    # the ingest row: range over runs, median, goal, ratio of the median (4,500 / 15,000)
    row = next(line for line in md.splitlines() if line.startswith("| SQLite: ingest"))
    assert "3,000\u20136,000" in row and "4,500" in row and "at least 15,000" in row
    assert "0.30 (value/goal; not met)" in row
    rss = next(line for line in md.splitlines() if line.startswith("| SQLite: coordinator RSS"))
    assert "at most 512" in rss and "2.67 (goal/value; met)" in rss
    hb = next(line for line in md.splitlines() if line.startswith("| SQLite: heartbeats handled"))
    assert "200" in hb
    assert "PostgreSQL: no initdb" in md
    assert (
        "**FAILED**" in md and "agent_cost** (run 1) FAILED: timed out after 240 s (killed)" in md
    )
    assert "skipped: curl not installed" in md
    assert [r.name for r in results if r.failed] == ["agent_cost"]


def test_figures_json_round_trip(tmp_path: Path) -> None:
    f = figlib.Figures("analysis_speed")
    f.add("evaluate", 0.0, "failed attempts", 1, "lower")
    f.write(tmp_path / "out.json")
    import json

    data = json.loads((tmp_path / "out.json").read_text())
    assert data["figures"][0]["ratio"] is None and data["figures"][0]["note"] == "none: met"
    md = figures.render(
        {**META, "runs": 1},
        [figures.Result("x", "python x", "", [figures.Run(ok=True, figures=data["figures"])])],
    )
    assert "none: met" in md
