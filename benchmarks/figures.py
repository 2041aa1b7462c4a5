"""Run every benchmark and write their figures to docs/performance.md.

Each benchmark in benchmarks/ runs as its own subprocess (with --json, and with --quick
when given), --runs times, under a hard timeout (its whole process group is killed when it
runs over). The figures each writes (see benchmarks/figlib.py) are collected, and the
markdown file gets, for every figure: its value (the range min-max over the runs when
--runs > 1), the median, the unit, the goal where the benchmark names one, and the ratio
of the median to the goal. The ratio is value/goal when higher is better and goal/value
when lower is better, so at least 1 always means the goal is met. A header gives the
machine (cores, CPU model), the commit (+dirty when the working tree has changes), the
date, whether --quick was used and the exact command.

A benchmark that exits non-zero, times out or writes no figures is listed as failed with
its reason (its figures, if it wrote any, are still shown), and this script then exits 1.
A benchmark whose requirement is missing (throughput_vs_curl without curl) is skipped
with the reason; parts a benchmark skips itself (PostgreSQL without its server binaries,
the blackbox exporter comparison without prometheus-blackbox-exporter) are listed too.
Neither counts as a failure.

The benchmarks (--only takes these names):
  analysis_speed      Analyzer.add rate and one evaluation of 400 targets, beside deque.append
  evidence_marks      what the block-page and DNS-lie passes add to an evaluation
  ingest_path         the coordinator's ingest path in one process, without the network
  throughput_vs_curl  the throughput probe against curl on a loopback download (needs curl)
  agent_cost          one real agent: idle RSS, CPU per 1,000 tcp probes, http probe rate
  network_load        1,000 simulated agents over gRPC: fan-out, ingest, RSS per engine
  scale               10,000 simulated agents: storm, idle, fan-out, ingest, kill -9 restart

With --quick each runs at its smaller size (each at most 3 minutes on a 2-core machine;
all of them in well under 15), and on SQLite only; without it, at full size (scale and
network_load also on PostgreSQL: a private server each starts; that takes an hour or more).

Examples:
  python benchmarks/figures.py --quick
  python benchmarks/figures.py --runs 3 --only scale,network_load --out /tmp/perf.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.figlib import ratio_of  # noqa: E402

DASH = "\u2013"  # an en dash, for ranges


@dataclass(frozen=True)
class Benchmark:
    name: str
    measures: str
    needs: tuple[str, ...] = ()  # executables it cannot run without
    timeout_s: float = 1800.0  # without --quick
    quick_timeout_s: float = 240.0

    @property
    def script(self) -> str:
        return f"benchmarks/{self.name}.py"


BENCHMARKS = [
    Benchmark(
        "analysis_speed",
        "the analysis core: Analyzer.add per measurement and one evaluation of "
        "400 targets, beside a deque.append of the same items",
        timeout_s=600,
    ),
    Benchmark(
        "evidence_marks",
        "what the block-page and DNS-lie passes add to an evaluation (50 http "
        "and 50 dns targets, 20 groups), against the same measurements without evidence",
        timeout_s=600,
    ),
    Benchmark(
        "ingest_path",
        "the coordinator's ingest path in one process, without the network "
        "(results/s per batch size), and one full scheduling pass over every open task",
        timeout_s=900,
    ),
    Benchmark(
        "throughput_vs_curl",
        "the throughput probe against curl on an unshaped loopback download",
        needs=("curl",),
        timeout_s=900,
    ),
    Benchmark(
        "agent_cost",
        "one real agent against a fresh coordinator: idle RSS, CPU per 1,000 tcp "
        "probes, http probes/s (beside prometheus-blackbox-exporter when installed)",
        timeout_s=900,
    ),
    Benchmark(
        "network_load",
        "simulated agents over real gRPC streams against real coordinators "
        "(SQLite; PostgreSQL with one and two coordinators): fan-out p99, ingest rate, peak RSS",
        timeout_s=2700,
    ),
    Benchmark(
        "scale",
        "simulated agents from several load-generator processes against one coordinator "
        "(SQLite; PostgreSQL): dial storm, idle RSS and heartbeat CPU, fan-out, ingest, kill -9 "
        "restart",
        timeout_s=5400,
    ),
]
BY_NAME = {b.name: b for b in BENCHMARKS}


@dataclass
class Run:
    """One run of one benchmark."""

    ok: bool
    reason: str = ""  # why it failed, or why it was skipped
    wall_s: float = 0.0
    figures: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # parts it skipped itself
    not_run: bool = False  # skipped as a whole: a requirement is missing


@dataclass
class Result:
    name: str
    command: str
    measures: str = ""
    runs: list[Run] = field(default_factory=list)

    @property
    def not_run(self) -> bool:
        return bool(self.runs) and all(r.not_run for r in self.runs)

    @property
    def failed(self) -> list[Run]:
        return [r for r in self.runs if not r.ok and not r.not_run]


# -- running -------------------------------------------------------------------------------


def command_of(bench: Benchmark, quick: bool) -> list[str]:
    return ["python", bench.script] + (["--quick"] if quick else [])


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(line.strip() for line in text[-lines:] if line.strip())


def run_once(bench: Benchmark, quick: bool, timeout_s: float, logs: Path, run_no: int) -> Run:
    missing = [exe for exe in bench.needs if shutil.which(exe) is None]
    if missing:
        return Run(ok=False, not_run=True, reason=f"skipped: {', '.join(missing)} not installed")
    out_json = logs / f"{bench.name}-{run_no}.json"
    out_json.unlink(missing_ok=True)
    stdout, stderr = logs / f"{bench.name}-{run_no}.out", logs / f"{bench.name}-{run_no}.err"
    cmd = [sys.executable, str(ROOT / bench.script), "--json", str(out_json)] + (
        ["--quick"] if quick else []
    )
    t0 = time.monotonic()
    with stdout.open("wb") as so, stderr.open("wb") as se:
        proc = subprocess.Popen(cmd, stdout=so, stderr=se, cwd=ROOT, start_new_session=True)
        try:
            code: int | None = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            code = None
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(30)
    wall = time.monotonic() - t0
    # Whatever it left behind in its process group (coordinators, load generators).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    data: dict[str, Any] = {}
    if out_json.exists():
        try:
            data = json.loads(out_json.read_text())
        except ValueError as e:
            data = {"error": f"unreadable JSON: {e}"}
    run = Run(ok=True, wall_s=wall, figures=list(data.get("figures") or []),
              skipped=list(data.get("skipped") or []))  # fmt: skip
    if code is None:
        run.ok, run.reason = False, f"timed out after {timeout_s:.0f} s (killed)"
    elif code != 0:
        last = tail(stderr) or tail(stdout)
        run.ok, run.reason = (
            False,
            f"exit status {code}" + (f"; last output: {last}" if last else ""),
        )
    elif "error" in data:
        run.ok, run.reason = False, data["error"]
    elif not run.figures:
        run.ok, run.reason = (
            False,
            "wrote no figures" + (f"; last output: {tail(stderr)}" if tail(stderr) else ""),
        )
    return run


# -- the header -----------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain") else "")


def machine_meta(quick: bool, runs: int, command: str) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "commit": commit(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": quick,
        "runs": runs,
        "command": command,
        "python": platform.python_version(),
    }


# -- rendering ------------------------------------------------------------------------------


def num(v: float | None) -> str:
    if v is None:
        return ""
    a = abs(v)
    if a >= 100 or v == int(v):
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:,.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def aggregate(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per figure name (in the order first seen): its values over the runs."""
    rows: dict[str, dict[str, Any]] = {}
    for run in runs:
        for f in run.figures:
            row = rows.setdefault(f["name"], {**f, "values": [], "notes": []})
            row["values"].append(float(f["value"]))
            if f.get("note") and f["note"] not in row["notes"]:
                row["notes"].append(f["note"])
    for row in rows.values():
        vals = row["values"]
        row["median"] = statistics.median(vals)
        row["min"], row["max"] = min(vals), max(vals)
        row["ratio"], row["ratio_is"] = ratio_of(row["median"], row.get("goal"), row.get("better"))
        ratios = [ratio_of(v, row.get("goal"), row.get("better"))[0] for v in vals]
        row["ratios"] = [r for r in ratios if r is not None]
    return list(rows.values())


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(meta: dict[str, Any], results: list[Result]) -> str:
    quick = "yes: each benchmark at its --quick size" if meta["quick"] else "no: full size"
    out = [
        "# Performance figures",
        "",
        "Written by `benchmarks/figures.py`; not edited by hand: run it again to update "
        "(`python benchmarks/figures.py --help` says how). README.md's Performance section "
        "says what each benchmark does.",
        "",
        f"- machine: {meta['cores']} cores (os.cpu_count()), {meta['cpu']}",
        f"- commit: {meta['commit']}",
        f"- date: {meta['date']}",
        f"- quick: {quick}",
        f"- runs: {meta['runs']} of each benchmark",
        f"- command: `{meta['command']}`",
        f"- Python: {meta.get('python', '')}",
        "",
        "The ratio is value/goal when higher is better and goal/value when lower is better "
        "(the median's; the range over the runs beside it when there are several): at least 1 "
        "means the goal is met. The benchmarks share the machine with the coordinator they "
        "load, so the figures are floors.",
        "",
        "| benchmark | status | wall time | command |",
        "|---|---|---|---|",
    ]
    failed_any = False
    for res in results:
        walls = [r.wall_s for r in res.runs if not r.not_run]
        wall = "" if not walls else f"{min(walls):.1f} s"
        if len(walls) > 1:
            wall = f"{min(walls):.1f}{DASH}{max(walls):.1f} s"
        if res.not_run:
            status = res.runs[0].reason
        elif res.failed:
            failed_any = True
            status = f"**FAILED** ({len(res.failed)} of {len(res.runs)} runs)"
        else:
            status = "ok"
        out.append(f"| [{res.name}](#{res.name}) | {cell(status)} | {wall} | `{res.command}` |")
    if failed_any:
        out += ["", "## Failed", ""]
        for res in results:
            for i, run in enumerate(res.runs, 1):
                if not run.ok and not run.not_run:
                    out.append(f"- **{res.name}** (run {i}) FAILED: {cell(run.reason)}")
    for res in results:
        out += ["", f"## {res.name}", ""]
        if res.measures:
            out += [f"Measures {res.measures}.", ""]
        out += [f"`{res.command}`", ""]
        if res.not_run:
            out += [f"Not run: {res.runs[0].reason}."]
            continue
        for i, run in enumerate(res.runs, 1):
            if not run.ok:
                out += [f"FAILED (run {i}): {cell(run.reason)}", ""]
        rows = aggregate(res.runs)
        if rows:
            many = len(res.runs) > 1
            out += [
                f"| figure | value{f' (min{DASH}max)' if many else ''} | median | unit | goal | ratio |",
                "|---|---|---|---|---|---|",
            ]
            for row in rows:
                value = (
                    num(row["min"])
                    if row["min"] == row["max"]
                    else f"{num(row['min'])}{DASH}{num(row['max'])}"
                )
                if many and len(row["values"]) < len(res.runs):
                    value += f" ({len(row['values'])} of {len(res.runs)} runs)"
                goal = ""
                if row.get("goal") is not None:
                    goal = ("at least " if row["better"] == "higher" else "at most ") + num(
                        row["goal"]
                    )
                ratio = ""
                if row["ratio"] is not None:
                    met = "met" if row["ratio"] >= 1 else "not met"
                    ratio = f"{row['ratio']:.2f} ({row['ratio_is']}; {met})"
                    if many and len(row["ratios"]) > 1 and min(row["ratios"]) != max(row["ratios"]):
                        ratio += f"; runs {min(row['ratios']):.2f}{DASH}{max(row['ratios']):.2f}"
                elif row.get("goal") is not None and row["median"] == 0:
                    ratio = "none: met"
                name = row["name"] + (f" ({'; '.join(row['notes'])})" if row["notes"] else "")
                out.append(
                    f"| {cell(name)} | {value} | {num(row['median'])} | {cell(row['unit'])} | {goal} | {ratio} |"
                )
        skipped: dict[str, str] = {}
        for run in res.runs:
            for s in run.skipped:
                skipped.setdefault(s["name"], s["reason"])
        if skipped:
            out += [""] + [f"- skipped: {cell(k)}: {cell(v)}" for k, v in skipped.items()]
    return "\n".join(out) + "\n"


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true",
                        help="run each benchmark with --quick (smaller sizes, SQLite only)")  # fmt: skip
    parser.add_argument("--runs", type=int, default=1, metavar="N",
                        help="run each benchmark N times (default 1); the table gives min-max and the median")  # fmt: skip
    parser.add_argument("--only", metavar="NAME,...",
                        help=f"only these benchmarks, comma-separated, of: {', '.join(BY_NAME)}")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md", metavar="PATH",
                        help="the markdown file to write (default docs/performance.md)")  # fmt: skip
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="hard timeout of each benchmark run (default: 240 s with --quick; "
                        "per benchmark without it, 600 s to 5,400 s for scale)")  # fmt: skip
    parser.add_argument("--logs", type=Path, metavar="DIR",
                        help="keep each run's stdout, stderr and JSON here (default: a temporary "
                        "directory, removed at the end)")  # fmt: skip
    args = parser.parse_args(argv)
    names = [n.strip() for n in (args.only or "").split(",") if n.strip()] or list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    command = shlex.join(
        ["python", "benchmarks/figures.py", *(sys.argv[1:] if argv is None else argv)]
    )
    meta = machine_meta(args.quick, args.runs, command)
    results = [
        Result(n, shlex.join(command_of(BY_NAME[n], args.quick)), BY_NAME[n].measures)
        for n in names
    ]
    with tempfile.TemporaryDirectory(prefix="vantage-figures-") as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        for run_no in range(1, args.runs + 1):
            for res in results:
                bench = BY_NAME[res.name]
                timeout_s = args.timeout or (
                    bench.quick_timeout_s if args.quick else bench.timeout_s
                )
                print(
                    f"[{time.strftime('%H:%M:%S')}] {res.name} (run {run_no} of {args.runs}) ...",
                    flush=True,
                )
                run = run_once(bench, args.quick, timeout_s, logs, run_no)
                res.runs.append(run)
                state = "ok" if run.ok else run.reason
                print(
                    f"[{time.strftime('%H:%M:%S')}] {res.name}: {state} ({run.wall_s:.1f} s)",
                    flush=True,
                )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(meta, results))
    failed = [r.name for r in results if r.failed]
    print(f"wrote {args.out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
