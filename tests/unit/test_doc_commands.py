"""Every `vantage ...` command the README and docs/*.md show is one the real command line
takes, so a flag or sub-command that is renamed or removed fails here, not in a reader's
terminal.

Each command in a code block is found (the first words of a line, after a ``$`` prompt or
``VAR=value`` assignments, after ``&&``, or after a wide gap in a synopsis that shows
several on one line; continued with a trailing backslash or, in a synopsis, an indented
line) and so is each inline ```vantage COMMAND ...``` in the prose. Then:

- every command's sub-command path exists, and every flag it shows is one of that
  sub-command's options (``--group-by region|asn``: each alternative among its choices);
- an example (a ``sh`` block, or a line after a ``$`` prompt) is parsed as written by the
  real parser (``vantage.cli.build_parser``), elisions (``...``) left out.

tests/e2e/test_readme.py runs the real ``vantage`` on them (``--help`` of each shown
sub-command, and the probes that need nothing but a local port)."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from vantage.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

CODE_BLOCK = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)
# Where a command starts: the start of a line (after a prompt and VAR=value assignments),
# after && or ;, or after a gap of two spaces or more (a synopsis showing several).
START = re.compile(
    r"(?:^|&&|;|\s{2,})\s*(?:\$\s+)?(?:[A-Z_][A-Z0-9_]*=(?:<[^>]*>|\S+)\s+)*(?:\S*/)?vantage(?=\s|$)"
)
INLINE = re.compile(r"`((?:\S*/)?vantage\s[^`]*)`")


@dataclass(frozen=True)
class Shown:
    doc: str  # "README.md:123"
    argv: tuple[str, ...]  # the words after `vantage`
    example: bool  # to be parsed as written (not a synopsis with placeholders)

    def __str__(self) -> str:
        return f"{self.doc}: vantage {' '.join(self.argv)}"


def _words(text: str) -> list[str]:
    text = re.sub(r"(^|\s)#.*$", "", text)  # a shell comment
    return shlex.split(text)


def _in_block(doc: str, first_line: int, lang: str, body: str) -> list[Shown]:
    out: list[Shown] = []
    pending: list[tuple[int, str, bool]] = []  # (line, text, example) being continued
    synopsis_open = False  # the last line held a synopsis, which an indented line continues
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        n, line = first_line + i, lines[i]
        while line.endswith("\\") and i + 1 < len(lines):  # a shell continuation
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        i += 1
        starts = list(START.finditer(line))
        if not starts:
            if synopsis_open and pending and line[:1].isspace() and line.strip():
                ln, text, ex = pending[-1]
                pending[-1] = (ln, text + " " + line.strip(), ex)
            else:
                synopsis_open = False
            continue
        prompt = line.lstrip().startswith("$ ")
        example = lang == "sh" or prompt
        synopsis_open = not example
        for k, m in enumerate(starts):
            end = starts[k + 1].start() if k + 1 < len(starts) else len(line)
            text = line[m.end() : end]
            if not example or m.start() == 0 or "&&" in line[: m.start() + 3] or prompt:
                pending.append((n, text.split("&&")[0], example))
    for n, text, example in pending:
        out.append(Shown(f"{doc}:{n}", tuple(w for w in _words(text) if w != "..."), example))
    return out


def shown_commands() -> list[Shown]:
    """Every `vantage ...` command in a code block or inline in README.md and docs/*.md."""
    found: list[Shown] = []
    for path in DOCS:
        text = path.read_text()
        name = path.relative_to(REPO).as_posix()
        for m in CODE_BLOCK.finditer(text):
            first = text.count("\n", 0, m.start(2)) + 1
            found += _in_block(name, first, m.group(1), m.group(2))
        prose = CODE_BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        for m in INLINE.finditer(prose):
            words = _words(" ".join(m.group(1).split()[1:]))
            # `vantage COMMAND --help`, `vantage --coordinator`: about the command line as a
            # whole, not a command of it
            if words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
                line = prose.count("\n", 0, m.start()) + 1
                found.append(Shown(f"{name}:{line}", tuple(words), example=False))
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def command_path(argv: tuple[str, ...]) -> tuple[str, ...]:
    """The sub-command words at the head of ``argv`` (``agents add``), as the parser has
    them; what does not name one is left to the caller's checks."""
    parser, path = build_parser(), []
    for word in argv:
        if word.startswith("-"):
            continue
        subs = _subparsers(parser)
        if word not in subs:
            break
        parser = subs[word]
        path.append(word)
    return tuple(path)


def flags_of(argv: tuple[str, ...]) -> list[str]:
    """The options shown (``[--ca FILE | --tls]`` -> --ca, --tls), without their values."""
    out = []
    for word in argv:
        w = word.strip("[]")
        if re.match(r"--?[a-zA-Z]", w):
            out.append(w.split("=", 1)[0])
    return out


def _check_flags(shown: Shown) -> None:
    parser = build_parser()
    subs = _subparsers(parser)
    assert shown.argv and shown.argv[0] in subs, (
        f"{shown}: no such command (vantage has {sorted(subs)})"
    )
    words = list(shown.argv)
    for i, word in enumerate(words):
        nested = _subparsers(parser)
        after_a_flag = i > 0 and words[i - 1].strip("[]").startswith("-")
        if word in nested and not after_a_flag:  # `agents add`, not the value of a flag
            parser = nested[word]
            continue
        w = word.strip("[]")
        if not re.match(r"--?[a-zA-Z]", w):
            continue
        flag = w.split("=", 1)[0]
        actions = {o: a for a in parser._actions for o in a.option_strings}
        assert flag in actions, f"{shown}: `{parser.prog}` has no {flag} (it has {sorted(actions)})"
        choices = actions[flag].choices
        value = words[i + 1].strip("[]") if i + 1 < len(words) else ""
        if choices is not None and "|" in value:
            for alternative in value.split("|"):
                assert alternative in choices, (
                    f"{shown}: {flag} takes {sorted(choices)}, not {alternative}"
                )


SHOWN = shown_commands()


def test_the_docs_show_the_commands_this_test_checks() -> None:
    """The extraction finds what the documents show: a change to how they are written
    must not leave this test checking nothing."""
    paths = {command_path(s.argv) for s in SHOWN}
    for path in [("demo",), ("coordinator",), ("agent",), ("submit",), ("jobs",), ("job",),
                 ("cancel",), ("results",), ("agents",), ("agents", "add"), ("agents", "revoke"),
                 ("agents", "enrolled"), ("verdicts",), ("health",), ("tokens", "add"),
                 ("tokens", "list"), ("tokens", "revoke"), ("audit",), ("probe",)]:  # fmt: skip
        assert path in paths, f"no `vantage {' '.join(path)}` found in the docs"
    examples = [s for s in SHOWN if s.example]
    assert len(examples) >= 25, [str(s) for s in examples]
    assert any(s.doc.startswith("docs/") and s.example for s in SHOWN)
    # the diagram's arrows are not a command ("user ── vantage submit ──gRPC ...")
    assert not any("─" in word for s in SHOWN for word in s.argv)


@pytest.mark.parametrize("shown", SHOWN, ids=str)
def test_shown_command_uses_flags_that_exist(shown: Shown) -> None:
    _check_flags(shown)


@pytest.mark.parametrize("shown", [s for s in SHOWN if s.example], ids=str)
def test_shown_example_parses(shown: Shown) -> None:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = build_parser().parse_args(list(shown.argv))
        except SystemExit as exc:
            why = err.getvalue().strip().splitlines()[-1:]  # argparse's "error: ..." line
            pytest.fail(f"{shown}: the parser refused it (exit {exc.code}): {why}")
    assert callable(args.func), shown
