"""The README's Python example runs as written against a real coordinator (only the
address, region and target are pointed at this test's network), and the real `vantage`
runs the commands the README and docs/*.md show: `--help` of every sub-command shown
(naming every flag shown for it), and the probes that need only a local port."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.harness import Network, Targets
from tests.unit.test_doc_commands import SHOWN, Shown, command_path, flags_of

pytestmark = pytest.mark.e2e
README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_client_example(net: Network, targets: Targets) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) == 1, "the README has one Python example"
    code = (
        blocks[0]
        .replace("127.0.0.1:50051", net.address)
        .replace('regions=["de-fra"]', 'regions=["ru"]')
        .replace("example.org:443", f"127.0.0.1:{targets.http_port}")
        .replace("every_s=10", "every_s=1")
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # agent, the place it measured from, target, outcome, connect time
    assert (
        sum(1 for line in lines if line.split()[:2] == ["ru-1", "ru"] and line.split()[3] == "ok")
        == 3
    ), out.stdout
    assert lines[-1] == "job ended: 3 3 results", out.stdout


# ---------------------------------------------------------------------------------------
# The commands the README and docs/*.md show, run by the real `vantage` (their flags and
# parsing are checked in-process by tests/unit/test_doc_commands.py).

VANTAGE = [sys.executable, "-m", "vantage.cli"]
REPO = README.parent


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("VANTAGE_")}


def test_shown_commands_have_their_flags_in_the_real_help() -> None:
    """`vantage --help`, and `vantage PATH --help` for every sub-command the docs show
    (run at once: one process each), exit 0 and name every flag the docs give it."""
    wanted: dict[tuple[str, ...], set[str]] = {(): set()}
    for shown in SHOWN:
        wanted.setdefault(command_path(shown.argv), set()).update(flags_of(shown.argv))
    procs = {
        path: subprocess.Popen([*VANTAGE, *path, "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_env())
        for path in wanted
    }  # fmt: skip
    helps = {}
    for path, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and err == "", (path, proc.returncode, err)
        helps[path] = out
    top = helps[()]
    assert top.startswith("usage: vantage"), top
    for path, flags in wanted.items():
        if path:
            assert re.search(rf"^\s+{re.escape(path[0])}\s", top, re.M), (
                f"`vantage --help` lists no {path[0]}"
            )
        for flag in flags:
            assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", helps[path]), (
                f"`vantage {' '.join(path)} --help` does not mention {flag}"
            )


def _shown_output(shown: Shown) -> list[str]:
    """The output a document shows under an example: the lines after it (in README.md,
    its `#` comments) up to the next command or the end of the block."""
    doc, line = shown.doc.rsplit(":", 1)
    lines = (REPO / doc).read_text().splitlines()[int(line) - 1 :]
    while lines and lines[0].endswith("\\"):
        lines = lines[1:]
    out = []
    for text in lines[1:]:
        if text.startswith(("```", "$ ", "vantage ")):
            break
        out.append(text.lstrip("#"))
    return out


def _needs_only_a_port(shown: Shown) -> bool:
    return shown.example and (
        shown.argv[:2] == ("probe", "tcp")
        or (shown.argv[:2] == ("probe", "ping") and "method=tcp" in shown.argv)
    )


@pytest.mark.parametrize("shown", [s for s in SHOWN if _needs_only_a_port(s)], ids=str)
def test_shown_local_probe_runs_and_prints_what_is_shown(shown: Shown) -> None:
    """The probes shown that need nothing but a listening port here (tcp, and ping over
    TCP) run as written with the port pointed at one, and print every field the document
    shows under them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes the handshakes; nothing is accepted
        port = listener.getsockname()[1]
        argv = [re.sub(r"\bport=\d+", f"port={port}", re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", w))
                for w in shown.argv]  # fmt: skip
        out = subprocess.run(
            [*VANTAGE, *argv], capture_output=True, text=True, timeout=60, env=_env(), check=False
        )
    assert out.returncode == 0, (shown, out.stdout, out.stderr)
    first = out.stdout.splitlines()[0]
    assert re.fullmatch(rf"{argv[1]} {re.escape(argv[2])}: ok in [0-9.]+s", first), first
    printed = set(re.findall(r"^  ([a-z][a-z0-9_]*):", out.stdout, re.M))
    shown_fields = {
        f
        for line in _shown_output(shown)
        for f in re.findall(r"(?:^|\s)([a-z][a-z0-9_]*):(?:\s|$)", line)
    }
    assert shown_fields, f"{shown}: the document shows no output under it"
    assert shown_fields <= printed, (shown, shown_fields - printed, out.stdout)
