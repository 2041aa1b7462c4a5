#!/usr/bin/env python3
"""Mutation testing of the code whose mistakes would cost most: the verdict engine
(``coordinator/analysis/``), the agent's target policy and the task and job state machines.

mutmut (``pip install -e '.[mutation]'``) changes one thing at a time in those modules (a
``<`` into ``<=``, a constant, a dropped argument ...) and runs the tests that reach the
changed function; a mutant the tests still pass with is a "survivor": behaviour no test
holds the code to. The score of a module is the share of its mutants that a test kills
(a mutant that makes a test hang past mutmut's timeout counts as killed; one that no test
even reaches counts as surviving).

Usage:
    python scripts/mutation.py                 # every group; exit 1 if one is under its target
    python scripts/mutation.py --group policy  # one group (analysis, policy, states)
    python scripts/mutation.py --survivors     # also print each survivor's diff
    python scripts/mutation.py --workdir DIR   # keep mutmut's state there and reuse it

The run happens in a copy of the checkout (mutmut writes a ``mutants/`` tree beside the
code), so the work tree is never touched. With ``--workdir`` the copy and mutmut's state
stay there; the next run with the same workdir re-tests only the survivors (and whatever
code changed), which makes the kill-a-survivor loop fast. mutmut maps tests to code only
for tests it has not seen before, so report scores from a fresh run (no ``--workdir``).
On 2 cores a fresh run of every group takes about 45 minutes, most of it in the
analysis group. A workdir must be new, or one this script made (it holds a marker file),
and never the checkout or a directory around it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Group:
    name: str
    files: tuple[str, ...]  # glob patterns, relative to the repository
    tests: tuple[str, ...]  # the tests mutmut may run against these files' mutants
    target: float  # the least acceptable score, 0..1


GROUPS = (
    Group(
        name="analysis",
        files=("coordinator/analysis/*.py",),
        tests=("tests/analysis",),
        target=0.80,
    ),
    Group(
        name="policy",
        # the address parsing the policy judges by moved to common/address.py
        files=("agent/policy.py", "common/address.py"),
        tests=("tests/probes/test_policy.py", "tests/probes/test_spec.py"),
        target=0.90,
    ),
    Group(
        name="dispatch",
        files=("coordinator/dispatch.py",),
        tests=("tests/unit/test_dispatch.py",),
        target=0.90,
    ),
    Group(
        name="states",
        files=("coordinator/tasks.py", "coordinator/jobs.py"),
        tests=("tests/unit/test_state_machines.py",),
        target=0.90,
    ),
)

# What a mutmut exit code means (mutmut.stats.status_by_exit_code, folded into the
# outcomes this report counts). A mutant that makes the tests time out or crash the test
# process (mutmut's "timeout" and "segfault"; -9 is also its CPU-limit kill) was detected,
# so it counts as killed. "suspicious" and "not run" count against the score, as
# "other"; the score is killed / everything but skipped.
KILLED = {1: "killed", 3: "killed", 36: "timeout", 24: "timeout", -24: "timeout",
          152: "timeout", 255: "timeout", 37: "killed", -11: "killed", -9: "killed"}
SURVIVED = {0: "survived", 5: "no tests", 33: "no tests"}
SKIPPED = {34: "skipped"}


MARKER = ".vantage-mutation-workdir"
COPIED = ("agent", "common", "coordinator", "protos", "vantage", "tests", "deploy", "scripts")
SOURCE_PATHS = ("agent", "common", "coordinator")  # what mutmut mutates (only_mutate picks the files)


def _check_workdir(workdir: Path) -> str | None:
    """Why ``workdir`` must not be used (it would delete files there), or None."""
    repo = REPO.resolve()
    if workdir == repo or repo.is_relative_to(workdir) or workdir.is_relative_to(repo):
        return f"{workdir} is the checkout, inside it, or around it"
    if workdir.exists() and any(workdir.iterdir()) and not (workdir / MARKER).exists():
        return f"{workdir} is not empty and was not made by this script (no {MARKER})"
    return None


def _copy_checkout(dest: Path) -> None:
    """The parts of the checkout the tests import, without caches or earlier mutants.
    What an earlier run copied (into ``dest`` and into mutmut's ``mutants/``) goes first,
    so a deleted or renamed test cannot linger and run."""
    (dest / MARKER).write_text("made by scripts/mutation.py; its copies here are replaced on each run\n")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants", ".mypy_cache", ".pytest_cache")
    for name in COPIED:
        shutil.rmtree(dest / name, ignore_errors=True)
        if name not in SOURCE_PATHS:  # mutants/<source path> holds mutmut's own state
            shutil.rmtree(dest / "mutants" / name, ignore_errors=True)
        shutil.copytree(REPO / name, dest / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, dest / name)


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def _configure(dest: Path, groups: list[Group]) -> None:
    files = [f for g in groups for f in g.files]
    tests = [t for g in groups for t in g.tests]
    with (dest / "pyproject.toml").open("a") as fh:
        fh.write(
            "\n[tool.mutmut]\n"
            f"source_paths = {_toml_list(list(SOURCE_PATHS))}\n"
            f"only_mutate = {_toml_list(files)}\n"
            'also_copy = ["protos", "vantage", "deploy", "scripts"]\n'
            f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n"
            # the loop watchdog and timing tier are about wall time, not behaviour
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not timing"]\n'
        )


def _retest_survivors(workdir: Path) -> int:
    """In a reused workdir, forget the survivors' results so mutmut runs them again
    against the current tests. Killed mutants keep their result, which holds as long as
    no test was deleted or weakened since (a fresh run settles it). Returns how many were
    reset."""
    reset = 0
    for meta in (workdir / "mutants").rglob("*.py.meta"):
        data = json.loads(meta.read_text())
        codes = data.get("exit_code_by_key", {})
        for key, code in codes.items():
            if code in SURVIVED:
                codes[key] = None
                reset += 1
        meta.write_text(json.dumps(data))
    return reset


def _statuses(workdir: Path) -> dict[str, Counter[str]]:
    """Per mutated file (relative path): how many mutants ended in each outcome."""
    out: dict[str, Counter[str]] = {}
    for meta in sorted((workdir / "mutants").rglob("*.py.meta")):
        rel = str(meta.relative_to(workdir / "mutants"))[: -len(".meta")]
        data = json.loads(meta.read_text())
        counts: Counter[str] = Counter()
        for code in data.get("exit_code_by_key", {}).values():
            if code in KILLED:
                counts["killed"] += 1
            elif code in SURVIVED:
                counts[SURVIVED[code]] += 1
            elif code in SKIPPED:
                counts["skipped"] += 1
            elif code is None:
                counts["not run"] += 1
            else:
                counts["suspicious"] += 1
        out[rel] = counts
    return out


def _survivor_names(workdir: Path, path: str) -> list[str]:
    meta = workdir / "mutants" / f"{path}.meta"
    data = json.loads(meta.read_text())
    return sorted(k for k, code in data.get("exit_code_by_key", {}).items() if code in SURVIVED)


def _score(c: Counter[str]) -> tuple[int, float]:
    total = sum(v for k, v in c.items() if k != "skipped")
    return total, (c["killed"] / total if total else 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", action="append", choices=[g.name for g in GROUPS],
                        help="run only this group (repeatable; default: all)")
    parser.add_argument("--workdir", type=Path, help="keep and reuse mutmut's state here")
    parser.add_argument("--survivors", action="store_true", help="print the diff of every survivor")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2,
                        help="mutants tested at once (default: one per core)")
    args = parser.parse_args(argv)
    if shutil.which("mutmut") is None:
        print("mutation: mutmut is not installed; pip install -e '.[mutation]'", file=sys.stderr)
        return 2
    groups = [g for g in GROUPS if not args.group or g.name in args.group]

    temp: tempfile.TemporaryDirectory[str] | None = None
    if args.workdir is None:
        temp = tempfile.TemporaryDirectory(prefix="vantage-mutation-")
        workdir = Path(temp.name)
    else:
        workdir = args.workdir.resolve()
        refused = _check_workdir(workdir)
        if refused:
            print(f"mutation: --workdir: {refused}", file=sys.stderr)
            return 2
        workdir.mkdir(parents=True, exist_ok=True)
    try:
        _copy_checkout(workdir)
        _configure(workdir, groups)
        if (workdir / "mutants").is_dir():
            print(f"mutation: reusing {workdir}; re-testing {_retest_survivors(workdir)} survivors", flush=True)
        log = workdir / "mutmut.log"
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        print(f"mutation: running mutmut in {workdir} (log: {log}) ...", flush=True)
        with log.open("w") as out:
            proc = subprocess.run(
                ["mutmut", "run", "--max-children", str(args.max_children)],
                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env, check=False,
            )
        if proc.returncode != 0:
            print(f"mutation: mutmut failed (exit {proc.returncode}); the end of its log:", file=sys.stderr)
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            return 2
        statuses = _statuses(workdir)
        return _report(workdir, groups, statuses, show_survivors=args.survivors)
    finally:
        if temp is not None:
            temp.cleanup()


def _report(workdir: Path, groups: list[Group], statuses: dict[str, Counter[str]], *, show_survivors: bool) -> int:
    header = (f"{'module':40} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8} "
              f"{'other':>5} {'score':>7}")
    print(header)
    print("-" * len(header))
    failed = []
    for group in groups:
        files = sorted(p for p in statuses if any(fnmatch.fnmatch(p, f) for f in group.files))
        total_counts: Counter[str] = Counter()
        for path in files:
            c = statuses[path]
            total_counts.update(c)
            n, score = _score(c)
            other = c["suspicious"] + c["not run"]
            print(f"{path:40} {n:>7} {c['killed']:>7} {c['survived']:>8} {c['no tests']:>8} "
                  f"{other:>5} {score:>7.1%}")
        n, score = _score(total_counts)
        other = total_counts["suspicious"] + total_counts["not run"]
        verdict = "ok" if score >= group.target else "BELOW TARGET"
        print(f"{'= ' + group.name:40} {n:>7} {total_counts['killed']:>7} "
              f"{total_counts['survived']:>8} {total_counts['no tests']:>8} {other:>5} {score:>7.1%}"
              f"   target {group.target:.0%}: {verdict}")
        print()
        if score < group.target:
            failed.append(group.name)
        if show_survivors:
            for path in files:
                for name in _survivor_names(workdir, path):
                    shown = subprocess.run(["mutmut", "show", name], cwd=workdir,
                                           capture_output=True, text=True, check=False)
                    print(f"--- survivor {name}\n{shown.stdout.strip()}\n")
    if failed:
        print(f"mutation: below target: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
